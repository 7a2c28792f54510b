"""Builders for the audit records that name a credential (one shape, used by every capability)."""

from __future__ import annotations

from vault_server.audit._log import AuditRecord, Outcome
from vault_server.domain import credential_name
from vault_server.storage.models import Workspace


def credential_record(
    ws: Workspace,
    credential_id: str,
    action: str,
    *,
    routing_context: str = "",
    outcome: str = Outcome.SUCCESS,
    error_reason: str = "",
    details: dict[str, str] | None = None,
) -> AuditRecord:
    """An event about ``workspaces/{ws}/credentials/{credential_id}`` on the workspace's chain."""
    return AuditRecord(
        action=action,
        outcome=outcome,
        workspace_id=ws.id,
        workspace=f"workspaces/{ws.resource_id}",
        credential=credential_name(ws.resource_id, credential_id),
        routing_context=routing_context,
        error_reason=error_reason,
        details=dict(details or {}),
    )
