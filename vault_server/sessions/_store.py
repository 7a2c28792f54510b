"""The ``venue_sessions`` row of a credential: what the fleet shares about its venue session.

Every decision about a session is taken in one short transaction with the row locked
(``FOR UPDATE`` on PostgreSQL; SQLite serialises writers): use the sealed tokens, wait for the
replica that holds the renewal lease, refuse (locked out, needs reauthorization, backing off),
or take the lease and renew. No transaction is ever open while a venue is called: the lease is
taken, the venue answers, and the outcome is written in a second transaction together with its
audit event (and page), conditional on still holding the lease.

A lease that outlives its holder (``kill -9`` mid-renewal) expires. If the holder was sending a
refresh token that the venue rotates, that token may already be consumed while its successor
was never written: the grant is then lost, so the next look at the row moves the credential to
``needs_reauthorization`` and pages once (the loss window is one lease, ``lease_s``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault_server.audit import AuditLog, AuditRecord, Outcome
from vault_server.domain import CallContext
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, CredentialVersion, VenueSession
from vault_server.storage.tenant import bind_workspace

IDLE = "idle"
ACTIVE = "active"
RENEWING = "renewing"
NEEDS_REAUTHORIZATION = "needs_reauthorization"
LOCKED_OUT = "locked_out"

# Called in the audit transaction of a state that needs a person (once per entry).
SessionPageHook = Callable[[Session, "SessionKey", str, str, int, int, str], None]


@dataclass(frozen=True)
class SessionKey:
    """One credential version's session."""

    workspace_id: str
    workspace: str  # workspaces/{ws}
    credential_id: str
    credential: str  # workspaces/{ws}/credentials/{c}
    version: int


@dataclass(frozen=True)
class Held:
    """Sealed tokens the row holds, valid past the renewal margin."""

    generation: int
    envelope: bytes


@dataclass(frozen=True)
class Wait:
    """Another replica holds the renewal lease."""


@dataclass(frozen=True)
class Leased:
    """This replica holds the lease: renew. ``envelope`` is the current (maybe stale) session,
    ``material`` the credential version's sealed secret (for a login)."""

    generation: int
    envelope: bytes | None
    material: bytes | None
    refresh_expire: dt.datetime | None


@dataclass(frozen=True)
class Refused:
    state: str  # locked_out | needs_reauthorization | backoff
    reason: str
    retry_after_s: float = 0.0


Decision = Held | Wait | Leased | Refused


@dataclass(frozen=True)
class Renewed:
    """What a successful login or refresh writes back (already sealed)."""

    envelope: bytes
    expire: dt.datetime
    refresh_expire: dt.datetime | None
    provider_id: str = ""
    kek_version: int = 0


