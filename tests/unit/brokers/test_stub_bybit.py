"""Requests built by the Bybit adapter, sent with httpx to the loopback Bybit stub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.venue_stubs import bybit_stub
from tests.venue_stubs.bybit_stub import BybitStub
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
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.bybit import ADAPTER
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
HMAC_SECRET = "bybit-stub-secret"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
HMAC_CRED = VenueCredential(
    Venue.BYBIT, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "hmac-key", secret=Secret(HMAC_SECRET)
)
RSA_CRED = VenueCredential(
    Venue.BYBIT,
    Environment.LIVE,
    KeyAlgorithm.RSA,
    "rsa-key",
    private_key_pem=Secret(
        RSA_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    ),
)
ORDER = OrderSpec(
    Operation.PLACE_ORDER,
    symbol="BTCUSDT",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    quantity=Decimal("0.01"),
    price=Decimal("30000"),
    time_in_force=TimeInForce.GTC,
    client_order_id="link-1",
    extras={"category": "linear"},
)


@pytest.fixture
def stub() -> Iterator[BybitStub]:
    keys = {"hmac-key": HMAC_SECRET, "rsa-key": RSA_KEY.public_key()}
    with BybitStub(keys, clock=lambda: NOW) as running:
        yield running


def send(request: PreparedRequest) -> dict[str, Any]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    return body


def ctx(stub: BybitStub, now: int = NOW) -> SigningContext:
    return SigningContext(now_ms=now, recv_window_ms=5000, base_url=stub.base_url)


@pytest.mark.parametrize("credential", [HMAC_CRED, RSA_CRED], ids=["hmac", "rsa"])
def test_built_order_is_accepted(stub: BybitStub, credential: VenueCredential) -> None:
    reply = send(ADAPTER.build(ORDER, credential, ctx(stub)))
    assert (reply["retCode"], reply["result"]["orderLinkId"]) == (0, "link-1")
    assert stub.requests[-1].path == "/v5/order/create"


@pytest.mark.parametrize(
    "order",
    [
        OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", venue_order_id="o-1",
                  extras={"category": "linear"}),
        OrderSpec(Operation.AMEND_ORDER, symbol="BTCUSDT", client_order_id="link-1",
                  price=Decimal("29999.5"), extras={"category": "linear"}),
        OrderSpec(Operation.QUERY_ORDER, symbol="BTCUSDT", venue_order_id="o-1",
                  extras={"category": "linear"}),
        OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTCUSDT", extras={"category": "spot"}),
        OrderSpec(Operation.QUERY_ACCOUNT),
    ],
)  # fmt: skip
def test_other_operations_are_accepted(stub: BybitStub, order: OrderSpec) -> None:
    assert send(ADAPTER.build(order, HMAC_CRED, ctx(stub)))["retCode"] == 0


@pytest.mark.parametrize(
    ("server_now", "code"),
    [(NOW + 5000, 0), (NOW + 5001, 10002), (NOW - 999, 0), (NOW - 1000, 10002)],
)
def test_timestamp_and_recv_window_rule(stub: BybitStub, server_now: int, code: int) -> None:
    request = ADAPTER.build(ORDER, HMAC_CRED, ctx(stub))
    stub.clock = lambda: server_now
    assert send(request)["retCode"] == code


@pytest.mark.parametrize("credential", [HMAC_CRED, RSA_CRED], ids=["hmac", "rsa"])
def test_tampered_body_byte_is_refused(stub: BybitStub, credential: VenueCredential) -> None:
    request = ADAPTER.build(ORDER, credential, ctx(stub))
    body = request.body.replace(b'"qty":"0.01"', b'"qty":"9.01"')
    assert body != request.body
    assert send(replace(request, body=body))["retCode"] == 10004


def test_reformatted_json_body_is_refused(stub: BybitStub) -> None:
    request = ADAPTER.build(ORDER, HMAC_CRED, ctx(stub))
    spaced = request.body.replace(b'","', b'", "')
    assert send(replace(request, body=spaced))["retCode"] == 10004


def test_tampered_query_changed_signature_and_unknown_key_are_refused(stub: BybitStub) -> None:
    order = OrderSpec(Operation.QUERY_ACCOUNT)
    request = ADAPTER.build(order, HMAC_CRED, ctx(stub))
    assert (
        send(replace(request, url=request.url.replace("UNIFIED", "CONTRACT")))["retCode"] == 10004
    )
    headers = dict(request.headers)
    sign = headers["X-BAPI-SIGN"]
    headers["X-BAPI-SIGN"] = ("0" if sign[0] != "0" else "1") + sign[1:]
    assert send(replace(request, headers=tuple(headers.items())))["retCode"] == 10004
    headers = dict(request.headers) | {"X-BAPI-API-KEY": "nobody"}
    assert send(replace(request, headers=tuple(headers.items())))["retCode"] == 10003


def test_widening_the_recv_window_header_breaks_the_signature(stub: BybitStub) -> None:
    request = ADAPTER.build(ORDER, HMAC_CRED, ctx(stub))
    stub.clock = lambda: NOW + 50_000
    headers = dict(request.headers) | {"X-BAPI-RECV-WINDOW": "60000"}
    assert send(replace(request, headers=tuple(headers.items())))["retCode"] == 10004


@pytest.mark.parametrize(
    ("overrides", "scopes"),
    [
        ({}, {Scope.READ, Scope.TRADE}),
        ({"readOnly": 1}, {Scope.READ}),
        ({"permissions": {"Spot": ["SpotTrade"], "Wallet": ["Withdraw"]}},
         {Scope.READ, Scope.TRADE, Scope.WITHDRAW, Scope.TRANSFER}),
    ],
)  # fmt: skip
def test_permission_round_trip(
    stub: BybitStub, overrides: dict[str, Any], scopes: set[Scope]
) -> None:
    stub.permissions["rsa-key"] = overrides
    request = ADAPTER.permission_request(RSA_CRED, ctx(stub))
    assert request is not None
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.get(request.url, headers=list(request.headers))
    assert ADAPTER.parse_permissions(response.status_code, response.content).scopes == scopes
    assert stub.requests[-1].path == "/v5/user/query-api"


def test_the_stub_reads_sizes_as_documented_and_refuses_a_misplaced_market_unit(
    stub: BybitStub,
) -> None:
    """Bybit's own default: a spot market buy without marketUnit is sized in the quote coin."""
    spot = replace(ORDER, order_type=OrderType.MARKET, price=None, time_in_force=None,
                   extras={"category": "spot"})  # fmt: skip
    assert send(ADAPTER.build(spot, HMAC_CRED, ctx(stub)))["retCode"] == 0
    body, reading = stub.placed[-1]
    assert (body["marketUnit"], reading) == ("baseCoin", (Decimal("0.01"), "base"))
    without = {k: v for k, v in body.items() if k != "marketUnit"}
    assert bybit_stub.documented_size(without) == (Decimal("0.01"), "quote")
    linear = ADAPTER.build(ORDER, HMAC_CRED, ctx(stub))
    misplaced = json.loads(linear.body) | {"marketUnit": "baseCoin"}
    reply = send(
        ADAPTER._sign(Call("POST", "/v5/order/create", json=misplaced), HMAC_CRED, ctx(stub))
    )
    assert reply["retCode"] == 10001 and len(stub.placed) == 1
