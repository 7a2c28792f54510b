"""Composition root: builds every part of the vault from one ``Settings``; nothing else wires.

``VaultApp.start()`` migrates (dev) or checks the schema (production), opens the listeners with
health NOT_SERVING, checks storage, then flips health to SERVING. ``stop()`` flips it back to
NOT_SERVING, drains in-flight RPCs for the grace period and releases everything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import os
import secrets
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vault_server.alerts.checkpoint_sinks import FileSink, StdoutSink
from vault_server.alerts.notifiers import Notifier, PagerDutyNotifier, WebhookNotifier
from vault_server.alerts.pager_sender import Backoff, PagerSender
from vault_server.auth.identity import IdentitySource, StaticTokenSource
from vault_server.auth.jwt_source import JwksError, JwtSource
from vault_server.auth.policy import Policy, PolicyError
from vault_server.auth.policy_store import PolicyStore
from vault_server.auth.rate_limit import RateLimiter
from vault_server.auth.rpc_roles import Plane
from vault_server.auth.spiffe import SpiffeSource
from vault_server.auth.tls import TlsConfigError, TlsFiles
from vault_server.config import ConfigError, Settings
from vault_server.core.clock import Clock, Random, SystemClock, SystemRandom
from vault_server.core.errors import AuditUnavailable, VaultError
from vault_server.core.event_loop import running_loop_kind
from vault_server.core.heap import freeze_startup_heap
from vault_server.core.secret import Secret
from vault_server.crypto.dek_cache import DekCache
from vault_server.crypto.metered import MeteredKeyProvider
from vault_server.crypto.providers import KeyProvider, init_local_keyring, new_key_provider
from vault_server.egress.client import EgressClient
from vault_server.key_settings import key_provider_options, key_setting_name
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics
from vault_server.rpc.admission import Admission, Limits
from vault_server.rpc.interceptor import CallInterceptor
from vault_server.rpc.listeners import ListenerConflict
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.server import Bound, ListenerPlan, Servicers, VaultServers
from vault_server.rpc.servicers.audit import AuditServicer
from vault_server.rpc.servicers.credentials import CredentialServicer
from vault_server.rpc.servicers.keys import KeyServicer
from vault_server.rpc.servicers.signing import SigningServicer
from vault_server.rpc.servicers.workspaces import WorkspaceServicer
from vault_server.rpc.tls_credentials import mtls_server_credentials
from vault_server.services import audit_integrity
from vault_server.services.attestation import Attestor, ScheduledAttestation
from vault_server.services.audit_checkpoints import (
    AuditCheckpointer,
    CheckpointKeyError,
    CheckpointSigner,
    create_signing_key,
    file_checkpoints,
    load_signing_key,
)
from vault_server.services.audit_integrity import AuditIntegrityPager, ScheduledVerification
from vault_server.services.audit_log import AuditLog, AuditRecord
from vault_server.services.audit_reader import AuditReader
from vault_server.services.audit_sink import AuditEventSink, Position, build_writer
from vault_server.services.audit_verify import AuditVerifier
from vault_server.services.call import system_context
from vault_server.services.credential_lifecycle import CredentialLifecycle
from vault_server.services.credential_views import CredentialQueries
from vault_server.services.credentials import CredentialManager
from vault_server.services.denials import DenialRecorder
from vault_server.services.hot_signing import HotSigner
from vault_server.services.hot_state import HotState
from vault_server.services.integrity_pages import IntegrityPager
from vault_server.services.key_admin import KeyAdmin
from vault_server.services.keys import KeyManager
from vault_server.services.pagination import PageTokens
from vault_server.services.paging import Pager, SqlOutbox
from vault_server.services.readiness import COMPONENTS, ReadinessCheck, ReadinessReport
from vault_server.services.routing import RoutingContexts
from vault_server.services.sign_batch import PendingUse, SignBatch, Stale, UseWritten
from vault_server.services.signing import SigningService, SigningSettings
from vault_server.services.workspaces import WorkspaceManager
from vault_server.storage import invalidation, migrate, roles
from vault_server.storage.conflicts import lost_a_race
from vault_server.storage.database import Database
from vault_server.storage.group_commit import BatchReport, GroupCommitter
from vault_server.storage.wal_checkpoint import COMMITTER_AUTOCHECKPOINT_PAGES, WalCheckpointer

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


def build_key_providers(settings: Settings, clock: Clock, random: Random) -> dict[str, KeyProvider]:
    """One provider per ``keys.providers`` entry. Dev mode creates its local keyring, loudly;
    production never creates key material silently (``pipvault keys init-local``)."""
    providers: dict[str, KeyProvider] = {}
    for provider_id, uri in settings.resolved_key_providers().items():
        options: dict[str, object] = {"clock": clock}
        if uri.startswith("local"):
            options["random"] = random
            path = Path(uri.removeprefix("local://"))
            if settings.mode == "dev" and uri.startswith("local:///") and not path.exists():
                init_local_keyring(path, clock=clock, random=random)
                _log.warning(
                    "keys.dev_keyring_created",
                    path=str(path),
                    note="DEV MODE generated a local keyring; never use it for real money",
                )
        else:
            options.update(
                key_provider_options(
                    settings.keys, uri, settings.limits.storage_threads, dict(os.environ)
                )
            )
        try:
            providers[provider_id] = new_key_provider(uri, provider_id, **options)
        except VaultError as exc:
            raw = str(exc.metadata.get("field", "keys.providers"))
            problem = exc.message.removeprefix(f"{raw}: ")
            raise ConfigError(f"{key_setting_name(uri, raw)}: {problem}") from exc
    return providers


def dek_cache_entries(settings: Settings) -> int:
    if settings.keys.dek_cache_max_entries is not None:
        return settings.keys.dek_cache_max_entries
    remote = any(not u.startswith("local") for u in settings.resolved_key_providers().values())
    return 1024 if remote else 0


def event_sink(settings: Settings, reader: AuditReader) -> AuditEventSink | None:
    """``audit.event_sink``: every committed audit event as a JSON line (None when off)."""
    cfg = settings.audit
    if cfg.event_sink == "none":
        return None
    position = cfg.event_position_file
    if position is None:
        position = (
            cfg.event_file.with_name(cfg.event_file.name + ".position")
            if cfg.event_file is not None
            else settings.home / "audit-events.position"
        )
    return AuditEventSink(
        reader.store, build_writer(cfg.event_sink, cfg.event_file), Position(position)
    )


def build_notifier(settings: Settings) -> Notifier | None:
    """The pager configured in ``paging`` (None: paging off; pages still queue in the outbox)."""
    paging = settings.paging
    if paging.kind == "pagerduty":
        key = os.environ.get(paging.routing_key_env)
        if not key:
            raise ConfigError(f"paging.routing_key_env: ${paging.routing_key_env} is not set")
        url = paging.url or "https://events.pagerduty.com"
        return PagerDutyNotifier(Secret(key), url=url, timeout_s=paging.timeout_s)
    if paging.kind == "webhook":
        assert paging.url is not None  # validated in config
        signing = os.environ.get(paging.webhook_signing_key_env)
        return WebhookNotifier(
            paging.url,
            signing_key=Secret(signing) if signing else None,
            timeout_s=paging.timeout_s,
        )
    return None


def checkpoint_parts(settings: Settings) -> tuple[CheckpointSigner, list[Any], Path | None]:
    """The checkpoint signer and its sinks; dev mode creates its key under ``home``, loudly."""
    audit = settings.audit
    key_file = audit.checkpoint_key_file or settings.home / "audit-checkpoint.key"
    cp_file = audit.checkpoint_file or (
        settings.home / "audit-checkpoints.jsonl" if settings.mode == "dev" else None
    )
    try:
        if settings.mode == "dev" and not key_file.exists():
            create_signing_key(key_file)
            _log.warning("audit.dev_checkpoint_key_created", path=str(key_file))
        signer = CheckpointSigner(load_signing_key(key_file))
    except CheckpointKeyError as exc:
        raise ConfigError(f"audit.checkpoint_key_file: {exc}") from exc
    sinks: list[Any] = []
    if audit.checkpoint_sink in ("file", "both") and cp_file is not None:
        sinks.append(FileSink(cp_file))
    if audit.checkpoint_sink in ("stdout", "both"):
        sinks.append(StdoutSink())
    return signer, sinks, cp_file if audit.checkpoint_sink != "stdout" else None


def _audit_unavailable(exc: BaseException) -> BaseException:
    """What every signature of a failed batch gets: nothing of the batch was written."""
    _log.warning("audit.batch_error", error=type(exc).__name__)
    return AuditUnavailable("the audit event could not be written")


class VaultApp:
    """Everything the vault is made of, built from ``settings``."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, policy: Policy | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        if settings.mode == "dev":
            settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if policy is not None:
            self.policy_store = PolicyStore(policy)
        elif settings.policy_file is None:
            raise ConfigError("policy_file: no access policy configured")
        else:
            try:
                self.policy_store = PolicyStore.load(settings.policy_file)
            except PolicyError as exc:
                raise ConfigError(f"policy_file: {exc}") from exc
        self.policy = self.policy_store.current()
        self.identity_sources, self.jwt_source = self._identity_sources(settings)
        self.tls_files = self._tls_files(settings)
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
        self.random: Random = SystemRandom()
        keys_cfg, signing_cfg = settings.keys, settings.signing
        providers = build_key_providers(settings, self.clock, self.random)
        self.keys = KeyManager(
            self.db,
            {pid: MeteredKeyProvider(p, self.metrics) for pid, p in providers.items()},
            keys_cfg.primary if keys_cfg.providers else "local",
            wrap_limit=keys_cfg.wrap_limit,
            clock=self.clock,
            random=self.random,
            cache=DekCache(
                max_entries=dek_cache_entries(settings),
                max_age_s=keys_cfg.dek_cache_max_age_s,
                max_uses=keys_cfg.dek_cache_max_uses,
                clock=self.clock,
                on_hit=self.metrics.dek_cache_hits.inc,
                on_miss=self.metrics.dek_cache_misses.inc,
            ),
        )
        self.workspaces = WorkspaceManager(
            self.db,
            self.audit,
            self.clock,
            self.pages,
            on_freeze=lambda ws_id: self.keys.forget(workspace_id=ws_id),
        )
        strict = signing_cfg.coinbase_strict
        grace = signing_cfg.version_grace_period_s
        self.egress = EgressClient(
            timeout_s=signing_cfg.egress_timeout_s,
            max_in_flight_per_workspace=signing_cfg.egress_max_in_flight_per_workspace,
        )
        self.pager = Pager(
            self.clock, bucket_s=settings.paging.dedup_bucket_s, source=settings.paging.source
        )
        self.keys.on_integrity_failure = IntegrityPager(self.db, self.pager)
        sign_settings = SigningSettings(
            recv_window_cap_ms=signing_cfg.recv_window_cap_ms,
            coinbase_strict=strict,
            venue_base_urls=dict(signing_cfg.venue_base_urls),
        )
        self.attestor = Attestor(
            self.db,
            self.audit,
            self.keys,
            self.egress,
            self.clock,
            self.random,
            sign_settings,
            page_hook=self.pager.hook,
        )
        self.credentials = CredentialManager(
            self.db,
            self.audit,
            self.keys,
            self.clock,
            coinbase_strict=strict,
            attestor=self.attestor,
        )
        self.lifecycle = CredentialLifecycle(
            self.db, self.audit, self.keys, self.clock, coinbase_strict=strict, grace_period_s=grace
        )
        queries = CredentialQueries(self.db, self.audit, self.pages, coinbase_strict=strict)
        self.routing = RoutingContexts(
            self.db,
            self.audit,
            self.clock,
            default_ttl_s=signing_cfg.routing_ttl_default_s,
            max_ttl_s=signing_cfg.routing_ttl_max_s,
        )
        self.signing = SigningService(
            self.db,
            self.audit,
            self.keys,
            self.routing,
            self.egress,
            self.clock,
            self.random,
            sign_settings,
            page_hook=self.pager.hook,
        )
        self.hot_state = HotState()
        self.committer: GroupCommitter[PendingUse, UseWritten | Stale] = GroupCommitter(
            self.db.engine,
            SignBatch(self.audit, self.clock),
            on_batch_failure=_audit_unavailable,
            on_batch=self._batch_done,
            sqlite_autocheckpoint_pages=COMMITTER_AUTOCHECKPOINT_PAGES,
            retry=lost_a_race,
        )
        self.wal_checkpointer = WalCheckpointer(self.db.engine)
        invalidation.add_commit_listener(self.db.engine, self.hot_state.invalidate)
        self.epoch_watcher = invalidation.EpochWatcher(self.db.engine, self._epochs_moved)
        self.hot_signer = HotSigner(
            self.signing,
            self.keys,
            self.hot_state,
            self.committer.submit,
            self.run,
            self.egress,
            self.clock,
            self.random,
            sign_settings,
            self.metrics,
        )
        self.key_admin = KeyAdmin(self.db, self.audit, self.keys)
        self.audit_reader = AuditReader(
            self.db, self.audit, self.pages, poll_interval_s=settings.audit.stream_poll_interval_s
        )
        signer, sinks, cp_file = checkpoint_parts(settings)
        self.audit_alarm = AuditIntegrityPager(self.db, self.pager)
        self.checkpointer = AuditCheckpointer(
            self.audit_reader.store,
            signer,
            sinks,
            self.clock,
            interval_s=settings.audit.checkpoint_interval_s,
            heartbeat_s=settings.audit.checkpoint_heartbeat_s,
            on_regression=self.audit_alarm.regression_reporter(),
        )
        checkpoints = file_checkpoints(cp_file, signer.public_key) if cp_file else None
        self.audit_verifier = AuditVerifier(
            self.audit_reader,
            derive_key(server_key, "audit-chain"),
            checkpoints=checkpoints,
            on_broken=self.audit_alarm.reporter(audit_integrity.RPC),
        )
        self.scheduled_verification = ScheduledVerification(
            self.audit_reader.store,
            derive_key(server_key, "audit-chain"),
            self.audit_alarm,
            checkpoints=checkpoints,
        )
        self.event_sink = event_sink(settings, self.audit_reader)
        notifier = build_notifier(settings)
        self.outbox = SqlOutbox(self.db, self.clock)
        self.pager_sender = (
            PagerSender(
                self.outbox,
                notifier,
                self.random,
                backoff=Backoff(settings.paging.retry_base_s, settings.paging.retry_cap_s),
                metrics=self.metrics,
            )
            if notifier is not None
            else None
        )
        denials = DenialRecorder(self.db, self.audit)
        call_limits = Limits(
            max_deadline_s=limits.max_deadline_s,
            max_stream_deadline_s=limits.max_stream_deadline_s,
            trusted_proxies=tuple(ipaddress.ip_network(p) for p in settings.trusted_proxies),
        )
        self.rate_limiter = RateLimiter(
            burst_factor=settings.identity.rate_limit_burst_factor, monotonic=self.clock.monotonic
        )
        admission = Admission(self.identity_sources, call_limits, self.rate_limiter)

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
            socket_owner=listen.socket_owner,
            socket_group=listen.socket_group,
            max_message_bytes=limits.max_message_bytes,
            max_concurrent_rpcs=limits.max_concurrent_rpcs,
        )
        servicers = Servicers(
            workspace=WorkspaceServicer(self.workspaces, self.run, self.clock),
            credential=CredentialServicer(
                self.credentials, self.lifecycle, queries, self.attestor, self.run
            ),
            signing=SigningServicer(self.routing, self.hot_signer, self.run),
            audit=AuditServicer(self.audit_reader, self.audit_verifier, self.run),
            key=KeyServicer(self.key_admin, self.run),
        )

        # grpc.aio servers bind to the running event loop, so they are built in start().
        def make_servers() -> VaultServers:
            tls = self.tls_files
            return VaultServers(
                plan,
                servicers,
                [interceptor(Plane.DATA)],
                [interceptor(Plane.ADMIN)],
                server_credentials=(lambda: mtls_server_credentials(tls)) if tls else None,
            )

        self._make_servers = make_servers
        self.servers: VaultServers | None = None
        self.bound: Bound | None = None
        self.metrics_port: int | None = None
        self._jobs: list[asyncio.Task[None]] = []
        self._ready = False
        self.readiness = ReadinessCheck(
            self.db,
            self.keys,
            audit_failures=lambda: self.audit.consecutive_failures,
            audit_failures_before_not_serving=settings.audit.failures_before_not_serving,
            cache_signs_without_kms=dek_cache_entries(settings) > 0,
            audit_probe=self._probe_audit,
        )
        self._last_report = ReadinessReport(False, frozenset(), ())

    def _probe_audit(self) -> None:
        """While audit writes are failing: one system-chain event, ``audit.write_recovered``,
        in its own transaction. It commits only when writes work again (and then says, in the
        audit itself, how many writes had failed); if it fails it counts as one more."""
        failed = self.audit.consecutive_failures
        ctx = system_context("audit writes were failing: probing", method="readiness")
        record = AuditRecord("audit.write_recovered", details={"failed_writes": str(failed)})
        try:
            with self.db.transaction(timeout_s=2.0) as session:
                self.audit.append(session, ctx, record)
        except VaultError:
            _log.warning("audit.probe_failed", failed_writes=failed)

    def _batch_done(self, report: BatchReport) -> None:
        """Group-commit accounting: metrics, and audit health for readiness."""
        self.metrics.audit_batch_size.observe(report.size)
        for wait in report.waits:
            self.metrics.audit_write_seconds.observe(wait)
        if report.attempts > 1:
            self.metrics.audit_batch_retries.inc(report.attempts - 1)
        if report.ok:
            self.audit.write_durable()
        else:
            self.audit.write_failed()
            self.metrics.audit_failures.inc()
            _log.warning("audit.batch_failed", size=report.size)

    def _epochs_moved(self, workspace_ids: frozenset[str] | None, keys: bool) -> None:
        """Another process changed what cached signing state depends on: drop it, and with
        ``keys`` the cached data keys of those workspaces (revoke or freeze on another replica;
        a routing renewal elsewhere leaves them, so steady-state signing never calls the KMS)."""
        self.hot_state.invalidate(workspace_ids)
        if not keys:
            return
        if workspace_ids is None:
            self.keys.forget()
            return
        for ws_id in workspace_ids:
            self.keys.forget(workspace_id=ws_id)

    def _identity_sources(
        self, settings: Settings
    ) -> tuple[list[IdentitySource], JwtSource | None]:
        """Certificate first, then JWT, then static tokens; all read the one policy store."""
        ident = settings.identity
        sources: list[IdentitySource] = []
        if ident.spiffe_trust_domain:
            sources.append(SpiffeSource(self.policy_store, ident.spiffe_trust_domain))
        jwt_source = None
        if ident.jwt_jwks_file is not None and ident.jwt_audience:
            try:
                jwt_source = JwtSource(
                    self.policy_store,
                    ident.jwt_jwks_file,
                    ident.jwt_audience,
                    issuer=ident.jwt_issuer,
                    max_clock_skew_s=ident.jwt_max_clock_skew_s,
                    max_lifetime_s=ident.jwt_max_lifetime_s,
                    jwks_check_interval_s=ident.reload_interval_s,
                )
            except JwksError as exc:
                raise ConfigError(f"identity.jwt_jwks_file: {exc}") from exc
            sources.append(jwt_source)
        sources.append(StaticTokenSource(self.policy_store))
        return sources, jwt_source

    @staticmethod
    def _tls_files(settings: Settings) -> TlsFiles | None:
        tls = settings.tls
        if tls.cert_file is None or tls.key_file is None or tls.client_ca_file is None:
            return None
        try:
            return TlsFiles(
                tls.cert_file,
                tls.key_file,
                tls.client_ca_file,
                min_check_interval_s=tls.reload_interval_s,
            )
        except TlsConfigError as exc:
            raise ConfigError(f"tls: {exc}") from exc

    def reload_identity(self) -> None:
        """Policy and JWKS files: apply valid changes, keep the old ones otherwise (logged)."""
        self.policy_store.reload_if_changed()
        if self.jwt_source is not None:
            self.jwt_source.reload_if_changed()

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
        await self._check_readiness()
        self._watch_audit_health(asyncio.get_running_loop())
        self.epoch_watcher.start()
        self.wal_checkpointer.start()
        self._jobs.append(asyncio.create_task(self._readiness_loop()))
        self._jobs.append(asyncio.create_task(self._every(60.0, self.lifecycle.destroy_expired)))
        if self.settings.signing.attestation_interval_s > 0:
            scheduled = ScheduledAttestation(
                self.db, self.attestor, coinbase_strict=self.settings.signing.coinbase_strict
            )
            self._jobs.append(
                asyncio.create_task(
                    self._every(self.settings.signing.attestation_interval_s, scheduled.run)
                )
            )
        audit_cfg, paging_cfg = self.settings.audit, self.settings.paging
        self._jobs.append(
            asyncio.create_task(
                self._every(audit_cfg.checkpoint_interval_s, self.checkpointer.tick)
            )
        )
        self._jobs.append(
            asyncio.create_task(
                self._every(3600.0, lambda: self.outbox.prune(paging_cfg.outbox_retention_s))
            )
        )
        if audit_cfg.verify_interval_s > 0:  # the first run one interval after start
            verify = self.scheduled_verification.verify_audit_log
            self._jobs.append(
                asyncio.create_task(self._every(audit_cfg.verify_interval_s, verify, delay=True))
            )
        if self.pager_sender is not None:
            self._jobs.append(
                asyncio.create_task(self.pager_sender.run_forever(paging_cfg.sender_interval_s))
            )
        if self.event_sink is not None:
            sink_every = audit_cfg.event_sink_interval_s
            self._jobs.append(asyncio.create_task(self._every(sink_every, self.event_sink.tick)))
        if self.settings.identity.reload_interval_s > 0:
            interval = self.settings.identity.reload_interval_s
            self._jobs.append(asyncio.create_task(self._every(interval, self.reload_identity)))
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

    def is_ready(self) -> bool:
        """See ``services/readiness.py``: storage, audit writes, key material, key providers."""
        return self.readiness.check().ready

    def _readiness_report(self) -> ReadinessReport:
        report = self.readiness.check()
        try:
            self.metrics.pager_backlog.set(self.outbox.pending())
        except Exception:
            _log.warning("pager.backlog_unknown")
        return report

    async def _check_readiness(self) -> None:
        report = await self.run(self._readiness_report)
        self._log_transitions(self._last_report, report)
        self._last_report = report
        if report.ready != self._ready and self.servers is not None:
            await self.servers.set_serving(report.ready)
            self.metrics.ready.set(1 if report.ready else 0)
            if report.ready:
                _log.info("vault.readiness", serving=True)
            else:
                _log.warning("vault.readiness", serving=False)
        self._ready = report.ready

    def _log_transitions(self, old: ReadinessReport, new: ReadinessReport) -> None:
        """One log line per change, never one per check."""
        for component in COMPONENTS:
            was, now = component in old.degraded, component in new.degraded
            self.metrics.degraded.labels(component).set(1 if now else 0)
            if now and not was:
                _log.warning("vault.degraded", component=component, serving=new.ready)
            elif was and not now:
                _log.info("vault.recovered", component=component)
        for problem in new.problems:
            if problem not in old.problems:
                _log.error("vault.not_ready", problem=problem)

    def _watch_audit_health(self, loop: asyncio.AbstractEventLoop) -> None:
        """Re-check readiness the moment audit writes start failing past
        ``audit.failures_before_not_serving`` (or recover), not at the next periodic check:
        a replica that cannot make audit events durable leaves the load balancer at once."""

        def recheck() -> None:
            task = loop.create_task(self._check_readiness())
            self._jobs.append(task)
            task.add_done_callback(self._jobs.remove)

        def alarm() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
                loop.call_soon_threadsafe(recheck)

        self.audit.alarm_at = self.settings.audit.failures_before_not_serving
        self.audit.alarm = alarm

    async def _readiness_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.readiness_interval_s)
            try:
                await self._check_readiness()
            except Exception as exc:
                await asyncio.to_thread(_log.error, "vault.readiness_check_failed", exc_info=exc)

    async def _every(
        self, seconds: float, job: Callable[[], object], *, delay: bool = False
    ) -> None:
        """Run a system job periodically (``delay``: the first run one period after start);
        failures are retried next period. The first failure is logged with its traceback,
        rendered off the event loop (a long traceback must not stall health checks during an
        outage); repeats are one line until the job recovers."""
        name = getattr(job, "__name__", "job")
        failing = False
        if delay:
            await asyncio.sleep(seconds)
        while True:
            try:
                await self.run(job)
                if failing:
                    failing = False
                    _log.info("job.recovered", job=name)
            except Exception as exc:
                if failing:
                    _log.warning("job.still_failing", job=name, error=type(exc).__name__)
                else:
                    failing = True
                    await asyncio.to_thread(_log.error, "job.failed", job=name, exc_info=exc)
            await asyncio.sleep(seconds)

    async def stop(self) -> None:
        self.metrics.ready.set(0)
        self._ready = False
        if self.servers is not None:
            self.servers.end_follow_streams()  # first: nothing below waits for a follower
        self.audit.alarm = None
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
