"""A fleet of real ``pipvault serve`` processes (production mode) on one PostgreSQL database.

Each replica has its own home, ports and (optionally) its own copy of the local keyring, as per
host deployments have. Secrets (server key, keyring, tokens, API secrets) are generated per run.
``Fleet.create(root, sqlite=True)``: one SQLite file instead (a single replica, for crash tests).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.support import pg
from tests.support.custody import binance_request
from tests.support.signing_flow import place
from vault_server.auth.policy import hash_token

PIPVAULT = [sys.executable, "-m", "vault_server.cli.main"]
ROLES = {
    "security": ["security"],
    "onboarding": ["onboarding"],
    "auditor": ["auditor"],
    "router": ["router"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(target: str) -> str:
    try:
        with grpc.insecure_channel(target) as ch:
            status = (
                health_pb2_grpc.HealthStub(ch)
                .Check(health_pb2.HealthCheckRequest(), timeout=2)
                .status
            )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    except grpc.RpcError:
        return "UNREACHABLE"


@dataclass
class Replica:
    name: str
    home: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str]
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def admin(self) -> str:
        return f"127.0.0.1:{self.ports['admin']}"

    @property
    def data(self) -> str:
        return f"127.0.0.1:{self.ports['data']}"

    @property
    def health_target(self) -> str:
        return f"127.0.0.1:{self.ports['health']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}"

    def channel(self, target: str) -> grpc.Channel:
        ch = grpc.insecure_channel(target)
        self.channels.append(ch)
        return ch

    def md(self, who: str = "security") -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[who]}")]

    def health(self) -> str:
        return health(self.health_target)

    def wait_health(self, wanted: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            if self.health() == wanted:
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not become {wanted}:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signing(self) -> sgrpc.SigningServiceStub:
        return sgrpc.SigningServiceStub(self.channel(self.data))

    def begin_routing(self, credential: str) -> str:
        rc = self.signing().BeginRouting(
            spb.BeginRoutingRequest(credential=credential, strategy_id="fleet", reason="fleet"),
            metadata=self.md("router"),
            timeout=15,
        )
        return str(rc.routing_context.name)

    def sign(self, routing_context: str, client_order_id: str) -> spb.SignOrderResponse:
        request = spb.SignOrderRequest(
            routing_context=routing_context,
            order=place("LTCBTC", client_order_id),
            reason="fleet",
        )
        return self.signing().SignOrder(request, metadata=self.md("router"), timeout=15)

    def kill9(self) -> None:
        """``kill -9``: no shutdown, no flush, no goodbye; gone when this returns."""
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        for ch in self.channels:
            ch.close()
        self.channels.clear()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Fleet:
    root: Path
    admin_url: str
    app_url: str
    tokens: dict[str, str]
    server_key: Path
    checkpoint_key: Path
    keyring: Path
    replicas: list[Replica] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, *, sqlite: bool = False) -> Fleet:
        root.mkdir(parents=True, exist_ok=True)
        if sqlite:
            admin_url = app_url = f"sqlite:///{root / 'vault.db'}"
        else:
            admin_url, app_url = pg.provisioned_database()
        tokens = {who: f"tok_{secrets.token_urlsafe(24)}" for who in ROLES}
        policy = {
            "principals": [
                {
                    "id": who,
                    "type": "service" if who == "router" else "user",
                    "roles": roles,
                    "workspaces": ["*"],
                    "token_sha256": hash_token(tokens[who]),
                }
                for who, roles in ROLES.items()
            ]
        }
        (root / "policy.yaml").write_text(yaml.safe_dump(policy))
        server_key = root / "server.key"
        fd = os.open(server_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)))
        keyring = root / "keyring.json"
        commands = [
            ["keys", "init-local", "--path", str(keyring)],
            ["keys", "init-audit", "--path", str(root / "audit.key")],
        ]
        if sqlite:
            commands.append(["db", "upgrade", "--database-url", app_url])
        procs = [
            subprocess.Popen([*PIPVAULT, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for args in commands
        ]  # at once: each is mostly interpreter start-up
        for args, proc in zip(commands, procs, strict=True):
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, (args, out)
        return cls(root, admin_url, app_url, tokens, server_key, root / "audit.key", keyring)

    def start(
        self,
        name: str,
        *,
        database_url: str | None = None,
        own_keyring: bool = False,
        wait: bool = True,
        **settings: Any,
    ) -> Replica:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        keyring = self.keyring
        if own_keyring:  # a per-host copy of the keyring file
            keyring = home / "keyring.json"
            if not keyring.exists():
                shutil.copy2(self.keyring, keyring)
        ports = {k: free_port() for k in ("admin", "data", "health", "metrics")}
        config: dict[str, Any] = {
            "mode": "production",
            "home": str(home),
            "database_url": database_url or self.app_url,
            "policy_file": str(self.root / "policy.yaml"),
            "server_key_file": str(self.server_key),
            "keys": {"providers": {"local": f"local://{keyring}"}, "primary": "local"},
            "audit": {
                "checkpoint_key_file": str(self.checkpoint_key),
                "checkpoint_file": str(home / "checkpoints.jsonl"),
            },
            "listen": {
                "data_socket": str(home / "data.sock"),
                "data_address": f"127.0.0.1:{ports['data']}",
                "admin_address": f"127.0.0.1:{ports['admin']}",
                "health_address": f"127.0.0.1:{ports['health']}",
                "metrics_address": f"127.0.0.1:{ports['metrics']}",
                "grace_period_s": 2,
            },
            "readiness_interval_s": 0.3,
            "log_format": "json",
        }
        for key, value in settings.items():
            if isinstance(value, dict):
                config.setdefault(key, {}).update(value)
            else:
                config[key] = value
        cfg = home / "config.yaml"
        cfg.write_text(yaml.safe_dump(config))
        log = home / "server.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [*PIPVAULT, "serve", "--config", str(cfg)], stdout=out, stderr=subprocess.STDOUT
            )
        replica = Replica(name, home, ports, proc, log, self.tokens)
        self.replicas.append(replica)
        if wait:
            replica.wait_health("SERVING")
        return replica

    def restart(self, replica: Replica) -> None:
        """SIGTERM, then the same config (same ports, socket, home) again."""
        replica.stop()
        with replica.log.open("ab") as out:
            replica.proc = subprocess.Popen(
                [*PIPVAULT, "serve", "--config", str(replica.home / "config.yaml")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        replica.wait_health("SERVING")

    def make_workspace(self, replica: Replica, ws: str) -> None:
        wgrpc.WorkspaceServiceStub(replica.channel(replica.admin)).CreateWorkspace(
            wpb.CreateWorkspaceRequest(workspace_id=ws, reason="fleet setup"),
            metadata=replica.md("security"),
            timeout=15,
        )

    def onboard(self, replica: Replica, ws: str, cred: str) -> str:
        from pipsync.vault.v1 import credential_service_pb2_grpc as cgrpc

        request = binance_request(ws, cred, f"K{secrets.token_hex(16)}", secrets.token_hex(24))
        created = cgrpc.CredentialServiceStub(replica.channel(replica.admin)).CreateCredential(
            request, metadata=replica.md("onboarding"), timeout=15
        )
        return str(created.credential.name)

    def verify_chains(
        self, database_url: str | None = None, checkpoints: Replica | None = None
    ) -> dict[str, Any]:
        """``pipvault audit verify``; with ``checkpoints``, against the signed checkpoints that
        replica exported too (a head a checkpoint saw but the database lost is a finding)."""
        args = [
            *PIPVAULT, "audit", "verify", "--database-url", database_url or self.admin_url,
            "--server-key-file", str(self.server_key), "--json",
        ]  # fmt: skip
        if checkpoints is not None:
            args += [
                "--checkpoints", str(checkpoints.home / "checkpoints.jsonl"),
                "--public-key", f"{self.checkpoint_key}.pub",
            ]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A read-only query as the database's owner (past row-level security); ``%s``
        placeholders on both databases."""
        if self.admin_url.startswith("sqlite:///"):
            path = self.admin_url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path)) as db:
                return db.execute(query.replace("%s", "?"), params).fetchall()
        with psycopg.connect(self.admin_url) as conn:
            return conn.execute(query, params).fetchall()

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        if not self.admin_url.startswith("sqlite:"):
            pg.drop_database(self.admin_url)
