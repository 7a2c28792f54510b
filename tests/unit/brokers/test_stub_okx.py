"""Requests built by the OKX adapter, sent with httpx to the loopback OKX stub."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs import okx_stub
from tests.venue_stubs.okx_stub import OkxKey, OkxStub
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
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.okx import ADAPTER
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
CRED = VenueCredential(
    Venue.OKX, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "live-key",
    secret=Secret("live-secret"), passphrase=Secret("live pass"),
)  # fmt: skip
DEMO = VenueCredential(
    Venue.OKX, Environment.PAPER, KeyAlgorithm.HMAC_SHA256, "demo-key",
    secret=Secret("demo-secret"), passphrase=Secret("demo pass"),
)  # fmt: skip
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="BTC-USDT", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("0.01"), price=Decimal("30000"), client_order_id="c1",
)  # fmt: skip


@pytest.fixture
def stub() -> Iterator[OkxStub]:
    keys = {"live-key": OkxKey("live-secret", "live pass"),
            "demo-key": OkxKey("demo-secret", "demo pass", simulated=True)}  # fmt: skip
    with OkxStub(keys, clock=lambda: NOW) as running:
        yield running


def send(request: PreparedRequest) -> tuple[int, dict[str, Any]]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    return response.status_code, response.json()


def ctx(stub: OkxStub, now: int = NOW, window: int = 5000) -> SigningContext:
    return SigningContext(now_ms=now, recv_window_ms=window, base_url=stub.base_url)


def with_header(request: PreparedRequest, name: str, value: str) -> PreparedRequest:
    headers = tuple((k, value if k == name else v) for k, v in request.headers)
    return replace(request, headers=headers)


@pytest.mark.parametrize("cred", [CRED, DEMO])
def test_built_order_is_accepted(stub: OkxStub, cred: VenueCredential) -> None:
    status, reply = send(ADAPTER.build(ORDER, cred, ctx(stub)))
    assert (status, reply["code"]) == (200, "0")
    assert reply["data"][0]["clOrdId"] == "c1" and reply["data"][0]["sCode"] == "0"
    assert stub.requests[-1].path == "/api/v5/trade/order"


@pytest.mark.parametrize(
    "order",
    [
        OrderSpec(Operation.CANCEL_ORDER, symbol="BTC-USDT", venue_order_id="123"),
        OrderSpec(Operation.AMEND_ORDER, symbol="BTC-USDT", client_order_id="c1",
                  price=Decimal("29000")),
        OrderSpec(Operation.QUERY_ORDER, symbol="BTC-USDT", venue_order_id="123"),
        OrderSpec(Operation.QUERY_OPEN_ORDERS, extras={"instType": "SPOT"}),
        OrderSpec(Operation.QUERY_ACCOUNT, extras={"ccy": "BTC"}),
    ],
)  # fmt: skip
def test_other_operations_are_accepted(stub: OkxStub, order: OrderSpec) -> None:
    status, reply = send(ADAPTER.build(order, CRED, ctx(stub)))
    assert (status, reply["code"]) == (200, "0")


def test_stale_request_is_refused(stub: OkxStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, now=NOW - 30_001))
    assert send(request) == (401, {"code": "50102", "msg": "Timestamp request expired", "data": []})
    assert send(ADAPTER.build(ORDER, CRED, ctx(stub, now=NOW - 29_000)))[0] == 200


def test_replay_after_expiry_is_refused(stub: OkxStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, window=60_000))
    assert send(request)[0] == 200
    stub.clock = lambda: request.expire_at_ms  # the adapter capped the window at 30 s
    assert send(request)[0] == 200  # still inside OKX's tolerance: replayable, hence clOrdId
    stub.clock = lambda: request.expire_at_ms + 1
    assert send(request)[1]["code"] == "50102"


def test_exptime_header_is_enforced_but_not_signed(stub: OkxStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub, window=1000))
    stub.clock = lambda: NOW + 2000  # timestamp still fresh, expTime passed
    assert send(request)[1]["msg"] == "stub: request past expTime"
    stripped = replace(request, headers=tuple(h for h in request.headers if h[0] != "expTime"))
    assert send(stripped)[1]["code"] == "0"  # the router can strip it: only ts is a hard limit


def test_tampered_body_query_and_signature_are_refused(stub: OkxStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub))
    tampered = replace(request, body=request.body.replace(b'"sz":"0.01"', b'"sz":"10"'))
    assert tampered.body != request.body
    assert send(tampered)[1]["code"] == "50113"
    query = ADAPTER.build(
        OrderSpec(Operation.QUERY_ACCOUNT, extras={"ccy": "BTC"}), CRED, ctx(stub)
    )
    assert send(replace(query, url=query.url.replace("BTC", "ETH")))[1]["code"] == "50113"
    sign = dict(request.headers)["OK-ACCESS-SIGN"]
    flipped = ("A" if sign[0] != "A" else "B") + sign[1:]
    assert send(with_header(request, "OK-ACCESS-SIGN", flipped))[1]["code"] == "50113"
    assert send(request)[1]["code"] == "0"


def test_wrong_passphrase_key_or_environment_is_refused(stub: OkxStub) -> None:
    request = ADAPTER.build(ORDER, CRED, ctx(stub))
    assert send(with_header(request, "OK-ACCESS-PASSPHRASE", "guess"))[1]["code"] == "50105"
    assert send(with_header(request, "OK-ACCESS-KEY", "other"))[1]["code"] == "50111"
    demo_as_live = VenueCredential(**{**DEMO.__dict__, "environment": Environment.LIVE})
    assert send(ADAPTER.build(ORDER, demo_as_live, ctx(stub)))[1]["code"] == "50101"
    live_as_demo = VenueCredential(**{**CRED.__dict__, "environment": Environment.TESTNET})
    assert send(ADAPTER.build(ORDER, live_as_demo, ctx(stub)))[1]["code"] == "50101"
    wrong_secret = VenueCredential(**{**CRED.__dict__, "secret": Secret("not-the-secret")})
    assert send(ADAPTER.build(ORDER, wrong_secret, ctx(stub)))[1]["code"] == "50113"


@pytest.mark.parametrize(
    ("perm", "scopes"),
    [
        (None, {Scope.READ, Scope.TRADE}),
        ("read_only,withdraw,trade", {Scope.READ, Scope.TRADE, Scope.WITHDRAW}),
        ("read_only", {Scope.READ}),
    ],
)
def test_permission_round_trip(stub: OkxStub, perm: str | None, scopes: set[Scope]) -> None:
    if perm is not None:
        stub.permissions["live-key"] = perm
    request = ADAPTER.permission_request(CRED, ctx(stub))
    assert request is not None
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.get(request.url, headers=list(request.headers))
    report = ADAPTER.parse_permissions(response.status_code, response.content)
    assert report.scopes == scopes and report.raw["label"] == "stub-key"


def test_the_stub_reads_sizes_as_documented_and_refuses_an_unknown_tgtccy(stub: OkxStub) -> None:
    """OKX's own defaults: a spot market buy without tgtCcy spends ``sz`` of the quote currency."""
    market = replace(ORDER, order_type=OrderType.MARKET, price=None)
    assert send(ADAPTER.build(market, CRED, ctx(stub)))[1]["code"] == "0"
    body, reading = stub.placed[-1]
    assert (body["tgtCcy"], reading) == ("base_ccy", (Decimal("0.01"), "base"))
    without = {k: v for k, v in body.items() if k != "tgtCcy"}
    assert okx_stub.documented_size(without) == (Decimal("0.01"), "quote")
    assert okx_stub.documented_size(without | {"side": "sell"}) == (Decimal("0.01"), "base")
    bad = ADAPTER._sign(
        Call("POST", "/api/v5/trade/order", json=body | {"tgtCcy": "usd"}), CRED, ctx(stub)
    )
    assert send(bad)[1]["code"] == "51000" and len(stub.placed) == 1
