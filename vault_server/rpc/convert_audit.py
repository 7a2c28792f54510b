"""Audit rows, filters and verification results <-> API messages (identifiers only)."""

from __future__ import annotations

from pathlib import Path

from pipsync.vault.v1 import audit_pb2
from pipsync.vault.v1 import audit_service_pb2 as pb

from vault_server.audit import AuditQuery, EventView, Outcome, VerifyResult, event_name
from vault_server.core.errors import InvalidArgument
from vault_server.rpc import wellknown as wk
from vault_server.rpc.convert import timestamp

_Msg = audit_pb2.AuditEvent
_OUTCOMES = {
    Outcome.SUCCESS: _Msg.OUTCOME_SUCCESS,
    Outcome.DENIED: _Msg.OUTCOME_DENIED,
    Outcome.FAILED: _Msg.OUTCOME_FAILED,
}
_FROM_PB = {v: k for k, v in _OUTCOMES.items()}
_ACTORS = {
    "user": audit_pb2.Actor.TYPE_USER,
    "service": audit_pb2.Actor.TYPE_SERVICE,
    "system": audit_pb2.Actor.TYPE_SYSTEM,
}


def query(flt: pb.AuditFilter) -> AuditQuery:
    outcome = ""
    if flt.outcome != _Msg.OUTCOME_UNSPECIFIED:
        if flt.outcome not in _FROM_PB:
            raise InvalidArgument("filter.outcome", "unknown outcome")
        outcome = _FROM_PB[flt.outcome]
    start = (
        wk.timestamp(flt.start_time, "filter.start_time") if flt.HasField("start_time") else None
    )
    end = wk.timestamp(flt.end_time, "filter.end_time") if flt.HasField("end_time") else None
    return AuditQuery(
        workspace=flt.workspace,
        credential=flt.credential,
        actor=flt.actor,
        action=flt.action,
        outcome=outcome,
        start_time=start,
        end_time=end,
    )


def event(row: EventView) -> audit_pb2.AuditEvent:
    msg = audit_pb2.AuditEvent(
        name=event_name(row),
        sequence=row.seq,
        workspace=row.workspace,
        credential=row.credential,
        action=row.action,
        outcome=_OUTCOMES.get(row.outcome, _Msg.OUTCOME_UNSPECIFIED),
        actor=audit_pb2.Actor(
            type=_ACTORS.get(row.actor_type, audit_pb2.Actor.TYPE_UNSPECIFIED),
            id=row.actor_id,
            on_behalf_of=row.on_behalf_of,
        ),
        peer=row.peer,
        reason=row.reason,
        routing_context=row.routing_context,
        request_id=row.request_id,
        method=row.method,
        error_reason=row.error_reason,
        details={str(k): str(v) for k, v in (row.details or {}).items()},
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
    ts = timestamp(row.event_time)
    if ts is not None:
        msg.event_time.CopyFrom(ts)
    return msg


def verify_response(result: VerifyResult) -> pb.VerifyAuditLogResponse:
    """The one shape of a verification, for the RPC and for ``pipvault audit verify --json``."""
    first = result.first
    msg = pb.VerifyAuditLogResponse(
        intact=result.intact,
        chains_checked=len(result.chains),
        events_checked=result.events_checked,
        first_bad_event=first.event if first else "",
        problem=first.problem if first else "",
        detail=first.detail if first else "",
        findings=[
            pb.AuditFinding(event=f.event, problem=f.problem, detail=f.detail)
            for f in result.findings
        ],
    )
    log = result.checkpoints
    if log is not None:
        msg.checkpoints.CopyFrom(
            pb.CheckpointSummary(
                source=Path(log.source).name,
                valid=log.count,
                invalid=len(log.invalid),
                latest_time=log.latest.time.isoformat() if log.latest else "",
            )
        )
    return msg
