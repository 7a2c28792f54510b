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
class SoftHsm:
    conf: Path
    module: str
    token_label: str
    pin_file: Path
    token_dir: Path

    def options(self) -> dict[str, Any]:
        return {"module": self.module, "pin_file": str(self.pin_file)}


def softhsm_module() -> str:
    for path in SOFTHSM_MODULES:
        if Path(path).is_file():
            return path
    raise RuntimeError("SoftHSM2 is not installed: run make install (Debian package softhsm2)")


def start_softhsm(workdir: Path, label: str = "pipvault") -> SoftHsm:
    """Initialise a fresh token under ``workdir`` and point ``SOFTHSM2_CONF`` at it (the
    library reads the variable when first loaded, so one token directory serves a test run)."""
    util = shutil.which("softhsm2-util")
    if util is None:
        raise RuntimeError("softhsm2-util not found: run make install (Debian package softhsm2)")
    conf_path = os.environ.get("SOFTHSM2_CONF")
    if conf_path and Path(conf_path).is_file() and "pipvault-test" in Path(conf_path).read_text():
        conf = Path(conf_path)  # the run's token store already exists; add a token to it
        token_dir = Path(conf.read_text().split("directories.tokendir = ")[1].split("\n")[0])
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        token_dir = workdir / "tokens"
        token_dir.mkdir(mode=0o700)
        conf = workdir / "softhsm2.conf"
        conf.write_text(
            f"# pipvault-test\ndirectories.tokendir = {token_dir}\n"
            "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
        os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(8)
    pin_file = workdir / f"{label}.pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pin + "\n")
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--so-pin", secrets.token_hex(8),
         "--pin", pin],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )  # fmt: skip
    return SoftHsm(conf, softhsm_module(), label, pin_file, token_dir)
