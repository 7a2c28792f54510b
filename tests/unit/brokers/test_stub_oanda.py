"""Requests built by the OANDA adapter, sent with httpx to the loopback OANDA stub."""

from __future__ import annotations

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
    Side,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.brokers.venues.oanda import ADAPTER
from vault_server.core.secret import Secret

TOKEN = "practice-token-0123456789abcdef"
ACCOUNT = "101-004-1234567-001"
CRED = VenueCredential(
    Venue.OANDA, Environment.PAPER, KeyAlgorithm.BEARER, "token", secret=Secret(TOKEN),
    account_id=ACCOUNT,
)  # fmt: skip
LIMIT = OrderSpec(
    Operation.PLACE_ORDER, symbol="EUR_USD", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("1000"), price=Decimal("1.05"), client_order_id="strat-1",
)  # fmt: skip


@pytest.fixture
def stub() -> Iterator[OandaStub]:
    with OandaStub({TOKEN: [ACCOUNT], "other-token": ["101-004-7654321-001"]}) as running:
        yield running


def send(request: PreparedRequest) -> tuple[int, Any]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    return response.status_code, response.json()


def build(stub: OandaStub, order: OrderSpec, cred: VenueCredential = CRED) -> PreparedRequest:
    return ADAPTER.build(order, cred, SigningContext(now_ms=1, base_url=stub.base_url))


def test_order_lifecycle_through_the_stub(stub: OandaStub) -> None:
    status, created = send(build(stub, LIMIT))
    assert status == 201
    transaction = created["orderCreateTransaction"]
    assert (transaction["type"], transaction["units"], transaction["price"]) == (
        "LIMIT_ORDER", "1000", "1.05")  # fmt: skip
    assert transaction["clientExtensions"] == {"id": "strat-1"}
    order_id = transaction["id"]

    by_client = OrderSpec(Operation.QUERY_ORDER, client_order_id="strat-1")
    assert send(build(stub, by_client))[1]["order"]["id"] == order_id
    pending = send(build(stub, OrderSpec(Operation.QUERY_OPEN_ORDERS)))[1]["orders"]
    assert [o["id"] for o in pending] == [order_id]
    summary = send(build(stub, OrderSpec(Operation.QUERY_ACCOUNT)))[1]["account"]
    assert summary["id"] == ACCOUNT and summary["pendingOrderCount"] == 1

    replace_order = OrderSpec(Operation.AMEND_ORDER, venue_order_id=order_id, symbol="EUR_USD",
                              side=Side.BUY, order_type=OrderType.LIMIT,
                              quantity=Decimal("2000"), price=Decimal("1.04"))  # fmt: skip
    status, replaced = send(build(stub, replace_order))
    assert status == 201 and replaced["orderCancelTransaction"]["orderID"] == order_id
    new_id = replaced["orderCreateTransaction"]["id"]
    assert stub.orders[new_id]["replacesOrderID"] == order_id

    status, cancelled = send(build(stub, OrderSpec(Operation.CANCEL_ORDER, venue_order_id=new_id)))
    assert status == 200 and cancelled["orderCancelTransaction"]["orderID"] == new_id
    assert send(build(stub, OrderSpec(Operation.QUERY_OPEN_ORDERS)))[1]["orders"] == []


def test_market_sell_has_negative_units(stub: OandaStub) -> None:
    market = OrderSpec(Operation.PLACE_ORDER, symbol="USD_JPY", side=Side.SELL,
                       order_type=OrderType.MARKET, quantity=Decimal(250))  # fmt: skip
    status, created = send(build(stub, market))
    assert status == 201 and created["orderCreateTransaction"]["units"] == "-250"
    assert created["orderCreateTransaction"]["timeInForce"] == "FOK"


def test_wrong_or_tampered_token_is_refused(stub: OandaStub) -> None:
    request = build(stub, LIMIT)
    headers = tuple((k, "Bearer not-the-token" if k == "Authorization" else v)
                    for k, v in request.headers)  # fmt: skip
    assert send(replace(request, headers=headers))[0] == 401
    stranger = VenueCredential(**{**CRED.__dict__, "secret": Secret("other-token")})
    assert send(build(stub, LIMIT, stranger))[0] == 403  # token valid, account not its own
    no_auth = tuple(h for h in request.headers if h[0] != "Authorization")
    assert send(replace(request, headers=no_auth))[0] == 401
    assert stub.orders == {}


def test_bearer_requests_replay_which_is_why_oanda_is_proxy_only(stub: OandaStub) -> None:
    request = build(stub, OrderSpec(**{**LIMIT.__dict__, "client_order_id": None}))
    assert send(request)[0] == 201
    assert send(request)[0] == 201  # no signature, no timestamp: only the vault can stop this
    assert len(stub.orders) == 2 and ADAPTER.proxy_only


def test_unknown_order_is_reported(stub: OandaStub) -> None:
    status, reply = send(build(stub, OrderSpec(Operation.QUERY_ORDER, venue_order_id="999999")))
    assert status == 404 and reply["errorCode"] == "ORDER_DOESNT_EXIST"
