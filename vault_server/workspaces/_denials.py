"""Audits refused calls: authentication, authorization and validation before the domain runs
(``auth.denied``), and every refusal of a credential write (``credential.*`` with outcome
``denied``, or ``failed`` when the vault itself could not do it; a write outside the caller's
workspace grant is ``credential.*`` ``denied`` with ``details.denial = auth.denied``)."""

from __future__ import annotations

from vault_server.audit import AuditLog, AuditRecord, Outcome
from vault_server.core.errors import AuditUnavailable, ErrorKind, NotFound, VaultError
from vault_server.domain import CallContext
from vault_server.storage.database import Database
from vault_server.workspaces._manager import load_visible

# Server-side failures (the request may have been fine): audited as ``failed``, not ``denied``.
_FAILURE_KINDS = frozenset(
    {ErrorKind.UNAVAILABLE, ErrorKind.INTERNAL, ErrorKind.DATA_LOSS, ErrorKind.DEADLINE_EXCEEDED}
)
_MAX_DETAIL = 200
_AUTH_DENIED = "auth.denied"


def _segments(target: str) -> tuple[str, str]:
    """``(workspace_id, credential_id)`` of ``workspaces/{ws}[/credentials/{c}[/...]]``."""
    parts = target.split("/")
    ws = parts[1] if len(parts) >= 2 and parts[0] == "workspaces" else ""
    cred = parts[3] if len(parts) >= 4 and parts[2] == "credentials" else ""
    return ws, cred


class DenialRecorder:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    def record(
        self, ctx: CallContext, err: VaultError, target: str = "", action: str = _AUTH_DENIED
    ) -> None:
        """One refusal event on the system chain; ``target`` is the resource asked for.

        ``action`` is ``auth.denied``, or the refused write's own action (``credential.rotate``,
        …) with ``details.denial = auth.denied``, so alerts on that action see it. Denials go to
        the system chain (not the target workspace's) so a caller probing names cannot make
        writes appear in a workspace it cannot see.
        """
        details = {"target": target[:_MAX_DETAIL]} if target else {}
        if action != _AUTH_DENIED:
            details |= {"denial": _AUTH_DENIED, "refusal": err.message[:_MAX_DETAIL]}
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action=action,
                    outcome=Outcome.DENIED,
                    error_reason=err.reason,
                    details=details,
                ),
            )

    def record_write_refusal(
        self, ctx: CallContext, action: str, err: VaultError, target: str
    ) -> None:
        """One ``action`` event (e.g. ``credential.create``) for a refused credential write, in
        its own transaction (the refused one rolled back). It carries actor, peer, reason and
        request id from ``ctx``, the refusal reason, and the error's message and metadata, which
        never hold secrets. It lands on the target workspace's chain when the caller may see that
        workspace and it exists; otherwise on the system chain (no writes into a workspace the
        caller cannot see). An audit outage is not audited again."""
        if isinstance(err, AuditUnavailable):
            return
        outcome = Outcome.FAILED if err.kind in _FAILURE_KINDS else Outcome.DENIED
        details = {k: v[:_MAX_DETAIL] for k, v in list(err.metadata.items())[:10]}
        details["refusal"] = err.message[:_MAX_DETAIL]
        ws_id, cred_id = _segments(target)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            record = AuditRecord(
                action=action,
                outcome=outcome,
                error_reason=err.reason,
                details={**details, "target": target[:_MAX_DETAIL]},
            )
            if ws_id:
                try:
                    ws = load_visible(session, ctx, ws_id)
                except NotFound:
                    pass
                else:
                    record = AuditRecord(
                        action=action,
                        outcome=outcome,
                        workspace_id=ws.id,
                        workspace=f"workspaces/{ws.resource_id}",
                        credential=target.split("/versions/", maxsplit=1)[0][:_MAX_DETAIL]
                        if cred_id
                        else "",
                        error_reason=err.reason,
                        details=details,
                    )
            self._audit.append(session, ctx, record)
