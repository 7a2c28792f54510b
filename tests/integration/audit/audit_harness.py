"""Shared pieces for the audit tests: a populated audit log on a real database, an attacker with
owner rights (raw SQL), the offline CLI as a real process, and a small grpc.aio server that runs
the AuditServicer behind the project's CallInterceptor."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from pipsync.vault.v1 import audit_service_pb2_grpc
from sqlalchemy import Engine, create_engine, text

from vault_server.app import derive_key
from vault_server.audit._log import AuditLog, AuditRecord, Outcome
from vault_server.audit._reader import AuditReader
from vault_server.audit._verify import AuditVerifier
from vault_server.auth.identity import StaticTokenSource
from vault_server.auth.policy import hash_token, parse_policy
from vault_server.auth.policy_store import PolicyStore
from vault_server.auth.rpc_roles import Plane
from vault_server.core.clock import SystemClock
from vault_server.core.event_loop import new_event_loop
from vault_server.domain._call import Actor, ActorType, CallContext, system_context
from vault_server.domain._pagination import PageTokens
from vault_server.observability.metrics import Metrics
from vault_server.rpc.admission import Admission, Limits
from vault_server.rpc.interceptor import CallInterceptor
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.servicers.audit import AuditServicer
from vault_server.storage import migrate
from vault_server.storage.database import Database, normalize_url
from vault_server.storage.models import Workspace
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace
from vault_server.workspaces._denials import DenialRecorder
from vault_server.workspaces._manager import WorkspaceManager

ROOT = Path(__file__).resolve().parents[3]


def write_key_file(path: Path, key: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(key))
    return path


@dataclass
class Log:
    """A real, migrated database with workspaces ``ws-a`` and ``ws-b`` and a few events."""

    url: str
    db: Database
    audit: AuditLog
    server_key: bytes
    workspaces: dict[str, Workspace] = field(default_factory=dict)

    @property
    def chain_key(self) -> bytes:
        return derive_key(self.server_key, "audit-chain")

    def ctx(self, actor: str = "alice", reason: str = "test") -> CallContext:
        return CallContext(Actor(ActorType.USER, actor), peer="10.0.0.7", reason=reason)

    def append(
        self,
        ws: str | None,
        action: str = "credential.use",
        *,
        credential: str = "",
        outcome: str = Outcome.SUCCESS,
        actor: str = "alice",
        n: int = 1,
    ) -> None:
        w = self.workspaces[ws] if ws else None
        for _ in range(n):
            with self.db.transaction() as s:
                if w is not None:
                    bind_workspace(s, w.id)
                self.audit.append(
                    s,
                    self.ctx(actor),
                    AuditRecord(
                        action=action,
                        outcome=outcome,
                        workspace_id=w.id if w else None,
                        workspace=f"workspaces/{ws}" if ws else "",
                        credential=f"workspaces/{ws}/credentials/{credential}"
                        if credential
                        else "",
                    ),
                )

    def chain_id(self, ws: str) -> str:
        return self.workspaces[ws].id

    def close(self) -> None:
        self.db.dispose()


def make_log(url: str, *, workspaces: tuple[str, ...] = ("ws-a", "ws-b")) -> Log:
    db = Database(url)
    migrate.upgrade(db.engine)
    server_key = secrets.token_bytes(32)
    clock = SystemClock()
    audit = AuditLog(derive_key(server_key, "audit-chain"), clock)
    manager = WorkspaceManager(db, audit, clock, PageTokens(b"k" * 32))
    log = Log(url, db, audit, server_key)
    for ws in workspaces:
        manager.create(system_context("test setup"), ws, ws.upper())
        with db.transaction() as s:
            row = ws_repo.by_resource_id(s, ws)
            assert row is not None
            log.workspaces[ws] = row
    return log


class Attacker:
    """Someone with owner rights on the database: disables the append-only guards, then edits."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(normalize_url(url))
        self.postgres = self.engine.dialect.name == "postgresql"

    def drop_guards(self) -> None:
        with self.engine.begin() as c:
            if self.postgres:
                c.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            else:
                c.execute(text("DROP TRIGGER audit_events_no_update"))
                c.execute(text("DROP TRIGGER audit_events_no_delete"))

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as c:
            c.execute(text(statement), params)

    def row(self, chain: str, seq: int) -> dict[str, Any]:
        with self.engine.connect() as c:
            got = c.execute(
                text("SELECT * FROM audit_events WHERE chain_id = :c AND seq = :s"),
                {"c": chain, "s": seq},
            ).mappings()
            return dict(got.one())

    def head(self, chain: str) -> tuple[int, str]:
        with self.engine.connect() as c:
            got = c.execute(
                text("SELECT seq, hash FROM audit_chain_heads WHERE chain_id = :c"), {"c": chain}
            ).one()
            return int(got[0]), str(got[1])

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class CliResult:
    code: int
    doc: dict[str, Any]
    stdout: str
    stderr: str


