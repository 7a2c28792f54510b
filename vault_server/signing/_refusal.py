"""What a refused use of a credential leaves in the audit log (never a secret or a value: which
rule, field or endpoint refused it, by name)."""

from __future__ import annotations

from dataclasses import dataclass

from vault_server.audit import AuditRecord, Outcome
from vault_server.brokers.base import OrderSpec
from vault_server.core.errors import ErrorKind, RoutingContextRequired, VaultError
from vault_server.domain import CallContext
from vault_server.storage.models import Workspace

_REFUSAL_KEYS = frozenset({"rule", "field", "path", "method", "clientOrderId", "broker"})


@dataclass(frozen=True)
class Refusal:
    """One refused use, as ``SigningService.refused`` records it."""

    ctx: CallContext
    rc_name: str
    hint: str
    order: OrderSpec
    err: VaultError


def refusal_record(r: Refusal, ws: Workspace | None, credential: str, proxy: bool) -> AuditRecord:
    """A refusal without a routing context is a read outside one (``credential.read``)."""
    refused = r.err.kind not in (ErrorKind.DATA_LOSS, ErrorKind.UNAVAILABLE)
    return AuditRecord(
        action="credential.read" if isinstance(r.err, RoutingContextRequired) else "credential.use",
        outcome=Outcome.DENIED if refused else Outcome.FAILED,
        workspace_id=ws.id if ws else None,
        workspace=f"workspaces/{ws.resource_id}" if ws else "",
        credential=credential,
        routing_context=r.rc_name,
        error_reason=r.err.reason,
        details={
            "operation": r.order.operation.value,
            "mode": "proxy" if proxy else "sign",
            **{k: v[:100] for k, v in r.err.metadata.items() if k in _REFUSAL_KEYS},
        },
    )
