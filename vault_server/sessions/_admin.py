"""The security team's hand on a venue session: ``ResetCredentialSession``.

A reset drops the session the fleet shares (tokens destroyed, lease released) and clears the
lockout breaker and any backoff, so the next order logs in afresh: what an operator does once a
LOCKED_OUT account's password is known to be right again (or was fixed at the broker). An OAuth
grant is kept (only the breaker, backoff and lease are cleared): no password stands behind it.
A reset does not clear NEEDS_REAUTHORIZATION: a lost grant needs a new consent or password,
which only ``RotateCredential`` brings (a new version starts its own session).
"""

from __future__ import annotations

from collections.abc import Callable

from vault_server.audit import AuditLog, AuditRecord
from vault_server.brokers.base import Venue
from vault_server.brokers.lifecycle import Lifecycle
from vault_server.brokers.registry import adapter_for
from vault_server.core.clock import Clock
from vault_server.core.errors import CredentialRevoked, OperationNotSupported
from vault_server.custody import CredentialView, load_credential, view_of
from vault_server.domain import CallContext, credential_name, parse_credential
from vault_server.sessions._store import ACTIVE, IDLE, NEEDS_REAUTHORIZATION, RENEWING
from vault_server.storage import invalidation
from vault_server.storage.database import Database
from vault_server.storage.models import VenueSession


class SessionAdmin:
    def __init__(
        self, db: Database, audit: AuditLog, clock: Clock,
        forget: Callable[[frozenset[str] | None], None],
    ) -> None:  # fmt: skip
        self._forget = forget
        self._db = db
        self._audit = audit
        self._clock = clock

    def reset(self, ctx: CallContext, name: str) -> CredentialView:
        ref = parse_credential("name", name)
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref, lock=True)
            if cred.state == "revoked":
                raise CredentialRevoked("the credential is revoked", metadata={"credential": name})
            adapter = adapter_for(Venue(cred.broker))
            if adapter.session is None:
                raise OperationNotSupported(
                    "this credential's broker has no venue session",
                    metadata={"broker": cred.broker},
                )
            row = session.get(VenueSession, (cred.id, cred.current_version), with_for_update=True)
            before = row.state if row is not None else IDLE
            if row is not None and row.state != NEEDS_REAUTHORIZATION:
                row.lease_owner, row.lease_until, row.lease_kind = "", None, ""
                row.failures, row.last_error, row.update_time = 0, "", now
                row.next_attempt_time = None
                if adapter.lifecycle is not Lifecycle.OAUTH_CONSENT:
                    # A password logs in afresh; an OAuth grant is kept (no code to redo it).
                    row.state, row.envelope, row.generation = IDLE, None, row.generation + 1
                    row.expire_time = row.refresh_expire_time = None
                elif row.state == RENEWING:
                    row.state = ACTIVE if row.envelope is not None else IDLE
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="credential.session.reset",
                    workspace_id=ws.id,
                    workspace=f"workspaces/{ws.resource_id}",
                    credential=credential_name(ws.resource_id, cred.resource_id),
                    details={"previousState": before},
                ),
            )
            # Every other replica drops its cached tokens of this workspace; this one now.
            invalidation.bump(session, [ws.id], keys=True)
            view = view_of(session, ws, cred, coinbase_strict=False)
        self._forget(frozenset({ws.id}))
        return view
