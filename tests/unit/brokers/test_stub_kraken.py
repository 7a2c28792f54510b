"""Requests built by the Kraken adapter, sent with httpx to the loopback Kraken stub."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from tests.venue_stubs.kraken_stub import KrakenStub
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
from vault_server.brokers.venues.kraken import ADAPTER
from vault_server.core.secret import Secret

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
NOW = 1_616_492_376_594
CRED = VenueCredential(
    Venue.KRAKEN_SPOT, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "pub-key", secret=Secret(SECRET)
)
ORDER = OrderSpec(
    Operation.PLACE_ORDER,
    symbol="XBTUSD",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    quantity=Decimal("1.25"),
    price=Decimal("37500"),
)


@pytest.fixture
def stub() -> Iterator[KrakenStub]:
    with KrakenStub({"pub-key": SECRET}, clock=lambda: NOW) as running:
        yield running


def send(request: PreparedRequest) -> dict[str, object]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    return body


def ctx(stub: KrakenStub, nonce: int, now: int = NOW) -> SigningContext:
    return SigningContext(now_ms=now, nonce=nonce, base_url=stub.base_url)


def test_built_order_is_accepted_and_recorded(stub: KrakenStub) -> None:
    reply = send(ADAPTER.build(ORDER, CRED, ctx(stub, nonce=NOW)))
    assert reply["error"] == []
    assert reply["result"]["descr"]["order"] == "buy 1.25 XBTUSD @ limit 37500"  # type: ignore[index]
    recorded = stub.requests[-1]
    assert recorded.path == "/0/private/AddOrder" and b"deadline=" in recorded.body
    assert stub.nonces["pub-key"] == NOW


@pytest.mark.parametrize(
    "order",
    [
        OrderSpec(Operation.CANCEL_ORDER, venue_order_id="OUF4EM-FRGI2-MQMWZD"),
        OrderSpec(Operation.AMEND_ORDER, client_order_id="c-1", price=Decimal("37000")),
        OrderSpec(Operation.QUERY_ORDER, venue_order_id="OUF4EM-FRGI2-MQMWZD"),
        OrderSpec(Operation.QUERY_OPEN_ORDERS), OrderSpec(Operation.QUERY_ACCOUNT),
    ],
)  # fmt: skip
def test_other_operations_are_accepted(stub: KrakenStub, order: OrderSpec) -> None:
    assert send(ADAPTER.build(order, CRED, ctx(stub, nonce=10)))["error"] == []


def test_replayed_request_is_refused_by_the_nonce(stub: KrakenStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, nonce=100))
    assert send(request)["error"] == []
    assert send(request)["error"] == ["EAPI:Invalid nonce"]
    assert len(stub.requests) == 2


def test_nonces_must_strictly_increase(stub: KrakenStub) -> None:
    assert send(ADAPTER.build(ORDER, CRED, ctx(stub, nonce=200)))["error"] == []
    assert send(ADAPTER.build(ORDER, CRED, ctx(stub, nonce=199)))["error"] == ["EAPI:Invalid nonce"]
    assert send(ADAPTER.build(ORDER, CRED, ctx(stub, nonce=201)))["error"] == []


def test_tampered_body_byte_is_refused_and_does_not_burn_the_nonce(stub: KrakenStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, nonce=300))
    body = request.body.replace(b"volume=1.25", b"volume=9.25")
    assert body != request.body
    assert send(replace(request, body=body))["error"] == ["EAPI:Invalid signature"]
    assert send(request)["error"] == []


def test_changed_signature_and_unknown_key_are_refused(stub: KrakenStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, nonce=400))
    headers = dict(request.headers)
    sign = headers["API-Sign"]
    headers["API-Sign"] = ("A" if sign[0] != "A" else "B") + sign[1:]
    assert send(replace(request, headers=tuple(headers.items())))["error"] == [
        "EAPI:Invalid signature"
    ]
    headers = dict(request.headers) | {"API-Key": "someone-else"}
    assert send(replace(request, headers=tuple(headers.items())))["error"] == ["EAPI:Invalid key"]


def test_order_past_its_deadline_is_refused(stub: KrakenStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, nonce=500))
    stub.clock = lambda: request.expire_at_ms
    assert send(request)["error"] == ["EGeneral:Invalid arguments:deadline"]
    stub.clock = lambda: request.expire_at_ms - 1
    fresh = ADAPTER.build(ORDER, CRED, ctx(stub, nonce=501))
    assert send(fresh)["error"] == []


@pytest.mark.parametrize(
    ("permissions", "scopes"),
    [
        (None, {Scope.READ, Scope.TRADE}),
        (["query-funds", "withdraw-funds"], {Scope.READ, Scope.WITHDRAW}),
        (["query-open-trades", "add-funds"], {Scope.READ, Scope.TRANSFER}),
    ],
)
def test_permission_round_trip(
    stub: KrakenStub, permissions: list[str] | None, scopes: set[Scope]
) -> None:
    if permissions is not None:
        stub.permissions["pub-key"] = permissions
    request = ADAPTER.permission_request(CRED, ctx(stub, nonce=600))
    assert request is not None
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.post(request.url, headers=list(request.headers), content=request.body)
    report = ADAPTER.parse_permissions(response.status_code, response.content)
    assert report.scopes == scopes
    assert report.raw["apiKeyName"] == "stub-key"
