"""Composition root: builds every part of the vault from one ``Settings``; nothing else wires.

``VaultApp.start()`` migrates (dev) or checks the schema (production), opens the listeners with
health NOT_SERVING, checks storage, then flips health to SERVING. ``stop()`` flips it back to
NOT_SERVING, drains in-flight RPCs for the grace period and releases everything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
import signal
from pathlib import Path

from vault_server.auth.identity import StaticTokenSource
from vault_server.auth.policy import Policy, load_policy
from vault_server.auth.rpc_roles import Plane
from vault_server.config import ConfigError, Settings
from vault_server.core.clock import Clock, SystemClock
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics
from vault_server.rpc.admission import Admission, Limits
from vault_server.rpc.interceptor import CallInterceptor
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.server import Bound, ListenerPlan, Servicers, VaultServers
from vault_server.rpc.servicers.placeholders import (
    AuditPlaceholder,
    CredentialPlaceholder,
    KeyPlaceholder,
    SigningPlaceholder,
)
from vault_server.rpc.servicers.workspaces import WorkspaceServicer
from vault_server.services.audit_log import AuditLog
from vault_server.services.denials import DenialRecorder
from vault_server.services.pagination import PageTokens
from vault_server.services.workspaces import WorkspaceManager
from vault_server.storage import migrate, roles
from vault_server.storage.database import Database

_log = get_logger("pipvault.app")
SERVER_KEY_ENV = "PIPVAULT_SERVER_KEY"


def derive_key(server_key: bytes, purpose: str) -> bytes:
    """HKDF-style single-block expansion: one independent 32-byte key per purpose."""
    prk = hmac.new(b"pipvault-v1", server_key, hashlib.sha256).digest()
    return hmac.new(prk, purpose.encode() + b"\x01", hashlib.sha256).digest()


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def load_server_key(settings: Settings) -> bytes:
    path = settings.server_key_file
    if path is None and settings.mode == "dev":
        path = settings.home / "server.key"
        if not path.exists():
            write_private_file(path, base64.b64encode(secrets.token_bytes(32)))
    raw: bytes | None = None
    if path is not None:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"server_key_file: {path} must not be readable by group or others")
        raw = path.read_bytes().strip()
    elif os.environ.get(SERVER_KEY_ENV):
        raw = os.environ[SERVER_KEY_ENV].encode()
    if raw is None:
        raise ConfigError(f"server_key_file: required in production mode (or ${SERVER_KEY_ENV})")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("server_key_file: must hold base64") from exc
    if len(key) < 32:
        raise ConfigError("server_key_file: must hold at least 32 random bytes")
    return key


class VaultApp:
    """Everything the vault is made of, built from ``settings``."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, policy: Policy | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        if settings.mode == "dev":
            settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if policy is None:
            if settings.policy_file is None:
                raise ConfigError("policy_file: no access policy configured")
            policy = load_policy(settings.policy_file)
        self.policy = policy
        server_key = load_server_key(settings)
        limits = settings.limits
        self.db = Database(settings.resolved_database_url(), pool_size=limits.storage_threads)
        self.metrics = Metrics()
        self.run = BlockingRunner(limits.storage_threads)
        self.audit = AuditLog(derive_key(server_key, "audit-chain"), self.clock)
        self.pages = PageTokens(
            derive_key(server_key, "page-tokens"),
            default_size=limits.page_size_default,
            max_size=limits.page_size_max,
        )
        self.workspaces = WorkspaceManager(self.db, self.audit, self.clock, self.pages)
        denials = DenialRecorder(self.db, self.audit)
        call_limits = Limits(
            max_deadline_s=limits.max_deadline_s,
            max_stream_deadline_s=limits.max_stream_deadline_s,
            trusted_proxies=tuple(ipaddress.ip_network(p) for p in settings.trusted_proxies),
        )
        admission = Admission([StaticTokenSource(policy)], call_limits)

        def interceptor(plane: Plane) -> CallInterceptor:
            return CallInterceptor(
                plane=plane,
                admission=admission,
                limits=call_limits,
                denials=denials,
                run=self.run,
                metrics=self.metrics,
                max_concurrent=limits.max_concurrent_rpcs,
            )

        listen = settings.listen
        plan = ListenerPlan(
            data_socket=listen.data_socket,
            data_address=listen.data_address,
            admin_address=listen.admin_address,
            health_address=listen.health_address,
            socket_mode=listen.socket_mode,
            max_message_bytes=limits.max_message_bytes,
            max_concurrent_rpcs=limits.max_concurrent_rpcs,
        )
        servicers = Servicers(
            workspace=WorkspaceServicer(self.workspaces, self.run, self.clock),
            credential=CredentialPlaceholder(),  # type: ignore[abstract]
            signing=SigningPlaceholder(),  # type: ignore[abstract]
            audit=AuditPlaceholder(),  # type: ignore[abstract]
            key=KeyPlaceholder(),  # type: ignore[abstract]
        )
        # grpc.aio servers bind to the running event loop, so they are built in start().
        def make_servers() -> VaultServers:
            return VaultServers(
                plan, servicers, [interceptor(Plane.DATA)], [interceptor(Plane.ADMIN)]
            )

        self._make_servers = make_servers
        self.servers: VaultServers | None = None
        self.bound: Bound | None = None
        self.metrics_port: int | None = None

    def prepare_storage(self) -> None:
        """SQLite in dev: migrate to head. Otherwise refuse an outdated schema, and on PostgreSQL
        refuse to run as a superuser, a BYPASSRLS role or an owner of the tables."""
        engine = self.db.engine
        if self.settings.mode == "dev" and not self.db.is_postgres:
            migrate.upgrade(engine)
            return
        current, head = migrate.current_revision(engine), migrate.head_revision(engine)
        if current != head:
            raise ConfigError(
                f"database_url: schema is at {current or 'nothing'}, expected {head}; "
                "run `pipvault db upgrade`"
            )
        if self.db.is_postgres:
            problem = roles.check_app_role(engine)
            if problem is not None:
                raise ConfigError(
                    f"database_url: {problem}; connect as the app role that "
                    "`pipvault db upgrade` creates"
                )

    async def start(self) -> Bound:
        await self.run(self.prepare_storage)
        self.servers = self._make_servers()
        self.bound = await self.servers.start()
        if self.settings.listen.metrics_address:
            host, port = self.settings.listen.metrics_address.rsplit(":", 1)
            self.metrics_port = self.metrics.serve(host.strip("[]"), int(port))
        if not await self.run(self.db.ping):
            raise ConfigError("database_url: the database is not reachable")
        await self.servers.set_serving(True)
        self.metrics.ready.set(1)
        _log.info("vault.serving", mode=self.settings.mode, **self._where())
        return self.bound

    def _where(self) -> dict[str, str]:
        b = self.bound or Bound()
        return {
            "data_socket": str(b.data_socket or ""),
            "data_port": str(b.data_port or ""),
            "admin_port": str(b.admin_port or ""),
            "health_port": str(b.health_port or ""),
        }

    async def stop(self) -> None:
        self.metrics.ready.set(0)
        if self.servers is not None:
            await self.servers.stop(self.settings.listen.grace_period_s)
        self.metrics.stop()
        self.run.shutdown()
        self.db.dispose()
        _log.info("vault.stopped")


async def serve_until_signalled(app: VaultApp, on_started: object = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    if callable(on_started):
        on_started(app)
    await stop.wait()
    _log.info("vault.stopping")
    await app.stop()
