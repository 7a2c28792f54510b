"""Requests built by the Coinbase adapter, sent with httpx to the loopback Coinbase stub."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.venue_stubs.coinbase_stub import CoinbaseStub
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
from vault_server.brokers.venues.coinbase import ADAPTER, STRICT_ADAPTER
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
EC_NAME = "organizations/stub-org/apiKeys/ec-key"
ED_NAME = "ed-key-id"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
EC_CRED = VenueCredential(
    Venue.COINBASE_ADVANCED, Environment.LIVE, KeyAlgorithm.ECDSA_P256, EC_NAME,
    private_key_pem=Secret(EC_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption())),
)  # fmt: skip
ED_SECRET = ED_KEY.private_bytes_raw() + ED_KEY.public_key().public_bytes_raw()
ED_CRED = VenueCredential(
    Venue.COINBASE_ADVANCED, Environment.LIVE, KeyAlgorithm.ED25519, ED_NAME,
    secret=Secret(base64.b64encode(ED_SECRET)),
)  # fmt: skip
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="BTC-USD", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("0.001"), price=Decimal("25000"), client_order_id="cl-1",
)  # fmt: skip


@pytest.fixture
def stub() -> Iterator[CoinbaseStub]:
    keys = {EC_NAME: EC_KEY.public_key(), ED_NAME: ED_KEY.public_key()}
    with CoinbaseStub(keys, clock=lambda: NOW) as running:
        yield running


def send(request: PreparedRequest) -> tuple[int, Any]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    return response.status_code, response.json()


def ctx(stub: CoinbaseStub, now: int = NOW) -> SigningContext:
    return SigningContext(now_ms=now, random_hex="5a" * 32, base_url=stub.base_url)


@pytest.mark.parametrize("cred", [EC_CRED, ED_CRED])
def test_built_order_is_accepted(stub: CoinbaseStub, cred: VenueCredential) -> None:
    status, reply = send(ADAPTER.build(ORDER, cred, ctx(stub)))
    assert status == 200 and reply["success"] is True
    assert reply["success_response"]["client_order_id"] == "cl-1"
    assert reply["order_configuration"]["limit_limit_gtc"]["base_size"] == "0.001"
    assert stub.claims[-1]["sub"] == cred.api_key


@pytest.mark.parametrize(
    "order",
    [
        OrderSpec(Operation.CANCEL_ORDER, venue_order_id="0000-1111"),
        OrderSpec(Operation.AMEND_ORDER, venue_order_id="0000-1111", price=Decimal("1")),
        OrderSpec(Operation.QUERY_ORDER, venue_order_id="0000-1111"),
        OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTC-USD"),
        OrderSpec(Operation.QUERY_ACCOUNT),
    ],
)
def test_other_operations_are_accepted(stub: CoinbaseStub, order: OrderSpec) -> None:
    status, _ = send(ADAPTER.build(order, EC_CRED, ctx(stub)))
    assert status == 200
    assert stub.requests[-1].query == ("order_status=OPEN&product_ids=BTC-USD" if
                                       order.operation is Operation.QUERY_OPEN_ORDERS else "")  # fmt: skip


def test_expired_and_not_yet_valid_tokens_are_refused(stub: CoinbaseStub) -> None:
    request = ADAPTER.build(ORDER, EC_CRED, ctx(stub))
    stub.clock = lambda: request.expire_at_ms - 1
    assert send(request)[0] == 200  # reusable for its whole life: the JWT binds no body
    stub.clock = lambda: request.expire_at_ms
    assert send(request) == (401, {"error": "UNAUTHENTICATED", "message": "token expired"})
    stub.clock = lambda: NOW
    early = ADAPTER.build(ORDER, EC_CRED, ctx(stub, now=NOW + 5_000))
    assert send(early)[1]["message"] == "token not yet valid"


def test_token_is_bound_to_method_and_path(stub: CoinbaseStub) -> None:
    request = ADAPTER.build(
        OrderSpec(Operation.QUERY_ORDER, venue_order_id="aaaa"), EC_CRED, ctx(stub)
    )
    moved = replace(request, url=request.url.replace("aaaa", "bbbb"))
    assert send(moved)[1]["message"] == "token uri does not match the request"
    as_post = replace(request, method="POST", body=b"{}")
    assert send(as_post)[1]["message"] == "token uri does not match the request"
    withdraw = replace(request, url=stub.base_url + "/v2/accounts/x/withdrawals", method="POST")
    assert send(withdraw)[0] == 401


def test_tampered_token_or_unknown_key_is_refused(stub: CoinbaseStub) -> None:
    request = ADAPTER.build(ORDER, ED_CRED, ctx(stub))
    token = dict(request.headers)["Authorization"]
    head, payload, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    forged = replace(request, headers=(("Authorization", f"{head}.{payload}.{flipped}"),))
    assert send(forged)[1]["message"] == "signature verification failed"
    stranger = VenueCredential(**{**ED_CRED.__dict__, "api_key": "someone-else"})
    assert send(ADAPTER.build(ORDER, stranger, ctx(stub)))[1]["message"] == "unknown key"
    other_key = ed25519.Ed25519PrivateKey.generate()
    impostor = VenueCredential(**{**ED_CRED.__dict__, "secret": Secret(
        base64.b64encode(other_key.private_bytes_raw()))})  # fmt: skip
    assert send(ADAPTER.build(ORDER, impostor, ctx(stub)))[0] == 401


def test_body_is_not_bound_so_strict_mode_exists(stub: CoinbaseStub) -> None:
    """A detached Coinbase request's order can be swapped by whoever holds it (reference §4.3)."""
    request = ADAPTER.build(ORDER, EC_CRED, ctx(stub))
    bigger = replace(request, body=request.body.replace(b'"0.001"', b'"9.000"'))
    status, reply = send(bigger)
    assert status == 200 and reply["order_configuration"]["limit_limit_gtc"]["base_size"] == "9.000"
    assert STRICT_ADAPTER.proxy_only and not ADAPTER.proxy_only


@pytest.mark.parametrize(
    ("overrides", "scopes"),
    [
        (None, {Scope.READ, Scope.TRADE}),
        ({"can_transfer": True}, {Scope.READ, Scope.TRADE, Scope.TRANSFER}),
        ({"can_trade": False}, {Scope.READ}),
    ],
)
def test_permission_round_trip(
    stub: CoinbaseStub, overrides: dict[str, Any] | None, scopes: set[Scope]
) -> None:
    if overrides is not None:
        stub.permissions[EC_NAME] = overrides
    request = ADAPTER.permission_request(EC_CRED, ctx(stub))
    assert request is not None
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.get(request.url, headers=list(request.headers))
    report = ADAPTER.parse_permissions(response.status_code, response.content)
    assert report.scopes == scopes and report.raw["portfolio_type"] == "DEFAULT"