class SessionStore:
    def __init__(self, db: Database, audit: AuditLog, page: SessionPageHook | None) -> None:
        self._db = db
        self._audit = audit
        self._page = page

    # --- reading and leasing ------------------------------------------------------------------
    def decide(
        self, ctx: CallContext, key: SessionKey, *, now: dt.datetime, owner: str, lease_s: float,
        margin: dt.timedelta, stale_generation: int | None, rotates: bool,
    ) -> Decision:  # fmt: skip
        """Use, wait, refuse or lease, in one transaction with the row locked."""
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            bind_workspace(session, key.workspace_id)
            row = self._row(session, key, now)
            if row.state == NEEDS_REAUTHORIZATION:
                return Refused(NEEDS_REAUTHORIZATION, "REAUTHORIZATION_REQUIRED")
            if row.state == LOCKED_OUT:
                return Refused(LOCKED_OUT, "SESSION_LOCKED_OUT")
            if row.lease_owner:
                if row.lease_until is not None and row.lease_until > now:
                    return Wait()
                if row.lease_kind == "refresh" and rotates:
                    self._enter(session, ctx, key, row, NEEDS_REAUTHORIZATION,
                                "REAUTHORIZATION_REQUIRED", now, "refresh-lost")  # fmt: skip
                    return Refused(NEEDS_REAUTHORIZATION, "REAUTHORIZATION_REQUIRED")
                self._release(row, now)
            fresh = row.expire_time is not None and row.expire_time - margin > now
            if row.envelope is not None and fresh and row.generation != stale_generation:
                return Held(row.generation, bytes(row.envelope))
            if row.next_attempt_time is not None and row.next_attempt_time > now:
                wait = (row.next_attempt_time - now).total_seconds()
                return Refused("backoff", "SESSION_BACKOFF", retry_after_s=wait)
            row.lease_owner = owner
            row.lease_until = now + dt.timedelta(seconds=lease_s)
            row.lease_kind = "login"
            row.state = RENEWING
            row.update_time = now
            version = session.execute(
                select(CredentialVersion.envelope).where(
                    CredentialVersion.workspace_id == key.workspace_id,
                    CredentialVersion.credential_id == key.credential_id,
                    CredentialVersion.version == key.version,
                )
            ).scalar_one_or_none()
            return Leased(
                row.generation,
                bytes(row.envelope) if row.envelope is not None else None,
                bytes(version) if version is not None else None,
                row.refresh_expire_time,
            )

    def mark_refreshing(self, ctx: CallContext, key: SessionKey, owner: str) -> bool:
        """Record that a rotating refresh token is about to be sent (crash detection)."""
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            bind_workspace(session, key.workspace_id)
            row = session.get(VenueSession, (key.credential_id, key.version), with_for_update=True)
            if row is None or row.lease_owner != owner:
                return False
            row.lease_kind = "refresh"
            return True

    # --- outcomes -----------------------------------------------------------------------------
    def renewed(
        self, ctx: CallContext, key: SessionKey, owner: str, renewed: Renewed, now: dt.datetime,
        action: str, details: dict[str, str],
    ) -> int | None:  # fmt: skip
        """Write back a login's or refresh's tokens with its audit event; the new generation,
        or None when the lease was lost meanwhile (nothing written)."""
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            bind_workspace(session, key.workspace_id)
            row = session.get(VenueSession, (key.credential_id, key.version), with_for_update=True)
            if row is None or row.lease_owner != owner:
                return None
            row.generation += 1
            row.envelope = renewed.envelope
            row.provider_id, row.kek_version = renewed.provider_id, renewed.kek_version
            row.expire_time = renewed.expire
            row.refresh_expire_time = renewed.refresh_expire
            row.renew_time = now
            row.state = ACTIVE
            row.failures = 0
            row.next_attempt_time = None
            row.last_error = ""
            self._release(row, now)
            self._record(session, ctx, key, action, Outcome.SUCCESS, "", details)
            return row.generation

    def failed(
        self, ctx: CallContext, key: SessionKey, owner: str, now: dt.datetime, action: str,
        reason: str, *, counted: bool, max_failures: int, backoff: Callable[[int], float],
        unavailable_backoff_s: float, lost_grant: bool,
    ) -> str:  # fmt: skip
        """Record a failed login or refresh; returns the row's state afterwards."""
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            bind_workspace(session, key.workspace_id)
            row = session.get(VenueSession, (key.credential_id, key.version), with_for_update=True)
            if row is None or row.lease_owner != owner:
                return row.state if row is not None else IDLE
            self._release(row, now)
            row.state = ACTIVE if row.envelope is not None else IDLE
            row.last_error = reason
            details = {"failures": str(row.failures)}
            if lost_grant:
                self._record(session, ctx, key, action, Outcome.FAILED, reason, details)
                self._enter(session, ctx, key, row, NEEDS_REAUTHORIZATION, reason, now, action)
                return row.state
            if counted:
                row.failures += 1
                details["failures"] = str(row.failures)
                if row.failures >= max_failures:
                    self._record(session, ctx, key, action, Outcome.DENIED, reason, details)
                    self._enter(session, ctx, key, row, LOCKED_OUT, reason, now, action)
                    return row.state
                wait = backoff(row.failures)
            else:
                wait = unavailable_backoff_s
            row.next_attempt_time = now + dt.timedelta(seconds=wait)
            outcome = Outcome.DENIED if counted else Outcome.FAILED
            self._record(session, ctx, key, action, outcome, reason, details)
            return row.state

    def release(self, ctx: CallContext, key: SessionKey, owner: str, now: dt.datetime) -> None:
        """Give the lease back untouched (the renewal was abandoned before anything was sent)."""
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            bind_workspace(session, key.workspace_id)
            row = session.get(VenueSession, (key.credential_id, key.version), with_for_update=True)
            if row is not None and row.lease_owner == owner:
                self._release(row, now)
                row.state = ACTIVE if row.envelope is not None else IDLE

    def lost_grant(self, ctx: CallContext, key: SessionKey, now: dt.datetime, why: str) -> None:
        """A rotated refresh token could not be written back: the grant is gone."""
        with self._db.transaction(timeout_s=None) as session:
            bind_workspace(session, key.workspace_id)
            row = session.get(VenueSession, (key.credential_id, key.version), with_for_update=True)
            if row is None or row.state == NEEDS_REAUTHORIZATION:
                return
            self._release(row, now)
            self._enter(session, ctx, key, row, NEEDS_REAUTHORIZATION,
                        "REAUTHORIZATION_REQUIRED", now, why)  # fmt: skip

    # --- helpers ------------------------------------------------------------------------------
    def _row(self, session: Session, key: SessionKey, now: dt.datetime) -> VenueSession:
        row = session.get(VenueSession, (key.credential_id, key.version), with_for_update=True)
        if row is None:
            # The credential row is locked first: two replicas creating the session row at once
            # serialise there instead of failing on the primary key.
            session.get(Credential, key.credential_id, with_for_update=True)
            row = session.get(VenueSession, (key.credential_id, key.version), with_for_update=True)
        if row is None:
            row = VenueSession(
                credential_id=key.credential_id, workspace_id=key.workspace_id,
                credential_version=key.version, state=IDLE, generation=0, envelope=None,
                provider_id="", kek_version=0,
                lease_owner="", lease_kind="", failures=0, last_error="", update_time=now,
            )  # fmt: skip
            session.add(row)
            session.flush()
        return row

    @staticmethod
    def _release(row: VenueSession, now: dt.datetime) -> None:
        row.lease_owner = ""
        row.lease_until = None
        row.lease_kind = ""
        row.update_time = now

    def _enter(
        self, session: Session, ctx: CallContext, key: SessionKey, row: VenueSession, state: str,
        reason: str, now: dt.datetime, cause: str,
    ) -> None:  # fmt: skip
        """Move to a state that needs a person: audited, and paged once."""
        row.state = state
        row.envelope = None
        row.expire_time = row.refresh_expire_time = None
        row.last_error = reason
        row.update_time = now
        event = self._record(
            session, ctx, key, f"credential.session.{state}", Outcome.FAILED, reason,
            {"cause": cause, "generation": str(row.generation)},
        )  # fmt: skip
        if self._page is not None:
            self._page(session, key, state, reason, row.generation, event[0], event[1])

    def _record(
        self, session: Session, ctx: CallContext, key: SessionKey, action: str, outcome: str,
        reason: str, details: dict[str, str],
    ) -> tuple[int, str]:  # fmt: skip
        row = self._audit.append(
            session,
            ctx,
            AuditRecord(
                action=action,
                outcome=outcome,
                workspace_id=key.workspace_id,
                workspace=key.workspace,
                credential=key.credential,
                routing_context=ctx.routing_context,
                error_reason=reason,
                details={"version": str(key.version), **details},
            ),
        )
        return row.seq, row.hash
