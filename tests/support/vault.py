"""A real vault for tests: ``VaultApp`` on real sockets, run on its own event loop thread so
tests can use ordinary (sync) gRPC stubs against it."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from vault_server.app import VaultApp
from vault_server.auth.policy import hash_token, parse_policy
from vault_server.config import load_settings
from vault_server.core.event_loop import new_event_loop
from vault_server.storage.database import Database

ROLES = {
    "security": {"type": "user", "roles": ["security"], "workspaces": ["*"]},
    "onboarding": {"type": "user", "roles": ["onboarding"], "workspaces": ["*"]},
    "auditor": {"type": "user", "roles": ["auditor"], "workspaces": ["*"]},
    "router": {"type": "service", "roles": ["router"], "workspaces": ["ws-a"]},
    "router-b": {"type": "service", "roles": ["router"], "workspaces": ["ws-b"]},
    "security-a": {"type": "user", "roles": ["security"], "workspaces": ["ws-a"]},
    "security-b": {"type": "user", "roles": ["security"], "workspaces": ["ws-b"]},
}


@dataclass
class RunningVault:
    app: VaultApp
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    tokens: dict[str, str]
    home: Path
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def admin_target(self) -> str:
        assert self.app.bound and self.app.bound.admin_port
        return f"127.0.0.1:{self.app.bound.admin_port}"

    @property
    def data_target(self) -> str:
        assert self.app.bound and self.app.bound.data_port
        return f"127.0.0.1:{self.app.bound.data_port}"

    @property
    def socket_target(self) -> str:
        assert self.app.bound and self.app.bound.data_socket
        return f"unix:{self.app.bound.data_socket}"

    @property
    def health_target(self) -> str:
        assert self.app.bound and self.app.bound.health_port
        return f"127.0.0.1:{self.app.bound.health_port}"

    def channel(self, target: str | None = None, **options: Any) -> grpc.Channel:
        ch = grpc.insecure_channel(target or self.admin_target, options=list(options.items()))
        self.channels.append(ch)
        return ch

    def md(self, who: str = "security", **extra: str) -> list[tuple[str, str]]:
        out = [("authorization", f"Bearer {self.tokens[who]}")]
        out += [(k.replace("_", "-"), v) for k, v in extra.items()]
        return out

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        for ch in self.channels:
            ch.close()
        self.call(self.app.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def start_vault(
    home: Path,
    database_url: str | None = None,
    *,
    roles: dict[str, dict[str, Any]] | None = None,
    tokens: dict[str, str] | None = None,
    **overrides: Any,
) -> RunningVault:
    home.mkdir(parents=True, exist_ok=True)
    roles = roles or ROLES
    # Replicas of one fleet share tokens (and the policy built from them).
    tokens = tokens or {who: f"tok_{secrets.token_urlsafe(24)}" for who in roles}
    policy = parse_policy(
        {
            "principals": [
                {"id": who, **spec, "token_sha256": hash_token(tokens[who])}
                for who, spec in roles.items()
            ]
        }
    )
    listen = {
        "data_socket": str(home / "data.sock"),
        "data_address": "127.0.0.1:0",
        "admin_address": "127.0.0.1:0",
        "health_address": "127.0.0.1:0",
        "metrics_address": None,
        "grace_period_s": 5.0,
    }
    listen.update(overrides.pop("listen", {}))
    settings = load_settings(
        None,
        mode="dev",
        home=str(home),
        database_url=database_url or "",
        listen=listen,
        **overrides,
    )
    app = VaultApp(settings, policy=policy)
    loop = new_event_loop(settings.event_loop)  # the loop `pipvault serve` runs on
    thread = threading.Thread(target=loop.run_forever, name="vault-loop", daemon=True)
    thread.start()
    vault = RunningVault(app, loop, thread, tokens, home)
    vault.call(app.start())
    return vault


def inspect_db(app: VaultApp) -> Database:
    """A connection that sees every row (the admin behind the app role on PostgreSQL)."""
    from tests.support import pg

    url = app.settings.resolved_database_url()
    return Database(pg.admin_for(url)) if app.db.is_postgres else app.db


def iter_audit(app: VaultApp) -> Iterator[Any]:
    from sqlalchemy import select

    from vault_server.storage.models import AuditEvent

    db = inspect_db(app)
    try:
        with db.transaction() as session:
            rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    finally:
        if db is not app.db:
            db.dispose()
    yield from rows
