"""``AuditLog.append``: the one way any capability records what happened.

The event is inserted in the caller's transaction, so it commits with the action or the action
does not happen. Events form one keyed hash chain per workspace (plus a ``system`` chain for
events outside any workspace): ``hash = HMAC-SHA256(chain_key, prev_hash || canonical(event))``.
Appends lock only their own chain's head row, so unrelated workspaces never serialize. A failure
to write becomes ``AUDIT_UNAVAILABLE``.

Readiness counts *durable* audit writes: an event counts as written when the transaction that
holds it commits (``storage.database.after_commit``), not when its insert is flushed - a flush
can succeed on a volume that then refuses the commit (a full disk), and counting flushes would
reset the failure count on every attempt and keep a replica SERVING while nothing is durable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from vault_server.audit._view import EventView
from vault_server.core.clock import Clock
from vault_server.core.errors import AuditUnavailable
from vault_server.domain import CallContext
from vault_server.storage.database import after_commit, after_storage_failure
from vault_server.storage.models import AuditChainHead, AuditEvent

SYSTEM_CHAIN = "system"
GENESIS = "0" * 64


class Outcome:
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


@dataclass(frozen=True)
class AuditRecord:
    """What to record; actor, peer, reason, request id and method come from the CallContext."""

    action: str
    outcome: str = Outcome.SUCCESS
    workspace_id: str | None = None  # workspace UUID (chain); None: system chain
    workspace: str = ""  # resource name `workspaces/{id}`
    credential: str = ""
    routing_context: str = ""
    error_reason: str = ""
    details: dict[str, str] = field(default_factory=dict)


CHAINED_FIELDS = (
    "chain_id", "seq", "event_time", "workspace_id", "workspace", "credential", "action",
    "outcome", "actor_type", "actor_id", "on_behalf_of", "peer", "reason", "routing_context",
    "request_id", "method", "error_reason", "details", "prev_hash",
)  # fmt: skip


# One encoder for every event (json.dumps with options builds a new one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_fields(values: dict[str, Any]) -> bytes:
    """The bytes the chain hash covers: every field but ``id`` and ``hash`` (RFC 8785-style
    canonical JSON: sorted keys, no whitespace, UTF-8)."""
    doc = {k: values[k] for k in CHAINED_FIELDS}
    doc["event_time"] = values["event_time"].astimezone(dt.UTC).isoformat(timespec="microseconds")
    return _CANONICAL.encode(doc).encode()


def canonical_event(row: AuditEvent) -> bytes:
    return canonical_fields({k: getattr(row, k) for k in CHAINED_FIELDS})


def fields_hash(key: bytes, values: dict[str, Any]) -> str:
    return hmac.new(key, canonical_fields(values), hashlib.sha256).hexdigest()


def chain_hash(key: bytes, row: AuditEvent) -> str:
    return hmac.new(key, canonical_event(row), hashlib.sha256).hexdigest()


class AuditLog:
    """Appends chained audit events inside the caller's transaction."""

    def __init__(self, chain_key: bytes, clock: Clock) -> None:
        if len(chain_key) < 32:
            raise ValueError("audit chain key must be at least 32 bytes")
        self._key = chain_key
        # The keyed state, set up once; each event hashes a copy (same digest as hmac.new).
        self._keyed = hmac.new(chain_key, digestmod=hashlib.sha256)
        self._clock = clock
        self.consecutive_failures = 0  # readiness turns NOT_SERVING past a threshold
        # Readiness: ``alarm`` is called (from any thread) when the count reaches ``alarm_at``
        # and when it returns to 0 from there, so NOT_SERVING does not wait for the next poll.
        self.alarm_at: int | None = None
        self.alarm: Callable[[], None] | None = None

    def write_failed(self) -> None:
        """An audit write (a flush, a batch or the commit holding events) did not become
        durable."""
        self.consecutive_failures += 1
        if self.alarm is not None and self.consecutive_failures == self.alarm_at:
            self.alarm()

    def write_durable(self) -> None:
        """A transaction holding audit events committed."""
        was = self.consecutive_failures
        self.consecutive_failures = 0
        if self.alarm is not None and self.alarm_at is not None and was >= self.alarm_at:
            self.alarm()

    def hash_of(self, values: dict[str, Any]) -> str:
        """The chain hash of one event given as column values (the group-commit writer)."""
        return self._hash(values)

    def _hash(self, values: dict[str, Any]) -> str:
        mac = self._keyed.copy()
        mac.update(canonical_fields(values))
        return mac.hexdigest()

    def values_for(
        self, ctx: CallContext, record: AuditRecord, seq: int, prev_hash: str
    ) -> dict[str, Any]:
        """The column values of one event (hash included) for a batch insert."""
        values: dict[str, Any] = {
            "chain_id": record.workspace_id or SYSTEM_CHAIN,
            "seq": seq,
            "event_time": self._clock.now(),
            "workspace_id": record.workspace_id,
            "workspace": record.workspace,
            "credential": record.credential,
            "action": record.action,
            "outcome": record.outcome,
            "actor_type": ctx.actor.type.value,
            "actor_id": ctx.actor.id,
            "on_behalf_of": ctx.actor.on_behalf_of,
            "peer": ctx.peer,
            "reason": ctx.reason,
            "routing_context": record.routing_context or ctx.routing_context,
            "request_id": ctx.request_id,
            "method": ctx.method,
            "error_reason": record.error_reason,
            "details": dict(record.details),
            "prev_hash": prev_hash,
        }
        values["hash"] = self._hash(values)
        return values

    def append(self, session: Session, ctx: CallContext, record: AuditRecord) -> AuditEvent:
        """Insert one event; raise ``AuditUnavailable`` if it cannot be written in time."""
        ctx.ensure_time_left()
        chain_id = record.workspace_id or SYSTEM_CHAIN
        try:
            head = self._lock_head(session, chain_id, record.workspace_id)
            row = AuditEvent(
                chain_id=chain_id,
                seq=head.seq + 1,
                event_time=self._clock.now(),
                workspace_id=record.workspace_id,
                workspace=record.workspace,
                credential=record.credential,
                action=record.action,
                outcome=record.outcome,
                actor_type=ctx.actor.type.value,
                actor_id=ctx.actor.id,
                on_behalf_of=ctx.actor.on_behalf_of,
                peer=ctx.peer,
                reason=ctx.reason,
                routing_context=record.routing_context or ctx.routing_context,
                request_id=ctx.request_id,
                method=ctx.method,
                error_reason=record.error_reason,
                details=dict(record.details),
                prev_hash=head.hash,
                hash="",
            )
            row.hash = chain_hash(self._key, row)
            session.add(row)
            head.seq = row.seq
            head.hash = row.hash
            session.flush()
        except SQLAlchemyError as exc:
            self.write_failed()
            raise AuditUnavailable("the audit event could not be written") from exc
        # Counted when the transaction commits (or fails to), never at the flush.
        after_commit(session, self, self.write_durable)
        after_storage_failure(session, self, self.write_failed)
        ctx.ensure_time_left()
        return row

    def _lock_head(self, session: Session, chain_id: str, workspace_id: str | None) -> Any:
        stmt = select(AuditChainHead).where(AuditChainHead.chain_id == chain_id).with_for_update()
        head = session.execute(stmt).scalar_one_or_none()
        if head is None:
            head = AuditChainHead(chain_id=chain_id, workspace_id=workspace_id, seq=0, hash=GENESIS)
            session.add(head)
            session.flush()
        return head


def event_name(row: EventView, workspace_resource: str = "") -> str:
    base = workspace_resource or row.workspace
    if row.chain_id == SYSTEM_CHAIN or not base:
        return f"system/auditEvents/{row.seq}"
    return f"{base}/auditEvents/{row.seq}"
