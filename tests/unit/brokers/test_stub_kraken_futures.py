"""Requests built by the Kraken Futures adapter, sent with httpx to the loopback stub."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs.kraken_futures_stub import KrakenFuturesStub
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
from vault_server.brokers.venues.kraken_futures import ADAPTER
from vault_server.core.secret import Secret

NOW = 1_700_000_000_123
SECRET = base64.b64encode(secrets.token_bytes(64)).decode()
CRED = VenueCredential(
    Venue.KRAKEN_FUTURES, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "pub-key",
    secret=Secret(SECRET),
)  # fmt: skip
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="PF_XBTUSD", side=Side.SELL, order_type=OrderType.LIMIT,
    quantity=Decimal("0.5"), price=Decimal("65000.5"), client_order_id="strat-1:abc",
)  # fmt: skip


@pytest.fixture
def stub() -> Iterator[KrakenFuturesStub]:
    with KrakenFuturesStub({"pub-key": SECRET}, clock=lambda: NOW) as running:
        yield running


def ctx(stub: KrakenFuturesStub, nonce: int) -> SigningContext:
    return SigningContext(now_ms=NOW, nonce=nonce, base_url=stub.base_url)


def send(request: PreparedRequest, **changes: Any) -> tuple[int, dict[str, Any]]:
    fields = {"headers": list(request.headers), "content": request.body, **changes}
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(request.method, request.url, **fields)
    body = response.json()
    assert isinstance(body, dict)
    return response.status_code, body


def test_every_operation_is_accepted(stub: KrakenFuturesStub) -> None:
    orders = [
        ORDER,
        OrderSpec(Operation.AMEND_ORDER, client_order_id="strat-1:abc", price=Decimal("65001")),
        OrderSpec(Operation.CANCEL_ORDER, venue_order_id="0000stub-0001"),
        OrderSpec(Operation.QUERY_ORDER, venue_order_id="0000stub-0001"),
        OrderSpec(Operation.QUERY_OPEN_ORDERS),
        OrderSpec(Operation.QUERY_ACCOUNT),
    ]
    for offset, order in enumerate(orders):
        status, body = send(ADAPTER.build(order, CRED, ctx(stub, NOW + offset)))
        assert (status, body["result"]) == (200, "success"), (order.operation, body)
    assert stub.requests[0].reply["sendStatus"]["cliOrdId"] == "strat-1:abc"
    assert stub.nonces["pub-key"] == NOW + len(orders) - 1


def test_replayed_or_held_back_requests_are_refused(stub: KrakenFuturesStub) -> None:
    held = ADAPTER.build(ORDER, CRED, ctx(stub, NOW))
    later = ADAPTER.build(replace(ORDER, client_order_id="c-2"), CRED, ctx(stub, NOW + 1))
    assert send(later)[1]["result"] == "success"
    assert send(held)[1] == {**send(held)[1], "result": "error", "error": "nonceBelowThreshold"}
    assert send(later)[1]["error"] == "nonceDuplicate"


def test_tampered_or_nonceless_requests_are_refused(stub: KrakenFuturesStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, NOW))
    bigger = request.body.replace(b"size=0.5", b"size=500")
    assert send(request, content=bigger)[0] == 401
    no_nonce = [(k, v) for k, v in request.headers if k != "Nonce"]
    assert send(request, headers=no_nonce)[0] == 401
    assert send(request)[1]["result"] == "success"


def test_fund_moving_paths_do_not_exist_for_the_vault(stub: KrakenFuturesStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, NOW))
    moved = replace(request, url=request.url.replace("sendorder", "withdrawal"))
    assert send(moved)[0] == 404
