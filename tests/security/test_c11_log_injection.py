"""Attack: CRLF and JSON log injection through every caller-controlled string that can reach a
log line or an audit event (reason, ids, names, strategy, on-behalf-of, filters).

The server log stays one JSON object per line with no forged record; audit events store the
hostile text verbatim as data (one event per action) and every chain still verifies.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets

import grpc
from pipsync.vault.v1 import audit_service_pb2 as apb
from pipsync.vault.v1 import audit_service_pb2_grpc as agrpc
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import workspace_service_pb2 as wpb

from tests.support import signing_flow as sf
from tests.support.custody import binance_request, creds, make_workspace
from tests.support.vault import RunningVault, iter_audit
from vault_server.observability.logging import configure_logging

FORGED = '{"event":"forged","level":"critical","principal":"root"}'
PAYLOADS = [
    f"ok\r\n{FORGED}",
    f'ok"}}\n{FORGED}',
    "ok\n\n2026-01-01 00:00:00 [critical ] forged",
    "ok\u2028\u2029\x1b[31m\x00",
    "ok\\n" + FORGED,
]


def _try(fn, request, md) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(grpc.RpcError):
        fn(request, metadata=md, timeout=10)


def test_injected_crlf_and_json_never_forge_a_log_line_or_an_audit_event(
    vault: RunningVault,
) -> None:
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", stream=buffer)
    make_workspace(vault, "ws-a")
    key = sf.binance_hmac(sf.new_api_key(), secrets.token_hex(32))
    cred = sf.onboard(vault, key, "bn")
    ws, cr, sg = sf.workspaces(vault), creds(vault), sf.signing(vault)
    audit = agrpc.AuditServiceStub(vault.channel())
    events_before = len(list(iter_audit(vault.app)))
    calls = 0
    for payload in PAYLOADS:
        on_behalf = vault.md(
            "router", x_pipvault_on_behalf_of=payload.encode("unicode_escape").decode()
        )
        _try(
            ws.CreateWorkspace,
            wpb.CreateWorkspaceRequest(workspace_id=payload, reason=payload),
            vault.md(),
        )
        _try(ws.GetWorkspace, wpb.GetWorkspaceRequest(name=f"workspaces/{payload}"), vault.md())
        _try(
            cr.CreateCredential,
            binance_request(
                "ws-a", payload, "K" * 24, "s" * 32, display_name=payload, reason=payload
            ),
            vault.md("onboarding"),
        )
        _try(
            cr.RevokeCredential,
            cpb.RevokeCredentialRequest(name=cred.name, etag=payload, reason=payload),
            vault.md(),
        )
        _try(
            sg.BeginRouting,
            spb.BeginRoutingRequest(credential=cred.name, strategy_id=payload, reason=payload),
            vault.md("router"),
        )
        _try(
            sg.SignOrder,
            spb.SignOrderRequest(
                routing_context="", credential=cred.name, order=sf.place_for(key), reason=payload
            ),
            on_behalf,
        )
        _try(
            audit.ListAuditEvents,
            apb.ListAuditEventsRequest(
                filter=apb.AuditFilter(workspace="workspaces/ws-a", action=payload, actor=payload)
            ),
            vault.md("auditor"),
        )
        calls += 7  # fmt: skip
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    assert len(lines) >= calls, "the calls were not logged"
    for line in lines:
        record = json.loads(line)  # every line is exactly one JSON object
        assert isinstance(record, dict)
        assert record.get("event") != "forged" and record.get("principal") != "root", line
    assert "forged" not in "".join(line for line in lines if not line.startswith("{"))
    # Audit: hostile text is data in its own field, never a second event.
    new = list(iter_audit(vault.app))[events_before:]
    stored = [e.reason for e in new if e.reason in PAYLOADS]
    assert stored, "no refusal or action recorded the hostile reason verbatim"
    assert not [e for e in new if e.action == "forged" or e.actor_id == "root"]
    result = audit.VerifyAuditLog(
        apb.VerifyAuditLogRequest(), metadata=vault.md("auditor"), timeout=30
    )
    assert result.intact, result
