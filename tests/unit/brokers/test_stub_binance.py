"""Requests built by the Binance adapters, sent with httpx to the loopback Binance stub."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.venue_stubs.binance_stub import BinanceStub
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
    VenueCredential,
)
from vault_server.brokers.spec import SpecAdapter as BinanceAdapter
from vault_server.brokers.venues.binance_spot import ADAPTER as SPOT
from vault_server.brokers.venues.binance_usdm import ADAPTER as USDM
from vault_server.brokers.venues.binance_usdm import BinanceUsdmAdapter
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
HMAC_SECRET = "stub-hmac-secret"
ED_KEY = ed25519.Ed25519PrivateKey.generate()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ORDER = OrderSpec(
    Operation.PLACE_ORDER,
    symbol="BTCUSDT",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    quantity=Decimal("0.01"),
    price=Decimal("30000"),
    time_in_force=TimeInForce.GTC,
    client_order_id="cid-1",
)


def pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> Secret:
    return Secret(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def credential(adapter: BinanceAdapter, algorithm: KeyAlgorithm) -> VenueCredential:
    if algorithm is KeyAlgorithm.HMAC_SHA256:
        return VenueCredential(
            adapter.venue, Environment.LIVE, algorithm, "hmac-key", secret=Secret(HMAC_SECRET)
        )
    key, name = (ED_KEY, "ed-key") if algorithm is KeyAlgorithm.ED25519 else (RSA_KEY, "rsa-key")
    return VenueCredential(
        adapter.venue, Environment.LIVE, algorithm, name, private_key_pem=pem(key)
    )


@pytest.fixture
def stub() -> Iterator[BinanceStub]:
    keys = {"hmac-key": HMAC_SECRET, "ed-key": ED_KEY.public_key(), "rsa-key": RSA_KEY.public_key()}
    with BinanceStub(keys, clock=lambda: NOW) as running:
        yield running


def send(request: PreparedRequest) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=5) as client:
        return client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )


def ctx(stub: BinanceStub, now: int = NOW, window: int = 5000) -> SigningContext:
    return SigningContext(now_ms=now, recv_window_ms=window, base_url=stub.base_url)


@pytest.mark.parametrize(
    ("adapter", "algorithm"),
    [
        (SPOT, KeyAlgorithm.HMAC_SHA256), (SPOT, KeyAlgorithm.ED25519), (SPOT, KeyAlgorithm.RSA),
        (USDM, KeyAlgorithm.HMAC_SHA256), (USDM, KeyAlgorithm.RSA),
        (BinanceUsdmAdapter(body_params=True), KeyAlgorithm.HMAC_SHA256),
    ],
)  # fmt: skip
def test_built_orders_are_accepted(
    stub: BinanceStub, adapter: BinanceAdapter, algorithm: KeyAlgorithm
) -> None:
    response = send(adapter.build(ORDER, credential(adapter, algorithm), ctx(stub)))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "NEW"
    assert response.json()["clientOrderId"] == "cid-1"
    assert stub.requests[-1].status == 200


def test_non_ascii_symbols_survive_the_wire(stub: BinanceStub) -> None:
    order = replace(ORDER, symbol="１２３４５６")
    response = send(SPOT.build(order, credential(SPOT, KeyAlgorithm.HMAC_SHA256), ctx(stub)))
    assert response.status_code == 200, response.text
    assert response.json()["symbol"] == "１２３４５６"


@pytest.mark.parametrize(
    "order",
    [
        OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", venue_order_id="1001"),
        OrderSpec(Operation.QUERY_ORDER, symbol="BTCUSDT", client_order_id="cid-1"),
        OrderSpec(Operation.AMEND_ORDER, symbol="BTCUSDT", venue_order_id="1",
                  quantity=Decimal("0.005")),
        OrderSpec(Operation.QUERY_OPEN_ORDERS), OrderSpec(Operation.QUERY_ACCOUNT),
    ],
)  # fmt: skip
def test_other_operations_are_accepted(stub: BinanceStub, order: OrderSpec) -> None:
    request = SPOT.build(order, credential(SPOT, KeyAlgorithm.ED25519), ctx(stub))
    assert send(request).status_code == 200


@pytest.mark.parametrize(
    ("server_now", "code"),
    [(NOW + 5000, 200), (NOW + 5001, -1021), (NOW - 999, 200), (NOW - 1000, -1021)],
)
def test_freshness_follows_the_documented_recv_window_rule(
    stub: BinanceStub, server_now: int, code: int
) -> None:
    request = SPOT.build(ORDER, credential(SPOT, KeyAlgorithm.HMAC_SHA256), ctx(stub))
    stub.clock = lambda: server_now
    response = send(request)
    if code == 200:
        assert response.status_code == 200, response.text
    else:
        assert (response.status_code, response.json()["code"]) == (400, code)


def test_tampered_query_is_refused(stub: BinanceStub) -> None:
    request = SPOT.build(ORDER, credential(SPOT, KeyAlgorithm.RSA), ctx(stub))
    forged = replace(request, url=request.url.replace("quantity=0.01", "quantity=9.01"))
    assert forged.url != request.url
    response = send(forged)
    assert (response.status_code, response.json()["code"]) == (400, -1022)


def test_tampered_body_byte_is_refused(stub: BinanceStub) -> None:
    adapter = BinanceUsdmAdapter(body_params=True)
    request = adapter.build(ORDER, credential(adapter, KeyAlgorithm.HMAC_SHA256), ctx(stub))
    body = bytearray(request.body)
    body[body.index(b"price=3") + len("price=")] = ord("9")
    response = send(replace(request, body=bytes(body)))
    assert (response.status_code, response.json()["code"]) == (400, -1022)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.ED25519])
def test_changed_signature_is_refused(stub: BinanceStub, algorithm: KeyAlgorithm) -> None:
    request = SPOT.build(ORDER, credential(SPOT, algorithm), ctx(stub))
    head, _, signature = request.url.rpartition("signature=")
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    response = send(replace(request, url=f"{head}signature={flipped}"))
    assert (response.status_code, response.json()["code"]) == (400, -1022)


def test_signature_from_another_key_and_unknown_key_are_refused(stub: BinanceStub) -> None:
    request = SPOT.build(ORDER, credential(SPOT, KeyAlgorithm.ED25519), ctx(stub))
    other = replace(request, headers=(("X-MBX-APIKEY", "rsa-key"),))
    assert send(other).json()["code"] == -1022
    unknown = replace(request, headers=(("X-MBX-APIKEY", "nobody"),))
    assert (send(unknown).status_code, send(unknown).json()["code"]) == (401, -2015)


def test_recv_window_above_60000_is_refused_by_the_stub_too(stub: BinanceStub) -> None:
    request = SPOT.build(ORDER, credential(SPOT, KeyAlgorithm.HMAC_SHA256), ctx(stub))
    assert "recvWindow=5000" in request.url
    # A router cannot widen the window: the parameter is signed, so editing it breaks the MAC.
    widened = replace(request, url=request.url.replace("recvWindow=5000", "recvWindow=50000"))
    assert send(widened).json()["code"] == -1022


@pytest.mark.parametrize(
    ("overrides", "scopes"),
    [
        ({}, {Scope.READ, Scope.TRADE}),
        ({"enableWithdrawals": True}, {Scope.READ, Scope.TRADE, Scope.WITHDRAW}),
        ({"permitsUniversalTransfer": True, "enableSpotAndMarginTrading": False},
         {Scope.READ, Scope.TRANSFER}),
    ],
)  # fmt: skip
def test_permission_round_trip(
    stub: BinanceStub, overrides: dict[str, bool], scopes: set[Scope]
) -> None:
    stub.permissions["hmac-key"] = overrides
    request = SPOT.permission_request(credential(SPOT, KeyAlgorithm.HMAC_SHA256), ctx(stub))
    assert request is not None
    response = send(request)
    assert SPOT.parse_permissions(response.status_code, response.content).scopes == scopes
    recorded = stub.requests[-1]
    assert (recorded.method, recorded.path) == ("GET", "/sapi/v1/account/apiRestrictions")
    assert recorded.headers["x-mbx-apikey"] == "hmac-key"
