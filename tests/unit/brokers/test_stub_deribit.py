"""Requests built by the Deribit adapter, sent with httpx to the loopback stub: accepted when
exact and fresh, refused when stale, replayed, tampered or fund-moving; the permission query."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs.deribit_stub import DeribitStub, deribit_sign, parse_authorization
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Scope,
    Side,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.deribit import ADAPTER, SPEC
from vault_server.core.errors import VenueUnavailable
from vault_server.core.secret import Secret

NOW = 1_700_000_000_123
SECRET = secrets.token_urlsafe(32)
CRED = VenueCredential(Venue.DERIBIT, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "cid1",
                       secret=Secret(SECRET))  # fmt: skip
ORDER = OrderSpec(Operation.PLACE_ORDER, symbol="BTC-PERPETUAL", side=Side.BUY,
                  order_type=OrderType.LIMIT, quantity=Decimal("10"), price=Decimal("30000.5"),
                  client_order_id="strat-1")  # fmt: skip


@pytest.fixture
def stub() -> Iterator[DeribitStub]:
    with DeribitStub({"cid1": SECRET}, clock=lambda: NOW) as running:
        yield running


def ctx(stub: DeribitStub, now: int = NOW) -> SigningContext:
    return SigningContext(now_ms=now, random_hex=secrets.token_hex(8), base_url=stub.base_url)


def send(request: PreparedRequest, **changes: Any) -> tuple[int, dict[str, Any]]:
    url = changes.pop("url", request.url)
    fields = {"headers": list(request.headers), "content": request.body or None, **changes}
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(request.method, url, **fields)
    body = response.json()
    assert isinstance(body, dict)
    return response.status_code, body


def reason(body: dict[str, Any]) -> str:
    return str(body["error"].get("data", {}).get("reason", body["error"]["message"]))


def test_signed_orders_are_accepted_and_sized_in_contracts(stub: DeribitStub) -> None:
    status, body = send(ADAPTER.build(ORDER, CRED, ctx(stub)))
    assert status == 200 and body["result"]["order"]["order_state"] == "open", body
    assert stub.placed[0][1]["contracts"] == "10" and "amount" not in stub.placed[0][1]
    for order in (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="ETH-1"),
                  OrderSpec(Operation.QUERY_OPEN_ORDERS),
                  OrderSpec(Operation.QUERY_ACCOUNT, extras={"currency": "BTC"})):  # fmt: skip
        assert send(ADAPTER.build(order, CRED, ctx(stub)))[0] == 200


def test_replayed_stale_and_tampered_requests_are_refused(stub: DeribitStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub))
    assert send(request)[0] == 200
    status, body = send(request)  # the same nonce again
    assert (status, body["error"]["code"], reason(body)) == (400, 13004, "reused nonce")
    stale = ADAPTER.build(ORDER, CRED, ctx(stub, NOW - 60_001))
    assert reason(send(stale)[1]) == "stale timestamp"
    assert send(ADAPTER.build(ORDER, CRED, ctx(stub, NOW - 59_000)))[0] == 200
    fresh = ADAPTER.build(ORDER, CRED, ctx(stub))
    assert reason(send(fresh, url=fresh.url.replace("contracts=10", "contracts=99"))[1]) == (
        "bad signature"
    )
    assert send(fresh, headers=[])[1]["error"]["code"] == 13009
    assert len(stub.placed) == 2


def test_the_documented_header_layout_with_spaces_parses() -> None:
    sig = deribit_sign("AMANDASECRECT", "1576074319000", "1iqt2wls", "")
    assert sig == "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"
    fields = parse_authorization(f"deri-hmac-sha256 id=AMANDA, ts=1, sig={sig}, nonce=n")
    assert fields == {"id": "AMANDA", "ts": "1", "sig": sig, "nonce": "n"}
    assert parse_authorization("Bearer x") is None


def test_fund_moving_methods_answer_an_error(stub: DeribitStub) -> None:
    for name in ("withdraw", "submit_transfer_to_user", "list_api_keys"):
        call = Call("GET", f"/api/v2/private/{name}", (("currency", "BTC"),))
        request = SPEC.scheme.sign(call, stub.base_url, CRED, ctx(stub))  # past the allow-list
        status, body = send(request)
        assert (status, body["error"]["code"]) == (400, 13021)
    assert stub.refused == ["withdraw", "submit_transfer_to_user", "list_api_keys"]


def test_permission_query_reports_the_scope(stub: DeribitStub) -> None:
    def attest() -> set[Scope]:
        request = ADAPTER.permission_request(CRED, ctx(stub))
        assert request is not None
        with httpx.Client(trust_env=False, timeout=5) as client:
            response = client.get(request.url)
        return set(ADAPTER.parse_permissions(response.status_code, response.content).scopes)

    assert attest() == {Scope.READ, Scope.TRADE}
    stub.scopes["cid1"] = "connection mainaccount trade:read_write wallet:read_write"
    assert Scope.WITHDRAW in attest()
    stub.scopes["cid1"] = "connection mainaccount"  # the docs' example answer: no access scope
    with pytest.raises(VenueUnavailable):
        attest()
    stale = ADAPTER.permission_request(CRED, ctx(stub, NOW - 61_000))
    assert stale is not None
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.get(stale.url)
    with pytest.raises(VenueUnavailable):
        ADAPTER.parse_permissions(response.status_code, response.content)
