"""Requests built by the Alpaca adapter, sent with httpx to the loopback Alpaca stub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs.alpaca_stub import AlpacaStub
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.venues.alpaca import ADAPTER
from vault_server.core.secret import Secret

KEY_ID, SECRET = "PKSTUB0001", "stub-secret-key-0001"
CRED = VenueCredential(
    Venue.ALPACA, Environment.PAPER, KeyAlgorithm.STATIC_HEADERS, KEY_ID, secret=Secret(SECRET)
)
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="AAPL", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal(10), price=Decimal("187.5"), time_in_force=TimeInForce.GTC,
    client_order_id="strat-1",
)  # fmt: skip


@pytest.fixture
def stub() -> Iterator[AlpacaStub]:
    with AlpacaStub({KEY_ID: SECRET}) as running:
        yield running


def send(request: PreparedRequest) -> tuple[int, Any]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    return response.status_code, (response.json() if response.content else None)


def build(stub: AlpacaStub, order: OrderSpec, cred: VenueCredential = CRED) -> PreparedRequest:
    return ADAPTER.build(order, cred, SigningContext(now_ms=1, base_url=stub.base_url))


def test_order_lifecycle_through_the_stub(stub: AlpacaStub) -> None:
    status, order = send(build(stub, ORDER))
    assert status == 200 and order["status"] == "accepted"
    assert (order["symbol"], order["qty"], order["limit_price"], order["client_order_id"]) == (
        "AAPL", "10", "187.5", "strat-1")  # fmt: skip
    assert (
        send(build(stub, OrderSpec(Operation.QUERY_ORDER, venue_order_id=order["id"])))[1] == order
    )
    assert [o["id"] for o in send(build(stub, OrderSpec(Operation.QUERY_OPEN_ORDERS)))[1]] == [
        order["id"]]  # fmt: skip
    assert stub.requests[-1].query == "status=open"

    amend = OrderSpec(Operation.AMEND_ORDER, venue_order_id=order["id"], price=Decimal("186"))
    status, replacement = send(build(stub, amend))
    assert status == 200 and replacement["replaces"] == order["id"]
    assert replacement["limit_price"] == "186" and replacement["qty"] == "10"
    assert stub.orders[order["id"]]["status"] == "replaced"

    cancel = OrderSpec(Operation.CANCEL_ORDER, venue_order_id=replacement["id"])
    assert send(build(stub, cancel)) == (204, None)
    assert stub.orders[replacement["id"]]["status"] == "canceled"
    assert send(build(stub, OrderSpec(Operation.QUERY_ACCOUNT)))[1]["status"] == "ACTIVE"


def test_wrong_key_or_secret_is_refused(stub: AlpacaStub) -> None:
    request = build(stub, ORDER)
    for name, value in (("APCA-API-SECRET-KEY", "guess"), ("APCA-API-KEY-ID", "PKOTHER")):
        headers = tuple((k, value if k == name else v) for k, v in request.headers)
        assert send(replace(request, headers=headers)) == (
            401, {"code": 40110000, "message": "request is not authorized"})  # fmt: skip
    wrong = VenueCredential(**{**CRED.__dict__, "secret": Secret("another-secret")})
    assert send(build(stub, ORDER, wrong))[0] == 401
    assert stub.orders == {}


def test_replay_is_stopped_only_by_client_order_id(stub: AlpacaStub) -> None:
    request = build(stub, ORDER)
    assert send(request)[0] == 200
    assert send(request) == (422, {"code": 40010001, "message": "client_order_id must be unique"})
    anonymous = build(stub, OrderSpec(**{**ORDER.__dict__, "client_order_id": None}))
    assert send(anonymous)[0] == 200 and send(anonymous)[0] == 200  # why Alpaca is proxy-only
    assert len(stub.orders) == 3


def test_unknown_order_is_reported(stub: AlpacaStub) -> None:
    query = OrderSpec(Operation.QUERY_ORDER, venue_order_id="61e69015-8549-4bfd-b9c3-01e75843f47d")
    assert send(build(stub, query)) == (404, {"code": 40410000, "message": "order not found"})


def test_notional_orders_are_market_orders_without_qty(stub: AlpacaStub) -> None:
    market = OrderSpec(
        Operation.PLACE_ORDER, symbol="AAPL", side=Side.BUY, order_type=OrderType.MARKET,
        quote_quantity=Decimal("12.5"), client_order_id="notional-1",
    )  # fmt: skip
    status, order = send(build(stub, market))
    assert (status, order["notional"], "qty" in order) == (200, "12.5", False)
    request = build(stub, replace(market, client_order_id="notional-2"))
    both = json.loads(request.body) | {"qty": "1"}
    limit = json.loads(request.body) | {"type": "limit", "limit_price": "1"}
    for body in (both, limit):
        status, reply = send(replace(request, body=json.dumps(body).encode()))
        assert (status, reply["code"]) == (422, 40010000)
