"""OANDA protective orders and trades: the mapping, then the requests against the loopback stub.

A position at OANDA is a trade (``position_id`` = trade id): placed with ``stopLossOnFill`` /
``takeProfitOnFill``, its levels set with ``PUT .../trades/{id}/orders``, closed (whole or
partly) with ``PUT .../trades/{id}/close``, listed with ``GET .../openTrades``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs.oanda_stub import OandaStub
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    ProtectiveLevel,
    Side,
    SigningContext,
    SizeUnit,
    Venue,
    VenueCredential,
)
from vault_server.brokers.venues.oanda import ADAPTER
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

TOKEN = "practice-token-" + "ab12" * 8
ACCOUNT = "101-004-1234567-001"
A = f"/v3/accounts/{ACCOUNT}"
CRED = VenueCredential(Venue.OANDA, Environment.PAPER, KeyAlgorithm.BEARER, "token",
                       secret=Secret(TOKEN), account_id=ACCOUNT)  # fmt: skip
CTX = SigningContext(now_ms=1_700_000_000_000)
MARKET = OrderSpec(
    Operation.PLACE_ORDER, symbol="EUR_USD", side=Side.BUY, order_type=OrderType.MARKET,
    quantity=Decimal("1000"), client_order_id="sig-1",
    stop_loss=ProtectiveLevel(price=Decimal("1.05")),
    take_profit=ProtectiveLevel(price=Decimal("1.2")),
)  # fmt: skip


def body(order: OrderSpec) -> tuple[str, str, Any]:
    request = ADAPTER.build(order, CRED, CTX)
    path = request.url.split("oanda.com", 1)[1]
    return request.method, path, json.loads(request.body) if request.body else None


def test_oanda_takes_protective_orders_in_base_units() -> None:
    assert ADAPTER.protective_orders and ADAPTER.size_unit is SizeUnit.BASE_UNITS
    ADAPTER.build(replace(MARKET, size_unit=SizeUnit.BASE_UNITS), CRED, CTX)
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(replace(MARKET, size_unit=SizeUnit.LOTS), CRED, CTX)
    assert info.value.field == "order.size_unit"


def test_place_attaches_stop_loss_and_take_profit_on_fill() -> None:
    method, path, doc = body(MARKET)
    assert (method, path) == ("POST", f"{A}/orders")
    assert doc["order"]["stopLossOnFill"] == {"price": "1.05"}
    assert doc["order"]["takeProfitOnFill"] == {"price": "1.2"}
    distance = replace(MARKET, stop_loss=ProtectiveLevel(distance=Decimal("0.0050")),
                       take_profit=None)  # fmt: skip
    assert body(distance)[2]["order"]["stopLossOnFill"] == {"distance": "0.005"}
    assert "takeProfitOnFill" not in body(distance)[2]["order"]


def test_take_profit_distance_is_refused_not_dropped() -> None:
    order = replace(MARKET, take_profit=ProtectiveLevel(distance=Decimal("0.01")))
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == "order.take_profit.distance"


@pytest.mark.parametrize("name", ["stopLossOnFill", "takeProfitOnFill", "trailingStopLossOnFill",
                                  "guaranteedStopLossOnFill"])  # fmt: skip
def test_protective_fields_cannot_be_smuggled_as_extras(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(replace(MARKET, extras={name: "{}"}), CRED, CTX)
    assert info.value.field == "order.extras"


@pytest.mark.parametrize(
    ("order", "method", "tail", "doc"),
    [
        (OrderSpec(Operation.CLOSE_POSITION, position_id="6375", client_order_id="x"),
         "PUT", "/trades/6375/close", {"units": "ALL"}),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="6375", quantity=Decimal("250.0"),
                   client_order_id="x"),
         "PUT", "/trades/6375/close", {"units": "250"}),
        (OrderSpec(Operation.AMEND_POSITION, position_id="6375", client_order_id="x",
                   stop_loss=ProtectiveLevel(distance=Decimal("0.002"))),
         "PUT", "/trades/6375/orders", {"stopLoss": {"distance": "0.002"}}),
        (OrderSpec(Operation.AMEND_POSITION, position_id="6375", client_order_id="x",
                   stop_loss=ProtectiveLevel(price=Decimal("1.07")),
                   take_profit=ProtectiveLevel(price=Decimal("1.3"))),
         "PUT", "/trades/6375/orders",
         {"stopLoss": {"price": "1.07"}, "takeProfit": {"price": "1.3"}}),
        (OrderSpec(Operation.QUERY_POSITIONS), "GET", "/openTrades", None),
    ],
)  # fmt: skip
def test_position_operations(order: OrderSpec, method: str, tail: str, doc: Any) -> None:
    assert body(order) == (method, A + tail, doc)


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (OrderSpec(Operation.CLOSE_POSITION, client_order_id="x"), "order.position_id"),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="../orders", client_order_id="x"),
         "order.position_id"),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="DIAAA123", client_order_id="x"),
         "order.position_id"),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="1", extras={"units": "ALL"}),
         "order.extras"),
        (OrderSpec(Operation.AMEND_POSITION, position_id="1"), "order.stop_loss"),
        (OrderSpec(Operation.AMEND_POSITION, position_id="1",
                   take_profit=ProtectiveLevel(distance=Decimal(1))), "order.take_profit.distance"),
    ],
)  # fmt: skip
def test_malformed_position_operations_are_refused(order: OrderSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == field


# --- against the stub -----------------------------------------------------------------------------
@pytest.fixture
def stub() -> Iterator[OandaStub]:
    with OandaStub({TOKEN: [ACCOUNT]}, fill_price="1.10000") as running:
        yield running


def send(stub: OandaStub, order: OrderSpec) -> tuple[int, Any]:
    request = ADAPTER.build(order, CRED, SigningContext(now_ms=1, base_url=stub.base_url))
    return raw(request)


def raw(request: PreparedRequest, content: bytes | None = None) -> tuple[int, Any]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(request.method, request.url, headers=list(request.headers),
                                  content=request.body if content is None else content)  # fmt: skip
    return response.status_code, response.json()


def test_place_amend_partial_close_close_through_the_stub(stub: OandaStub) -> None:
    status, placed = send(stub, MARKET)
    assert status == 201, placed
    trade_id = placed["orderFillTransaction"]["tradeOpened"]["tradeID"]
    assert stub.trades[trade_id]["stopLoss"] == {"price": "1.05"}
    assert stub.trades[trade_id]["takeProfit"] == {"price": "1.2"}

    amend = OrderSpec(Operation.AMEND_POSITION, position_id=trade_id, client_order_id="a1",
                      stop_loss=ProtectiveLevel(price=Decimal("1.08")))  # fmt: skip
    status, amended = send(stub, amend)
    assert status == 200 and amended["stopLossOrderTransaction"]["price"] == "1.08"
    assert stub.trades[trade_id]["stopLoss"] == {"price": "1.08"}
    assert stub.trades[trade_id]["takeProfit"] == {"price": "1.2"}  # untouched

    status, listed = send(stub, OrderSpec(Operation.QUERY_POSITIONS))
    [trade] = listed["trades"]
    assert status == 200 and trade["id"] == trade_id and trade["currentUnits"] == "1000"
    assert trade["stopLossOrder"]["price"] == "1.08"

    part = OrderSpec(Operation.CLOSE_POSITION, position_id=trade_id, quantity=Decimal("400"),
                     client_order_id="x1")  # fmt: skip
    status, closed = send(stub, part)
    assert status == 200 and closed["orderFillTransaction"]["tradeReduced"]["units"] == "-400"
    assert stub.trades[trade_id]["currentUnits"] == "600"
    status, answer = send(stub, replace(part, quantity=Decimal("601")))
    assert (status, answer["errorCode"]) == (400, "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE")

    whole = OrderSpec(Operation.CLOSE_POSITION, position_id=trade_id, client_order_id="x2")
    status, closed = send(stub, whole)
    assert status == 200 and closed["orderFillTransaction"]["tradesClosed"][0]["units"] == "-600"
    assert stub.trades[trade_id]["state"] == "CLOSED"
    assert send(stub, OrderSpec(Operation.QUERY_POSITIONS))[1]["trades"] == []
    status, answer = send(stub, whole)
    assert (status, answer["errorCode"]) == (404, "NO_SUCH_TRADE")


def test_stop_loss_distance_and_sell_side(stub: OandaStub) -> None:
    sell = replace(MARKET, side=Side.SELL, stop_loss=ProtectiveLevel(distance=Decimal("0.01")),
                   take_profit=ProtectiveLevel(price=Decimal("1.0")))  # fmt: skip
    status, placed = send(stub, sell)
    assert status == 201, placed
    trade = stub.trades[placed["orderFillTransaction"]["tradeOpened"]["tradeID"]]
    assert trade["currentUnits"] == "-1000" and trade["stopLoss"] == {"distance": "0.01"}


def test_the_stub_refuses_what_v20_refuses(stub: OandaStub) -> None:
    # A stop loss on the profit side of the fill.
    status, answer = send(stub, replace(MARKET, stop_loss=ProtectiveLevel(price=Decimal("1.2"))))
    assert (status, answer["errorCode"]) == (400, "STOP_LOSS_ON_FILL_LOSS")
    assert stub.trades == {}
    request = ADAPTER.build(MARKET, CRED, SigningContext(now_ms=1, base_url=stub.base_url))
    doc = json.loads(request.body)
    for bad in ({"price": "1.05", "distance": "0.01"}, {}, {"price": 1.05}, {"price": "1e-2"},
                {"price": "1.05", "nonsense": "1"}):  # fmt: skip
        doc["order"]["stopLossOnFill"] = bad
        assert raw(request, json.dumps(doc).encode())[0] == 400, bad
    doc["order"]["stopLossOnFill"] = {"price": "1.05"}
    doc["order"]["takeProfitOnFill"] = {"distance": "0.01"}
    assert raw(request, json.dumps(doc).encode())[0] == 400
    del doc["order"]["takeProfitOnFill"]
    doc["order"]["unknownField"] = "x"
    assert raw(request, json.dumps(doc).encode())[0] == 400
    assert stub.trades == {}


def test_the_stub_checks_trade_order_and_close_bodies(stub: OandaStub) -> None:
    trade_id = send(stub, MARKET)[1]["orderFillTransaction"]["tradeOpened"]["tradeID"]
    amend = ADAPTER.build(
        OrderSpec(Operation.AMEND_POSITION, position_id=trade_id, client_order_id="a",
                  take_profit=ProtectiveLevel(price=Decimal("1.3"))),
        CRED, SigningContext(now_ms=1, base_url=stub.base_url),
    )  # fmt: skip
    for bad in (b"{}", b"[]", b"not json", b'{"stopLoss": {"price": "abc"}}',
                b'{"takeProfit": {"price": "1.0"}}', b'{"units": "ALL"}'):  # fmt: skip
        assert raw(amend, bad)[0] == 400, bad
    close = ADAPTER.build(
        OrderSpec(Operation.CLOSE_POSITION, position_id=trade_id, client_order_id="c"),
        CRED, SigningContext(now_ms=1, base_url=stub.base_url),
    )  # fmt: skip
    for bad in (b'{"units": "-5"}', b'{"units": 5}', b'{"units": "ALL", "x": 1}', b"[]"):
        assert raw(close, bad)[0] == 400, bad
    assert stub.trades[trade_id]["currentUnits"] == "1000"
    assert stub.trades[trade_id]["takeProfit"] == {"price": "1.2"}
