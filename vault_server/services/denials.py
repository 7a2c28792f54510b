"""Audits refused calls (authentication, authorization, validation before the domain runs)."""

from __future__ import annotations

from vault_server.core.errors import VaultError
from vault_server.services.audit_log import AuditLog, AuditRecord, Outcome
from vault_server.services.call import CallContext
from vault_server.storage.database import Database


class DenialRecorder:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    def record(self, ctx: CallContext, err: VaultError, target: str = "") -> None:
        """One ``auth.denied`` event on the system chain; ``target`` is the resource asked for.

        Denials go to the system chain (not the target workspace's) so a caller probing names
        cannot make writes appear in a workspace it cannot see.
        """
        details = {"target": target[:200]} if target else {}
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="auth.denied",
                    outcome=Outcome.DENIED,
                    error_reason=err.reason,
                    details=details,
                ),
            )
