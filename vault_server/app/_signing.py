"""Wiring of custody and signing: credentials (onboarding, lifecycle, queries, attestation),
routing contexts, the signing service and its hot path with the group committer that makes
every signature's audit event durable before the signature leaves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vault_server.audit import AuditLog
from vault_server.config import Settings
from vault_server.core.clock import Clock, Random
from vault_server.core.errors import AuditUnavailable
from vault_server.custody import (
    Attestor,
    CredentialLifecycle,
    CredentialManager,
    CredentialQueries,
    SigningSettings,
)
from vault_server.domain import PageTokens
from vault_server.egress.client import EgressClient
from vault_server.egress.ctrader import CtraderConnections
from vault_server.keys import KeyManager
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics
from vault_server.paging import Pager
from vault_server.rpc.runner import BlockingRunner
from vault_server.sessions import (
    PlatformApplications,
    SessionAdmin,
    SessionEngine,
    SessionKey,
    SessionSettings,
    SessionStore,
    SessionWire,
)
from vault_server.signing import (
    FanOut,
    HotSigner,
    HotState,
    PendingUse,
    RoutingContexts,
    SignBatch,
    SigningService,
    Stale,
    UseWritten,
)
from vault_server.storage.conflicts import lost_a_race
from vault_server.storage.database import Database
from vault_server.storage.group_commit import BatchReport, GroupCommitter
from vault_server.storage.wal_checkpoint import COMMITTER_AUTOCHECKPOINT_PAGES, WalCheckpointer

_log = get_logger("pipvault.app")


@dataclass(frozen=True)
class SigningParts:
    attestor: Attestor
    credentials: CredentialManager
    lifecycle: CredentialLifecycle
    queries: CredentialQueries
    routing: RoutingContexts
    signing: SigningService
    hot_state: HotState
    committer: GroupCommitter[PendingUse, UseWritten | Stale]
    wal_checkpointer: WalCheckpointer
    hot_signer: HotSigner
    sessions: SessionParts
    fan_out: FanOut


def build_signing(
    settings: Settings,
    *,
    db: Database,
    audit: AuditLog,
    keys: KeyManager,
    pages: PageTokens,
    pager: Pager,
    egress: EgressClient,
    run: BlockingRunner,
    metrics: Metrics,
    clock: Clock,
    random: Random,
    on_batch: Callable[[BatchReport], None],
) -> SigningParts:
    cfg = settings.signing
    strict = cfg.coinbase_strict
    venue = SigningSettings(
        recv_window_cap_ms=cfg.recv_window_cap_ms,
        coinbase_strict=strict,
        venue_base_urls=dict(cfg.venue_base_urls),
    )
    attestor = Attestor(db, audit, keys, egress, clock, random, venue, page_hook=pager.hook)
    sessions = build_sessions(settings, db=db, audit=audit, keys=keys, pager=pager,
                              egress=egress, run=run, clock=clock, metrics=metrics)  # fmt: skip
    credentials = CredentialManager(
        db, audit, keys, clock, coinbase_strict=strict, attestor=attestor,
        grant=sessions.wire.exchange,
    )  # fmt: skip
    lifecycle = CredentialLifecycle(
        db, audit, keys, clock, coinbase_strict=strict, grace_period_s=cfg.version_grace_period_s,
        grant=sessions.wire.exchange,
    )  # fmt: skip
    queries = CredentialQueries(db, audit, pages, coinbase_strict=strict)
    routing = RoutingContexts(
        db,
        audit,
        clock,
        default_ttl_s=cfg.routing_ttl_default_s,
        max_ttl_s=cfg.routing_ttl_max_s,
    )
    signing = SigningService(
        db, audit, keys, routing, egress, clock, random, venue, page_hook=pager.hook
    )
    hot_state = HotState()
    routing.on_begin = hot_state.put
    committer: GroupCommitter[PendingUse, UseWritten | Stale] = GroupCommitter(
        db.engine,
        SignBatch(audit, clock),
        on_batch_failure=_audit_unavailable,
        on_batch=on_batch,
        sqlite_autocheckpoint_pages=COMMITTER_AUTOCHECKPOINT_PAGES,
        retry=lost_a_race,
    )
    hot_signer = HotSigner(
        signing, keys, hot_state, committer.submit, run, egress, clock, random, venue, metrics,
        sessions.engine,
    )  # fmt: skip
    fan_out = FanOut(hot_signer, signing, hot_state, committer.submit_all, run, cfg.max_batch_items)
    return SigningParts(
        attestor,
        credentials,
        lifecycle,
        queries,
        routing,
        signing,
        hot_state,
        committer,
        WalCheckpointer(db.engine),
        hot_signer,
        sessions,
        fan_out,
    )


@dataclass(frozen=True)
class SessionParts:
    engine: SessionEngine
    wire: SessionWire
    admin: SessionAdmin
    applications: PlatformApplications


def build_sessions(
    settings: Settings, *, db: Database, audit: AuditLog, keys: KeyManager, pager: Pager,
    egress: EgressClient, run: BlockingRunner, clock: Clock, metrics: Metrics | None = None,
) -> SessionParts:  # fmt: skip
    """The venue-session engine of forex/CFD platforms, paging through ``pager``."""

    def page(
        session: Session, key: SessionKey, state: str, reason: str, generation: int, seq: int,
        hash_: str,
    ) -> None:  # fmt: skip
        pager.page_session(
            session, workspace_id=key.workspace_id, workspace=key.workspace,
            credential=key.credential, state=state, error_reason=reason, generation=generation,
            audit_seq=seq, audit_hash=hash_,
        )  # fmt: skip

    cfg = settings.sessions
    tuning = SessionSettings(
        lease_s=cfg.lease_s,
        max_failed_logins=cfg.max_failed_logins,
        login_backoff_base_s=cfg.login_backoff_base_s,
        login_backoff_max_s=cfg.login_backoff_max_s,
        unavailable_backoff_s=cfg.unavailable_backoff_s,
    )
    applications = PlatformApplications(db, audit, keys, clock)
    wire = SessionWire(
        egress, clock, applications.get, transports={"ctrader": CtraderConnections()},
        venue_base_urls=settings.signing.venue_base_urls,
    )  # fmt: skip
    store = SessionStore(db, audit, page)
    engine = SessionEngine(store, keys, wire, clock, run, tuning, metrics)
    return SessionParts(engine, wire, SessionAdmin(db, audit, clock, engine.forget), applications)


def _audit_unavailable(exc: BaseException) -> BaseException:
    """What every signature of a failed batch gets: nothing of the batch was written."""
    _log.warning("audit.batch_error", error=type(exc).__name__)
    return AuditUnavailable("the audit event could not be written")
