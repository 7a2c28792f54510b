"""``pipvault demo --broker NAME``: a forex/CFD platform's whole flow against its loopback stub.

The stub (``tests/venue_stubs/<venue>_stub.py``, written from the platform's docs: logins, token
expiry, single-use refresh tokens, session-expired answers, lockouts) runs on loopback with a
generated account; a dev vault points the venue's base URL at it. Through the real gRPC API the
demo onboards the account (password sealed), opens a routing context, places an order with a
stop loss and a take profit (the vault logs in: one login), moves the stop loss, closes the
position, shows the credential's session state and verifies the audit log. The stubs ship with
the source checkout (``make run`` / ``make test`` use one), not with the container image.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

import grpc
from pipsync.vault.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    credential_pb2,
    credential_service_pb2,
    credential_service_pb2_grpc,
    signing_service_pb2,
    signing_service_pb2_grpc,
    trading_pb2,
    workspace_service_pb2,
    workspace_service_pb2_grpc,
)

from vault_server.brokers.base import parse_venue
from vault_server.brokers.lifecycle import Lifecycle
from vault_server.brokers.registry import adapter_for
from vault_server.cli.demo import demo_vault
from vault_server.rpc.convert_credentials import ALGORITHMS

B = trading_pb2
WS = "demo"


def _flow(broker: str) -> tuple[Any, Any]:
    venue = parse_venue(broker)
    if adapter_for(venue).session is None:
        raise SystemExit(
            f"demo --broker: {venue.value} has no venue session (try a forex platform)"
        )
    try:
        stubs = importlib.import_module(f"tests.venue_stubs.{venue.value}_stub")
        support = importlib.import_module("tests.support.forex_flow")
    except ImportError:
        raise SystemExit(
            "demo --broker needs the loopback venue stubs of the source checkout "
            "(tests/venue_stubs): run it from a clone of the repository"
        ) from None
    return stubs.FLOW, support.Account()


def broker_demo(broker: str, home: Path | None, as_json: bool) -> int:
    flow, account = _flow(broker)
    say = (lambda _line: None) if as_json else print
    with tempfile.TemporaryDirectory(prefix="pipvault-demo-") as tmp:
        base = (home or Path(tmp)).resolve()
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (
            flow.stub(account) as stub,
            demo_vault(base, signing={"venue_base_urls": {flow.venue: stub.base_url}}) as (
                admin, data, tokens, _app,
            ),
        ):  # fmt: skip
            say(f"{flow.venue} stub on {stub.base_url}; demo vault running")
            result = _run(flow, account, stub, admin, data, tokens, say)
    if as_json:
        print(json.dumps(result, indent=2))
    return 0 if result["audit_verified"] else 1


def _run(
    flow: Any, account: Any, stub: Any, admin: grpc.Channel, data: grpc.Channel,
    tokens: dict[str, str], say: Any,
) -> dict[str, Any]:  # fmt: skip
    def md(who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {tokens['dev-' + who]}"),)

    workspace_service_pb2_grpc.WorkspaceServiceStub(admin).CreateWorkspace(
        workspace_service_pb2.CreateWorkspaceRequest(workspace_id=WS, reason="demo"),
        metadata=md("security"), timeout=15,
    )  # fmt: skip
    creds = credential_service_pb2_grpc.CredentialServiceStub(admin)
    signing = signing_service_pb2_grpc.SigningServiceStub(data)
    adapter = adapter_for(parse_venue(flow.venue))
    [algorithm] = adapter.algorithms
    if adapter.lifecycle is Lifecycle.OAUTH_CONSENT:  # the platform's application first
        creds.SetPlatformApplication(
            credential_service_pb2.SetPlatformApplicationRequest(
                broker=flow.broker, environment=B.ENVIRONMENT_PAPER, client_id=account.api_key,
                client_secret=account.password, reason="demo platform application",
            ),
            metadata=md("security"), timeout=15,
        )  # fmt: skip
        say("set the platform's OAuth application (client secret sealed)")
    created = creds.CreateCredential(
        credential_service_pb2.CreateCredentialRequest(
            parent=f"workspaces/{WS}", credential_id=f"{flow.venue.replace('_', '-')}-demo",
            display_name=f"{flow.venue} demo account", broker=flow.broker,
            environment=B.ENVIRONMENT_PAPER,
            key_algorithm=next(n for n, a in ALGORITHMS.items() if a is algorithm),
            material=credential_pb2.SecretMaterial(**flow.material(account)), scopes=["trade"],
            acknowledge_single_permission_tier=True,
            policy=credential_pb2.OrderPolicy(allowed_symbols=[flow.symbol],
                                              max_quantity="1000000"),
            reason="demo onboarding",
        ),
        metadata=md("onboarding"), timeout=15,
    ).credential  # fmt: skip
    held = "consent exchanged" if adapter.lifecycle is Lifecycle.OAUTH_CONSENT else "secret sealed"
    say(f"onboarded {created.name} ({held}; session {_state(created)})")
    rc = signing.BeginRouting(
        signing_service_pb2.BeginRoutingRequest(credential=created.name, strategy_id="demo",
                                                reason="demo"),
        metadata=md("router"), timeout=15,
    ).routing_context.name  # fmt: skip

    def execute(order: trading_pb2.Order) -> signing_service_pb2.ExecuteOrderResponse:
        request = signing_service_pb2.ExecuteOrderRequest(
            routing_context=rc, order=order, reason="demo"
        )
        answer: signing_service_pb2.ExecuteOrderResponse = signing.ExecuteOrder(
            request, metadata=md("router"), timeout=20
        )
        return answer

    level = B.ProtectiveLevel
    opened = execute(B.Order(
        operation=B.ORDER_OPERATION_PLACE, symbol=flow.symbol, side=B.ORDER_SIDE_BUY,
        type=B.ORDER_TYPE_MARKET, quantity=flow.quantity, client_order_id="fx-open-1",
        stop_loss=level(price=flow.stop_loss), take_profit=level(price=flow.take_profit),
    ))  # fmt: skip
    position = flow.position_id(stub, opened.body)
    say(
        f"placed {flow.quantity} {flow.symbol} with SL {flow.stop_loss} / TP {flow.take_profit}:"
        f" HTTP {opened.http_status}, position {position} (logins so far: {stub.logins})"
    )
    uses_side = bool(getattr(getattr(adapter, "spec", None), "position_side", False))
    side: dict[str, Any] = {"side": B.ORDER_SIDE_BUY} if uses_side else {}
    fields: dict[str, Any] = {
        "operation": B.ORDER_OPERATION_AMEND_POSITION, "position_id": position,
        "symbol": flow.symbol, **side,
        "stop_loss": level(price=flow.amended_stop_loss),
        "take_profit": level(price=flow.take_profit), "client_order_id": "demo-amend",
    }  # fmt: skip
    fields |= flow.amend(stub, position) if flow.amend is not None else {}
    amended = execute(B.Order(**{k: v for k, v in fields.items() if v is not None}))
    say(f"moved the stop loss to {flow.amended_stop_loss}: HTTP {amended.http_status}")
    closed = execute(B.Order(
        operation=B.ORDER_OPERATION_CLOSE_POSITION, position_id=position, symbol=flow.symbol,
        quantity=flow.quantity, client_order_id="demo-close", **side,
    ))  # fmt: skip
    say(f"closed the position: HTTP {closed.http_status}")
    shown = creds.GetCredential(
        credential_service_pb2.GetCredentialRequest(name=created.name),
        metadata=md("auditor"), timeout=15,
    ).credential  # fmt: skip
    verify = audit_service_pb2_grpc.AuditServiceStub(admin).VerifyAuditLog(
        audit_service_pb2.VerifyAuditLogRequest(), metadata=md("auditor"), timeout=30
    )
    say(f"session {_state(shown)}, logins {stub.logins}; audit log intact: {verify.intact}")
    return {
        "venue": flow.venue,
        "credential": created.name,
        "http": [opened.http_status, amended.http_status, closed.http_status],
        "position": position,
        "logins": stub.logins,
        "session_state": _state(shown),
        "audit_verified": bool(verify.intact),
        "audit_events": int(verify.events_checked),
    }


def _state(credential: credential_pb2.Credential) -> str:
    return credential_pb2.SessionStatus.State.Name(credential.session.state).removeprefix("STATE_")
