"""Real key-provider back ends for the key tests, all on this machine:

- ``MotoKms``: moto's KMS emulator in **server mode** (``ThreadedMotoServer``) on a free loopback
  port; pipvault reaches it over HTTP through ``keys.aws_endpoint_url``, exactly as it would a
  VPC endpoint. Credentials are dummies in the environment (the standard AWS chain).
- ``SoftHsm``: a SoftHSM2 token initialised per test run with ``softhsm2-util`` under a private
  ``SOFTHSM2_CONF``; the user PIN is generated at run time and kept in a 0600 file.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.crypto.openbao import free_port

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class MotoKms:
    server: Any
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client("kms", endpoint_url=self.endpoint, region_name="us-east-1")

    def create_key(self) -> str:
        """A fresh symmetric key; returns its ARN."""
        return str(self.client().create_key(Description="pipvault test KEK")["KeyMetadata"]["Arn"])

    def stop(self) -> None:
        self.server.stop()


def start_moto() -> MotoKms:
    from moto.server import ThreadedMotoServer

    for key, value in AWS_ENV.items():
        os.environ.setdefault(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return MotoKms(server, f"http://127.0.0.1:{port}")


@dataclass
class SoftHsmToken:
    """One initialised token: its label, the PIN file (0600) and its directory (delete it to
    take the token away: an HSM outage)."""

    label: str
    module: str
    pin_file: Path
    directory: Path

    def options(self) -> dict[str, Any]:
        return {"module": self.module, "pin_file": str(self.pin_file)}


def softhsm_module() -> str:
    for path in SOFTHSM_MODULES:
        if Path(path).is_file():
            return path
    raise RuntimeError("SoftHSM2 is not installed: run make install (Debian package softhsm2)")


def init_softhsm(workdir: Path, labels: list[str]) -> dict[str, SoftHsmToken]:
    """Initialise one token per label under ``workdir`` and point ``SOFTHSM2_CONF`` at them.

    SoftHSM2 lists its tokens when the library is first loaded in a process, so every token a
    test run needs is created here, before any provider loads the library.
    """
    util = shutil.which("softhsm2-util")
    if util is None:
        raise RuntimeError("softhsm2-util not found: run make install (Debian package softhsm2)")
    module = softhsm_module()
    workdir.mkdir(parents=True, exist_ok=True)
    token_dir = workdir / "tokens"
    token_dir.mkdir(mode=0o700)
    conf = workdir / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    tokens = {}
    for label in labels:
        pin = secrets.token_hex(8)
        pin_file = workdir / f"{label}.pin"
        fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pin + "\n")
        before = set(token_dir.iterdir())
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--so-pin", secrets.token_hex(8),
             "--pin", pin],
            check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        )  # fmt: skip
        (directory,) = set(token_dir.iterdir()) - before
        tokens[label] = SoftHsmToken(label, module, pin_file, directory)
    return tokens
