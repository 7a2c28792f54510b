"""Requests built by the Gate adapter, sent with httpx to the loopback Gate stub."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs.gate_stub import GateStub
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Side,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.brokers.venues.gate import ADAPTER
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
CRED = VenueCredential(Venue.GATE, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "gate-key",
                       secret=Secret("golden-test-secret-gate"))  # fmt: skip
BUY = OrderSpec(Operation.PLACE_ORDER, symbol="BTC_USDT", side=Side.BUY,
                order_type=OrderType.MARKET, quote_quantity=Decimal("25"), client_order_id="c1")  # fmt: skip


@pytest.fixture
def stub() -> Iterator[GateStub]:
    with GateStub({"gate-key": "golden-test-secret-gate"}, clock=lambda: NOW) as running:
        yield running


def ctx(stub: GateStub, now: int = NOW, window: int = 5000) -> SigningContext:
    return SigningContext(now_ms=now, recv_window_ms=window, base_url=stub.base_url)


def send(request: PreparedRequest) -> tuple[int, Any]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    return response.status_code, response.json()


def test_market_buy_spends_quote_as_gate_documents(stub: GateStub) -> None:
    status, reply = send(ADAPTER.build(BUY, CRED, ctx(stub)))
    assert status == 201 and reply["text"] == "t-c1"
    assert stub.placed[-1][1] == (Decimal("25"), "quote")
    sell = replace(BUY, side=Side.SELL, quote_quantity=None, quantity=Decimal("0.5"))
    assert send(ADAPTER.build(sell, CRED, ctx(stub)))[0] == 201
    assert stub.placed[-1][1] == (Decimal("0.5"), "base")


@pytest.mark.parametrize(
    "order",
    [OrderSpec(Operation.CANCEL_ORDER, symbol="BTC_USDT", venue_order_id="123"),
     OrderSpec(Operation.AMEND_ORDER, symbol="BTC_USDT", client_order_id="c1",
               price=Decimal("29000")),
     OrderSpec(Operation.QUERY_ORDER, symbol="BTC_USDT", venue_order_id="123"),
     OrderSpec(Operation.QUERY_OPEN_ORDERS), OrderSpec(Operation.QUERY_OPEN_ORDERS, "ETH_USDT"),
     OrderSpec(Operation.QUERY_ACCOUNT, extras={"currency": "USDT"})],
)  # fmt: skip
def test_other_operations_are_accepted(stub: GateStub, order: OrderSpec) -> None:
    assert send(ADAPTER.build(order, CRED, ctx(stub)))[0] == 200


def test_stale_tampered_and_expired_requests_are_refused(stub: GateStub) -> None:
    assert send(ADAPTER.build(BUY, CRED, ctx(stub, now=NOW - 61_000)))[1]["label"] == (
        "REQUEST_EXPIRED"
    )
    request = ADAPTER.build(BUY, CRED, ctx(stub))
    tampered = replace(request, body=request.body.replace(b'"25"', b'"2500"'))
    assert send(tampered)[1]["label"] == "INVALID_SIGNATURE"
    other = VenueCredential(**{**CRED.__dict__, "secret": Secret("not-the-secret")})
    assert send(ADAPTER.build(BUY, other, ctx(stub)))[1]["label"] == "INVALID_SIGNATURE"
    stub.clock = lambda: request.expire_at_ms + 1  # Timestamp fresh, X-Gate-Exptime passed
    assert send(request)[1]["message"] == "request past X-Gate-Exptime"
    stripped = replace(request, headers=tuple(h for h in request.headers
                                              if h[0] != "X-Gate-Exptime"))  # fmt: skip
    assert send(stripped)[0] == 201  # unsigned header: only the signed Timestamp binds
    stub.clock = lambda: NOW + 61_000
    assert send(stripped)[1]["label"] == "REQUEST_EXPIRED"
