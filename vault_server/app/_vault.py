"""``VaultApp``: builds every part of the vault from one ``Settings`` (each subsystem's wiring
in its own module beside this one) and runs it: ``start()`` migrates (dev) or checks the schema
(production), opens the listeners with health NOT_SERVING, checks storage and readiness, then
starts the system jobs; ``stop()`` turns NOT_SERVING, drains in-flight RPCs for the grace period
and releases everything."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from vault_server.app._audit import build_audit
from vault_server.app._identity import Identity
from vault_server.app._jobs import system_jobs
from vault_server.app._keys import build_key_manager, dek_cache_entries
from vault_server.app._paging import build_pager_sender
from vault_server.app._readiness import ReadinessWatch
from vault_server.app._secrets import derive_key, load_server_key
from vault_server.app._servers import build_edge
from vault_server.app._signing import build_signing
from vault_server.audit import AuditLog
from vault_server.auth.policy import Policy
from vault_server.config import ConfigError, Settings
from vault_server.core.clock import Clock, Random, SystemClock, SystemRandom
from vault_server.core.event_loop import running_loop_kind
from vault_server.core.heap import freeze_startup_heap
from vault_server.domain import PageTokens
from vault_server.egress.client import EgressClient
from vault_server.keys import KeyAdmin
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics
from vault_server.paging import IntegrityPager, Pager, SqlOutbox
from vault_server.rpc.listeners import ListenerConflict
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.server import Bound, VaultServers
from vault_server.storage import invalidation, migrate, roles
from vault_server.storage.database import Database
from vault_server.workspaces import WorkspaceManager

_log = get_logger("pipvault.app")


class VaultApp:
    """Everything the vault is made of, built from ``settings``."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, policy: Policy | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        if settings.mode == "dev":
            settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.identity = Identity(settings, policy)
        self.policy_store = self.identity.policy_store
        self.tls_files = self.identity.tls_files
        server_key = load_server_key(settings)
        chain_key = derive_key(server_key, "audit-chain")
        limits = settings.limits
        self.db = Database(settings.resolved_database_url(), pool_size=limits.storage_threads)
        self.metrics = Metrics()
        self.run = BlockingRunner(limits.storage_threads)
        self.audit = AuditLog(chain_key, self.clock)
        self.pages = PageTokens(
            derive_key(server_key, "page-tokens"),
            default_size=limits.page_size_default,
            max_size=limits.page_size_max,
        )
        self.random: Random = SystemRandom()
        self.keys = build_key_manager(settings, self.db, self.metrics, self.clock, self.random)
        self.workspaces = WorkspaceManager(
            self.db,
            self.audit,
            self.clock,
            self.pages,
            on_freeze=lambda ws_id: self.keys.forget(workspace_id=ws_id),
        )
        self.egress = EgressClient(
            timeout_s=settings.signing.egress_timeout_s,
            max_in_flight_per_workspace=settings.signing.egress_max_in_flight_per_workspace,
        )
        self.pager = Pager(
            self.clock, bucket_s=settings.paging.dedup_bucket_s, source=settings.paging.source
        )
        self.keys.on_integrity_failure = IntegrityPager(self.db, self.pager)
        self.outbox = SqlOutbox(self.db, self.clock)
        self.readiness_watch = ReadinessWatch(
            settings,
            db=self.db,
            keys=self.keys,
            audit=self.audit,
            metrics=self.metrics,
            run=self.run,
            outbox=self.outbox,
            cache_signs_without_kms=dek_cache_entries(settings) > 0,
            servers=lambda: self.servers,
        )
        signing = build_signing(
            settings,
            db=self.db,
            audit=self.audit,
            keys=self.keys,
            pages=self.pages,
            pager=self.pager,
            egress=self.egress,
            run=self.run,
            metrics=self.metrics,
            clock=self.clock,
            random=self.random,
            on_batch=self.readiness_watch.batch_done,
        )
        self.attestor, self.credentials = signing.attestor, signing.credentials
        self.lifecycle, self.routing = signing.lifecycle, signing.routing
        self.signing, self.hot_state = signing.signing, signing.hot_state
        self.committer, self.hot_signer = signing.committer, signing.hot_signer
        self.wal_checkpointer = signing.wal_checkpointer
        self.sessions = signing.sessions.engine
        self.session_wire = signing.sessions.wire
        invalidation.add_commit_listener(self.db.engine, self.hot_state.invalidate)
        self.epoch_watcher = invalidation.EpochWatcher(self.db.engine, self._epochs_moved)
        self.key_admin = KeyAdmin(self.db, self.audit, self.keys)
        audit = build_audit(
            settings, self.db, self.audit, self.pages, self.pager, self.clock, chain_key
        )
        self.audit_reader, self.audit_alarm = audit.reader, audit.alarm
        self.checkpointer, self.audit_verifier = audit.checkpointer, audit.verifier
        self.scheduled_verification = audit.scheduled_verification
        self.event_sink = audit.event_sink
        self.pager_sender = build_pager_sender(settings, self.outbox, self.random, self.metrics)
        edge = build_edge(
            settings,
            identity=self.identity,
            db=self.db,
            audit=self.audit,
            workspaces=self.workspaces,
            signing=signing,
            audit_reader=self.audit_reader,
            audit_verifier=self.audit_verifier,
            key_admin=self.key_admin,
            run=self.run,
            metrics=self.metrics,
            clock=self.clock,
        )
        self._make_servers, self.rate_limiter = edge.make_servers, edge.rate_limiter
        self.servers: VaultServers | None = None
        self.bound: Bound | None = None
        self.metrics_port: int | None = None
        self._jobs: list[asyncio.Task[None]] = []

    def _epochs_moved(self, workspace_ids: frozenset[str] | None, keys: bool) -> None:
        """Another process changed what cached signing state depends on: drop it, and with
        ``keys`` the cached data keys of those workspaces (revoke or freeze on another replica;
        a routing renewal elsewhere leaves them, so steady-state signing never calls the KMS)."""
        self.hot_state.invalidate(workspace_ids)
        if not keys:
            return
        self.sessions.forget(workspace_ids)
        if workspace_ids is None:
            self.keys.forget()
            return
        for ws_id in workspace_ids:
            self.keys.forget(workspace_id=ws_id)

    def reload_identity(self) -> None:
        """Policy and JWKS files: apply valid changes, keep the old ones otherwise (logged)."""
        self.identity.reload()

    def is_ready(self) -> bool:
        """See ``vault_server.health``: storage, audit writes, key material, key providers."""
        return self.readiness_watch.check.check().ready

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

    async def start(self, *, freeze_heap: bool = False) -> Bound:
        """Open the listeners (refusing, with one line, a socket or port another process owns),
        then check readiness before health says SERVING. ``freeze_heap`` (the server process,
        not an app embedded in tests): move everything start-up built out of the garbage
        collector's way first (``core.heap``)."""
        self.servers = self._make_servers()  # takes the socket lock first: a clash touches nothing
        try:
            await self.run(self.prepare_storage)
            self.bound = await self.servers.start()
            if self.settings.listen.metrics_address:
                address = self.settings.listen.metrics_address
                host, port = address.rsplit(":", 1)
                try:
                    self.metrics_port = self.metrics.serve(host.strip("[]"), int(port))
                except OSError:
                    raise ListenerConflict(
                        f"listen.metrics_address: cannot listen on {address} "
                        "(address already in use?)"
                    ) from None
            if not await self.run(self.db.ping):
                raise ConfigError("database_url: the database is not reachable")
        except BaseException:
            with contextlib.suppress(Exception):
                await self.servers.stop(0)
            self.servers.release()  # never leave a socket we own behind, never remove another's
            raise
        if freeze_heap:
            _log.info("vault.heap_frozen", objects=freeze_startup_heap())
        await self.readiness_watch.check_now()
        self.readiness_watch.watch_audit_health(asyncio.get_running_loop())
        self.epoch_watcher.start()
        self.wal_checkpointer.start()
        self._jobs = [asyncio.create_task(job) for job in system_jobs(self)]
        _log.info(
            "vault.serving", mode=self.settings.mode, event_loop=running_loop_kind(),
            **self._where(),
        )  # fmt: skip
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
            self.servers.end_follow_streams()  # first: nothing below waits for a follower
        self.readiness_watch.stop()
        for job in list(self._jobs):
            job.cancel()
        self.keys.forget()  # no unwrapped data key outlives the process's serving life
        try:
            await self.run(self.checkpointer.checkpoint_now)  # the tail is covered at shutdown
        except Exception:
            _log.exception("audit.final_checkpoint_failed")
        if self.event_sink is not None:
            try:
                await self.run(self.event_sink.tick)  # what committed before shutdown goes out
            except Exception:
                _log.exception("audit.event_sink_failed")
        if self.pager_sender is not None:
            await asyncio.to_thread(self.pager_sender.drain, 5.0)
            self.pager_sender.close()
        if self.servers is not None:
            await self.servers.stop(self.settings.listen.grace_period_s)
        await asyncio.to_thread(self.committer.close)  # after the drain: in-flight uses commit
        await asyncio.to_thread(self.epoch_watcher.stop)
        await asyncio.to_thread(self.wal_checkpointer.stop)
        invalidation.remove_commit_listeners(self.db.engine)
        self.hot_state.invalidate(None)
        self.metrics.stop()
        self.run.shutdown()
        self.egress.close()
        await self.egress.aclose()
        await self.session_wire.close()  # persistent venue connections (cTrader)
        self.db.dispose()
        _log.info("vault.stopped")


async def serve_until_signalled(app: VaultApp, on_started: object = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start(freeze_heap=True)
    if callable(on_started):
        on_started(app)
    await stop.wait()
    _log.info("vault.stopping")
    await app.stop()
