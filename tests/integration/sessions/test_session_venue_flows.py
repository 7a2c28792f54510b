"""Every session venue, through a real vault and its loopback stub: onboarding -> an order with
stop loss and take profit -> amend the stop loss -> close, then the canary scan.

The vault runs for real (gRPC, SQLite, audit, DEBUG logging); the stub enforces what the
platform enforces (login, token expiry, session answers). The account's password (a canary
generated here) and every token the stub issued must appear nowhere but in the requests the
vault sent to the stub: not in a response, the log, the audit rows, the metrics or any file the
vault wrote.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from prometheus_client import generate_latest

from tests.integration.sessions.flows import (
    FLOWS,
    algorithm_of,
    is_oauth,
    onboard,
    position_side,
    stub_tokens,
)
from tests.support import signing_flow as sf
from tests.support.canary import find
from tests.support.forex_flow import Account, VenueFlow
from vault_server.observability.logging import configure_logging

B = trading_pb2
S = credential_pb2.SessionStatus


def _level(price: str) -> trading_pb2.ProtectiveLevel:
    return trading_pb2.ProtectiveLevel(price=price)


def _files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.venue)
def test_order_amend_close_and_nothing_leaks(
    flow: VenueFlow, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", "json")
    account = Account()
    home = tmp_path / "home"
    with flow.stub(account) as stub, sf.vault_beside(stub, home, flow.venue) as vault:
        made = onboard(vault, flow, account, "fx1")
        assert made.proxy_only and made.single_permission_tier
        assert made.key_algorithm == algorithm_of(flow)
        assert made.lifecycle != B.CREDENTIAL_LIFECYCLE_STATIC
        # An OAuth consent is exchanged at onboarding (its code lives a minute): the grant is
        # held from the start. A password session starts on the first order.
        assert made.session.state == (S.STATE_ACTIVE if is_oauth(flow) else S.STATE_IDLE)
        rc = sf.begin(vault, made.name).name

        place = B.Order(
            operation=B.ORDER_OPERATION_PLACE, symbol=flow.symbol, side=B.ORDER_SIDE_BUY,
            type=B.ORDER_TYPE_MARKET, quantity=flow.quantity, client_order_id="fx-open-1",
            stop_loss=_level(flow.stop_loss), take_profit=_level(flow.take_profit),
        )  # fmt: skip
        opened = sf.execute(vault, rc, place)
        assert 200 <= opened.http_status < 300, opened.body
        assert stub.logins == 1
        position = flow.position_id(stub, opened.body)
        held = stub.positions[position]
        assert Decimal(str(held["stopLoss"])) == Decimal(flow.stop_loss)
        assert Decimal(str(held["takeProfit"])) == Decimal(flow.take_profit)

        # Both levels: a venue whose amend replaces them (IG) keeps the take profit.
        fields: dict[str, Any] = {
            "operation": B.ORDER_OPERATION_AMEND_POSITION, "position_id": position,
            "symbol": flow.symbol, **position_side(flow),
            "stop_loss": _level(flow.amended_stop_loss), "take_profit": _level(flow.take_profit),
            "client_order_id": "fx-amend-1",
        }  # fmt: skip
        fields |= flow.amend(stub, position) if flow.amend is not None else {}
        amend = B.Order(**{k: v for k, v in fields.items() if v is not None})
        amended = sf.execute(vault, rc, amend)
        assert 200 <= amended.http_status < 300, amended.body
        assert Decimal(str(stub.positions[position]["stopLoss"])) == Decimal(flow.amended_stop_loss)

        close = B.Order(
            operation=B.ORDER_OPERATION_CLOSE_POSITION, position_id=position, symbol=flow.symbol,
            quantity=flow.quantity, client_order_id="fx-close-1", **position_side(flow),
        )  # fmt: skip
        closed = sf.execute(vault, rc, close)
        assert 200 <= closed.http_status < 300, closed.body
        assert position not in stub.positions or stub.positions[position].get("closed")
        assert stub.logins == 1  # one session carried the whole flow

        listed = sf.get_credential(vault, made.name)
        assert listed.session.state == S.STATE_ACTIVE and listed.session.generation == 1
        metrics = generate_latest(vault.app.metrics.registry)
        answers = b"".join(m.SerializeToString() for m in (made, opened, amended, closed, listed))
        audit = "\n".join(r.raw for r in sf.audit_rows(vault)).encode()
        actions = [r.action for r in sf.audit_rows(vault)]
        assert actions.count("credential.session.login") == 1
        login = next(r for r in sf.audit_rows(vault) if r.action == "credential.session.login")
        assert login.outcome == "success"
        # The engine logs in as the system, on behalf of the router whose order needed it; an
        # OAuth code is exchanged by the onboarding call itself.
        assert login.actor_id == ("onboarding" if is_oauth(flow) else "pipvault")
    logs = capfd.readouterr()
    everything = {
        "answers": answers, "audit": audit, "metrics": metrics, "files": _files(home),
        "logs": (logs.out + logs.err).encode(),
    }  # fmt: skip
    secrets = [account.password, *stub_tokens(stub)]
    assert len(secrets) > 1, "the stub issued no token to look for"
    for secret in secrets:
        for where, blob in everything.items():
            assert find(secret, blob) == [], f"a secret leaked into {where}"
    # The stub did receive them: the scan looks for the right strings.
    sent = b"".join(r.body + json.dumps(r.headers).encode() for r in stub.requests)
    assert find(account.password, sent)
