"""Pages for reads outside an active routing context (DESIGN.md §1.5, §6).

``Pager.page_read_outside_context`` adds a row to ``pager_outbox`` in the caller's (audit)
transaction: the page commits with the audit event or not at all, and a crash after the commit
loses nothing because ``alerts.pager_sender`` delivers from the table. Pages carry a ``dedup_key``
per credential and time bucket; a row is inserted only when no live (pending or delivered) row of
that key exists, and ``SqlOutbox`` sends only the oldest live row of a key and retires the rest
once it is delivered, so concurrent reads in one bucket still produce exactly one page.

The stored payload holds identifiers only (never secret material, never the routing key, which
the notifier adds at send time).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from vault_server.alerts.pager_sender import OutboxItem
from vault_server.audit import AuditRecord
from vault_server.core.clock import Clock
from vault_server.domain import CallContext, workspace_of_name
from vault_server.storage.database import Database
from vault_server.storage.models import PagerOutbox
from vault_server.storage.tenant import CrossWorkspaceJob, cross_workspace_job

FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # next attempt of a page given up on
GAVE_UP = "gave up: "
DEDUPLICATED = "deduplicated"
PAGE_CLASS = "credential.read.no_routing_context"
INTEGRITY_PAGE_CLASS = "credential.integrity_check_failed"
AUDIT_INTEGRITY_PAGE_CLASS = "audit.integrity_check_failed"
SESSION_PAGE_CLASS = "credential.session_needs_attention"


def dedup_key(workspace: str, credential: str, bucket: int) -> str:
    """``pipvault:ctxless-read:{ws}:{cred}:{bucket}`` from resource names (ids only)."""
    ws = workspace_of_name(workspace) or workspace_of_name(credential) or "-"
    cred = credential.rsplit("/", 1)[-1] if "/credentials/" in credential else "-"
    return f"pipvault:ctxless-read:{ws}:{cred}:{bucket}"[:255]


def _live(key: str) -> Any:
    return and_(
        PagerOutbox.dedup_key == key,
        or_(PagerOutbox.delivered_time.is_not(None), PagerOutbox.next_attempt_time < FAR_FUTURE),
    )


class Pager:
    """Writes pages into the outbox, inside the caller's transaction."""

    def __init__(self, clock: Clock, *, bucket_s: int = 600, source: str = "pipvault") -> None:
        if bucket_s < 1:
            raise ValueError("bucket_s must be at least 1")
        self._clock = clock
        self._bucket_s = bucket_s
        self._source = source

    def page_read_outside_context(
        self,
        session: Session,
        ctx: CallContext,
        *,
        workspace_id: str | None,
        workspace: str,
        credential: str,
        kind: str,
        audit_seq: int,
        audit_hash: str,
    ) -> PagerOutbox | None:
        """Queue one page (None when a live page for this credential and bucket exists)."""
        now = self._clock.now()
        key = dedup_key(workspace, credential, int(now.timestamp()) // self._bucket_s)
        if session.execute(select(PagerOutbox.id).where(_live(key)).limit(1)).first():
            return None
        event = f"{workspace or 'system'}/auditEvents/{audit_seq}"
        subject = credential or workspace or "an unknown credential"
        payload = {
            "summary": f"Credential read outside an active routing context: {subject} ({kind})",
            "source": self._source,
            "severity": "critical",
            "class": PAGE_CLASS,
            "component": "pipvault",
            "timestamp": now.isoformat(),
            "custom_details": {
                "workspace": workspace,
                "credential": credential,
                "actor": ctx.actor.id,
                "peer": ctx.peer,
                "reason": ctx.reason[:500],
                "audit_event": event,
                "audit_hash": audit_hash,
                "kind": kind,
            },
        }
        return _enqueue(session, workspace_id, key, payload, now)

    def page_integrity_failure(
        self,
        session: Session,
        *,
        workspace_id: str | None,
        workspace: str,
        credential: str,
        credential_version: int,
        provider_id: str,
        kek_version: int,
        operation: str,
    ) -> PagerOutbox | None:
        """Queue one page for a ciphertext that failed its integrity check (wrong or replaced
        KEK, tampered row); one per credential and bucket (None when one is live)."""
        now = self._clock.now()
        ws = workspace_of_name(workspace) or "-"
        cred = credential.rsplit("/", 1)[-1] if "/credentials/" in credential else "-"
        bucket = int(now.timestamp()) // self._bucket_s
        key = f"pipvault:integrity:{ws}:{cred}:{bucket}"[:255]
        if session.execute(select(PagerOutbox.id).where(_live(key)).limit(1)).first():
            return None
        payload = {
            "summary": f"Ciphertext failed its integrity check: {credential or workspace} "
            f"(version {credential_version}, KEK {provider_id}:{kek_version})",
            "source": self._source,
            "severity": "critical",
            "class": INTEGRITY_PAGE_CLASS,
            "component": "pipvault",
            "timestamp": now.isoformat(),
            "custom_details": {
                "workspace": workspace,
                "credential": credential,
                "credential_version": str(credential_version),
                "kek": f"{provider_id}:{kek_version}",
                "operation": operation,
            },
        }
        return _enqueue(session, workspace_id, key, payload, now)

    def page_session(
        self,
        session: Session,
        *,
        workspace_id: str,
        workspace: str,
        credential: str,
        state: str,
        error_reason: str,
        generation: int,
        audit_seq: int,
        audit_hash: str,
    ) -> PagerOutbox | None:
        """Queue one page for a credential whose venue session needs a person (``LOCKED_OUT``,
        ``NEEDS_REAUTHORIZATION``). The key names the credential, the state and the session
        generation it was entered from: however many replicas and orders see it, one page."""
        ws = workspace_of_name(workspace) or "-"
        cred = credential.rsplit("/", 1)[-1]
        key = f"pipvault:session:{ws}:{cred}:{state}:{generation}"[:255]
        if session.execute(select(PagerOutbox.id).where(_live(key)).limit(1)).first():
            return None
        now = self._clock.now()
        event = f"{workspace}/auditEvents/{audit_seq}"
        payload = {
            "summary": f"Venue session {state.upper()}: {credential} ({error_reason})",
            "source": self._source,
            "severity": "critical",
            "class": SESSION_PAGE_CLASS,
            "component": "pipvault",
            "timestamp": now.isoformat(),
            "custom_details": {
                "workspace": workspace,
                "credential": credential,
                "state": state,
                "error_reason": error_reason,
                "audit_event": event,
                "audit_hash": audit_hash,
            },
        }
        return _enqueue(session, workspace_id, key, payload, now)

    def page_audit_integrity(
        self,
        session: Session,
        *,
        dedup_key: str,
        chain: str,
        event: str,
        seq: int,
        problem: str,
        detail: str,
        found_by: str,
    ) -> PagerOutbox | None:
        """Queue one page for a break in the audit log (``audit_integrity``). The key names the
        break itself, with no time bucket: the same break found again, by any verifier, pages
        nobody while its page is live (pending or delivered); None then."""
        if session.execute(select(PagerOutbox.id).where(_live(dedup_key)).limit(1)).first():
            return None
        now = self._clock.now()
        payload = {
            "summary": f"Audit log integrity check failed: {event} ({problem})",
            "source": self._source,
            "severity": "critical",
            "class": AUDIT_INTEGRITY_PAGE_CLASS,
            "component": "pipvault",
            "timestamp": now.isoformat(),
            "custom_details": {
                "chain": chain,
                "first_bad_event": event,
                "seq": str(seq),
                "problem": problem,
                "detail": detail[:500],
                "found_by": found_by,
            },
        }
        return _enqueue(session, None, dedup_key, payload, now)

    def hook(
        self, session: Session, ctx: CallContext, record: AuditRecord, seq: int, hash_: str
    ) -> None:
        """The ``PageHook`` the signing and attestation services call after their audit row."""
        details = record.details
        kind = details.get("purpose") or f"{details.get('mode', 'read')}_without_routing_context"
        self.page_read_outside_context(
            session,
            ctx,
            workspace_id=record.workspace_id,
            workspace=record.workspace,
            credential=record.credential,
            kind=kind,
            audit_seq=seq,
            audit_hash=hash_,
        )


class SqlOutbox:
    """``alerts.pager_sender.OutboxStore`` over the ``pager_outbox`` table: every workspace's
    pages, so each transaction is a named cross-workspace job (``pager_sender``; pruning is
    ``pager_prune``) that row-level security admits for exactly those commands."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def claim(self, limit: int, lease_s: float) -> list[OutboxItem]:
        """Lease up to ``limit`` due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas
        share the work). Only the oldest live row of a dedup key is handed out; rows of a key
        already delivered are retired here without being sent."""
        now = self._clock.now()
        items: list[OutboxItem] = []
        with self._db.transaction() as s:
            cross_workspace_job(s, CrossWorkspaceJob.PAGER_SENDER)
            due = (
                select(PagerOutbox)
                .where(PagerOutbox.delivered_time.is_(None), PagerOutbox.next_attempt_time <= now)
                .order_by(PagerOutbox.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            for row in s.scalars(due).all():
                delivered = s.execute(
                    select(PagerOutbox.id).where(
                        PagerOutbox.dedup_key == row.dedup_key,
                        PagerOutbox.delivered_time.is_not(None),
                    )
                ).first()
                if delivered is not None:
                    row.delivered_time, row.last_error = now, DEDUPLICATED
                    continue
                older = s.execute(
                    select(PagerOutbox.id).where(_live(row.dedup_key), PagerOutbox.id < row.id)
                ).first()
                if older is not None:
                    continue  # waits for the older row of its key, then is retired
                row.attempts += 1
                row.next_attempt_time = now + dt.timedelta(seconds=lease_s)
                items.append(OutboxItem(row.id, row.dedup_key, dict(row.payload), row.attempts))
        return items

    def _set(self, item_id: int, **values: Any) -> None:
        with self._db.transaction() as s:
            cross_workspace_job(s, CrossWorkspaceJob.PAGER_SENDER)
            s.execute(update(PagerOutbox).where(PagerOutbox.id == item_id).values(**values))

    def delivered(self, item_id: int) -> None:
        self._set(item_id, delivered_time=self._clock.now(), last_error="")

    def retry(self, item_id: int, delay_s: float, error: str) -> None:
        at = self._clock.now() + dt.timedelta(seconds=delay_s)
        self._set(item_id, next_attempt_time=at, last_error=error[:255])

    def give_up(self, item_id: int, error: str) -> None:
        self._set(item_id, next_attempt_time=FAR_FUTURE, last_error=(GAVE_UP + error)[:255])

    def prune(self, older_than_s: float) -> int:
        """Delete delivered (or given-up) pages created more than ``older_than_s`` ago; the
        audit log, not the outbox, is the record of what happened."""
        cutoff = self._clock.now() - dt.timedelta(seconds=older_than_s)
        done = or_(
            PagerOutbox.delivered_time.is_not(None), PagerOutbox.next_attempt_time >= FAR_FUTURE
        )
        with self._db.transaction() as s:
            cross_workspace_job(s, CrossWorkspaceJob.PAGER_PRUNE)
            gone = s.execute(delete(PagerOutbox).where(done, PagerOutbox.create_time < cutoff))
            return int(getattr(gone, "rowcount", 0) or 0)

    def pending(self) -> int:
        """Pages not yet delivered and not given up on (readiness, metrics, tests)."""
        with self._db.transaction() as s:
            cross_workspace_job(s, CrossWorkspaceJob.PAGER_SENDER)
            stmt = select(func.count(PagerOutbox.id)).where(
                PagerOutbox.delivered_time.is_(None), PagerOutbox.next_attempt_time < FAR_FUTURE
            )
            return int(s.execute(stmt).scalar_one())


def _enqueue(
    session: Session, workspace_id: str | None, key: str, payload: dict[str, Any], now: dt.datetime
) -> PagerOutbox:
    """Write one page into the outbox (in the caller's transaction), due now."""
    row = PagerOutbox(
        workspace_id=workspace_id,
        dedup_key=key,
        payload=payload,
        create_time=now,
        attempts=0,
        next_attempt_time=now,
        delivered_time=None,
        last_error="",
    )
    session.add(row)
    session.flush()
    return row