def run_cli(url: str, *args: str, as_json: bool = True) -> CliResult:
    """``pipvault audit verify`` as a real process (JSON output unless ``as_json=False``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "vault_server.cli.audit", "verify", "--database-url", url,
         *(["--json"] if as_json else []), *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    doc = json.loads(proc.stdout) if as_json and proc.stdout.strip().startswith("{") else {}
    return CliResult(proc.returncode, doc, proc.stdout, proc.stderr)


# --- a grpc.aio AuditService behind the real interceptor -----------------------------------------
ROLES = {
    "auditor": {"type": "user", "roles": ["auditor"], "workspaces": ["*"]},
    "auditor-a": {"type": "user", "roles": ["auditor"], "workspaces": ["ws-a"]},
    "router": {"type": "service", "roles": ["router"], "workspaces": ["*"]},
}


@dataclass
class AuditServer:
    port: int
    tokens: dict[str, str]
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    server: Any
    run: BlockingRunner
    channels: list[grpc.Channel] = field(default_factory=list)

    def stub(self) -> audit_service_pb2_grpc.AuditServiceStub:
        ch = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.channels.append(ch)
        return audit_service_pb2_grpc.AuditServiceStub(ch)

    def md(self, who: str = "auditor") -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[who]}")]

    def stop(self) -> None:
        for ch in self.channels:
            ch.close()
        asyncio.run_coroutine_threadsafe(self.server.stop(1), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.run.shutdown()


def start_audit_server(
    log: Log,
    *,
    poll_interval_s: float = 0.05,
    batch_size: int = 200,
    max_stream_deadline_s: float = 120,
    **verifier: Any,
) -> AuditServer:
    tokens = {who: f"tok_{secrets.token_urlsafe(16)}" for who in ROLES}
    policy = parse_policy(
        {
            "principals": [
                {"id": who, **spec, "token_sha256": hash_token(tokens[who])}
                for who, spec in ROLES.items()
            ]
        }
    )
    run = BlockingRunner(8)
    reader = AuditReader(
        log.db,
        log.audit,
        PageTokens(derive_key(log.server_key, "page-tokens")),
        batch_size=batch_size,
        poll_interval_s=poll_interval_s,
    )
    servicer = AuditServicer(reader, AuditVerifier(reader, log.chain_key, **verifier), run)
    limits = Limits(max_deadline_s=30, max_stream_deadline_s=max_stream_deadline_s)
    interceptor = CallInterceptor(
        plane=Plane.ADMIN,
        admission=Admission([StaticTokenSource(PolicyStore(policy))], limits),
        limits=limits,
        denials=DenialRecorder(log.db, log.audit),
        run=run,
        metrics=Metrics(),
        max_concurrent=64,
    )
    loop = new_event_loop("uvloop")  # the loop `pipvault serve` runs on by default
    thread = threading.Thread(target=loop.run_forever, name="audit-server", daemon=True)
    thread.start()

    async def start() -> tuple[Any, int]:
        server = grpc.aio.server(interceptors=[interceptor])
        audit_service_pb2_grpc.add_AuditServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    return AuditServer(port, tokens, loop, thread, server, run)
