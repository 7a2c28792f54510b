"""Requests built by the KuCoin adapter, sent with httpx to the loopback KuCoin stub."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs.kucoin_stub import KucoinStub
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
from vault_server.brokers.venues.kucoin import ADAPTER
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
CRED = VenueCredential(Venue.KUCOIN, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "kc-key",
                       secret=Secret("golden-test-secret-kc"),
                       passphrase=Secret("golden pass"))  # fmt: skip
ORDER = OrderSpec(Operation.PLACE_ORDER, symbol="BTC-USDT", side=Side.BUY,
                  order_type=OrderType.MARKET, quote_quantity=Decimal("25"), client_order_id="c1")  # fmt: skip


@pytest.fixture
def stub() -> Iterator[KucoinStub]:
    keys = {"kc-key": ("golden-test-secret-kc", "golden pass")}
    with KucoinStub(keys, clock=lambda: NOW) as running:
        yield running


def ctx(stub: KucoinStub, now: int = NOW) -> SigningContext:
    return SigningContext(now_ms=now, base_url=stub.base_url)


def send(request: PreparedRequest) -> tuple[int, Any]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "order",
    [ORDER, replace(ORDER, side=Side.SELL, quote_quantity=None, quantity=Decimal("0.5")),
     OrderSpec(Operation.CANCEL_ORDER, symbol="BTC-USDT", venue_order_id="5bd6e9286d99522a"),
     OrderSpec(Operation.QUERY_ORDER, symbol="BTC-USDT", client_order_id="c1"),
     OrderSpec(Operation.AMEND_ORDER, symbol="BTC-USDT", client_order_id="c1",
               quantity=Decimal("1")),
     OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTC-USDT"),
     OrderSpec(Operation.QUERY_OPEN_ORDERS), OrderSpec(Operation.QUERY_ACCOUNT)],
)  # fmt: skip
def test_built_requests_are_accepted(stub: KucoinStub, order: OrderSpec) -> None:
    status, reply = send(ADAPTER.build(order, CRED, ctx(stub)))
    assert (status, reply["code"]) == (200, "200000")


def test_stale_tampered_and_plain_passphrase_are_refused(stub: KucoinStub) -> None:
    assert send(ADAPTER.build(ORDER, CRED, ctx(stub, NOW - 5_001)))[1]["code"] == "400002"
    request = ADAPTER.build(ORDER, CRED, ctx(stub))
    stub.clock = lambda: request.expire_at_ms
    assert send(request)[0] == 200
    stub.clock = lambda: request.expire_at_ms + 1
    assert send(request)[1]["code"] == "400002"  # expire_at_ms is KuCoin's own limit
    stub.clock = lambda: NOW
    tampered = replace(request, body=request.body.replace(b'"25"', b'"2500"'))
    assert send(tampered)[1]["code"] == "400005"
    plain = tuple((k, "golden pass" if k == "KC-API-PASSPHRASE" else v) for k, v in request.headers)
    assert send(replace(request, headers=plain))[1]["code"] == "400004"
    assert stub.placed == [{"clientOid": "c1", "symbol": "BTC-USDT", "side": "buy",
                            "type": "market", "funds": "25"}]  # fmt: skip


@pytest.mark.parametrize(
    ("permission", "scopes"),
    [(None, {Scope.READ, Scope.TRADE}),
     ("General,Spot,Withdrawal", {Scope.READ, Scope.TRADE, Scope.WITHDRAW}),
     ("General,Transfer", {Scope.READ, Scope.TRANSFER})],
)  # fmt: skip
def test_permission_round_trip(
    stub: KucoinStub, permission: str | None, scopes: set[Scope]
) -> None:
    if permission is not None:
        stub.permissions["kc-key"] = permission
    request = ADAPTER.permission_request(CRED, ctx(stub))
    assert request is not None
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.get(request.url, headers=list(request.headers))
    report = ADAPTER.parse_permissions(response.status_code, response.content)
    assert report.scopes == scopes and report.raw["remark"] == "stub-key"
