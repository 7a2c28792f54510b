"""Size units end to end: a market buy of 0.01 BTC buys 0.01 BTC at the venue.

Through the real server: SignOrder for OKX and Bybit spot market orders, the signed request sent
unchanged to the venue's loopback stub, whose ``placed`` log records what the venue's
documentation says it would trade (defaults included). Quote-sized orders go the same way, are
refused with INVALID_ARGUMENT where the venue cannot take them, are bounded by the notional limit
(and refused under a quantity limit), and are proxied to Alpaca as ``notional``. Last, what
the vault guarantees about OKX freshness once a router has dropped the unsigned ``expTime``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import grpc
import pipvault_client as pv
import pytest

from tests.support import signing_flow as sf
from tests.support.signing_flow import B, VenueKey, Wired

IA, FP = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path_factory.mktemp("units") / "home") as w:
        yield w


def _context(wired: Wired, key: VenueKey, **kwargs: Any) -> str:
    cred = wired.onboard(key, sf.coid("u").lower()[:20], **kwargs)
    return sf.begin(wired.vault, cred.name).name


def _order(key: VenueKey, side: str, *, qty: str = "", quote: str = "", **more: Any) -> Any:
    order = sf.place_for(key, kind="market", side=side, qty=qty, **more)
    order.quote_quantity = quote
    return order


SPOT = {B.BROKER_OKX: {"symbol": "BTC-USDT"}, B.BROKER_BYBIT: {"extras": {"category": "spot"}}}


@pytest.mark.parametrize("venue", ["okx", "bybit"])
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_spot_market_order_trades_what_was_asked_at_the_venue(
    wired: Wired, venue: str, side: str
) -> None:
    key = sf.okx() if venue == "okx" else sf.bybit_hmac()
    stub = wired.venues.okx if venue == "okx" else wired.venues.bybit
    rc = _context(wired, key)
    for size, expected in (({"qty": "0.01"}, (Decimal("0.01"), "base")),
                           ({"quote": "250"}, (Decimal("250"), "quote"))):  # fmt: skip
        signed = sf.sign(wired.vault, rc, _order(key, side, **size, **SPOT[key.broker]))
        reply = sf.send(signed.signed_request)
        assert reply.status_code == 200, reply.text
        body, reading = stub.placed[-1]
        assert body == json.loads(signed.signed_request.body)
        assert reading == expected


def test_both_sizes_or_a_quote_size_a_venue_cannot_take_are_invalid_arguments(
    wired: Wired,
) -> None:
    okx_key, usdm_key = sf.okx(), sf.binance_hmac(usdm=True)
    okx_rc, usdm_rc = _context(wired, okx_key), _context(wired, usdm_key)
    cases = [
        (okx_rc, _order(okx_key, "buy", qty="0.01", quote="250")),  # both
        (usdm_rc, _order(usdm_key, "buy", quote="250")),  # USD-M has no quoteOrderQty
        (okx_rc, sf.place_for(okx_key, qty="")),  # limit with neither size...
    ]
    cases[2][1].quote_quantity = "250"  # ...but a quote size: OKX limits are base-sized
    cancel = sf.place_for(okx_key)
    cancel.operation, cancel.venue_order_id, cancel.quantity = B.ORDER_OPERATION_CANCEL, "1", ""
    cancel.quote_quantity = "5"
    cases.append((okx_rc, cancel))
    placed_before = len(wired.venues.okx.placed)
    for rc, order in cases:
        for method, request in (("SignOrder", sf.sign_request(rc, order)),
                                ("ExecuteOrder", sf.execute_request(rc, order))):  # fmt: skip
            err, _rows = sf.refusal(wired.vault, method, request)
            assert (err.code, err.reason, err.metadata) == (
                IA, "INVALID_FIELD", {"field": "order.quote_quantity"},
            ), (method, order)  # fmt: skip
    assert len(wired.venues.okx.placed) == placed_before  # no refused order reached the venue


def test_the_notional_limit_bounds_a_quote_sized_order_and_quantity_limits_refuse_it(
    wired: Wired,
) -> None:
    key = sf.binance_hmac()
    rc = _context(wired, key, policy=sf.policy(max_notional="100"))
    order = _order(key, "buy", quote="100.01", symbol="BTCUSDT")
    err, rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, order))
    assert (err.code, err.reason, err.metadata) == (
        FP, "ORDER_POLICY_VIOLATION", {"rule": "max_notional"},
    )  # fmt: skip
    assert [r.key() for r in rows] == [("credential.use", "denied", "ORDER_POLICY_VIOLATION")]
    at_limit = sf.sign(wired.vault, rc, _order(key, "buy", quote="100", symbol="BTCUSDT"))
    assert "quoteOrderQty=100&" in at_limit.signed_request.url
    assert "quantity=" not in at_limit.signed_request.url
    # A base-sized market order has no price to compute its notional: refused under the limit.
    err, _rows = sf.refusal(
        wired.vault, "SignOrder", sf.sign_request(rc, _order(key, "buy", qty="0.0001"))
    )
    assert err.metadata == {"rule": "max_notional"}

    capped = sf.binance_hmac()
    capped_rc = _context(wired, capped, policy=sf.policy(max_quantity="1"))
    err, _rows = sf.refusal(
        wired.vault, "ExecuteOrder", sf.execute_request(capped_rc, _order(capped, "buy", quote="1"))
    )
    assert (err.code, err.reason, err.metadata) == (
        FP, "ORDER_POLICY_VIOLATION", {"rule": "max_quantity"},
    )  # fmt: skip


def test_alpaca_receives_a_quote_sized_order_as_notional(wired: Wired) -> None:
    key = sf.alpaca()
    rc = _context(wired, key)
    reply = sf.execute(wired.vault, rc, _order(key, "buy", quote="25.5"))
    assert reply.http_status == 200, reply.body
    order = json.loads(reply.body)
    assert (order["notional"], "qty" in order) == ("25.5", False)
    reply = sf.execute(wired.vault, rc, _order(key, "sell", qty="0.5"))
    assert (json.loads(reply.body)["qty"], reply.http_status) == ("0.5", 200)


def test_the_client_library_carries_quote_quantity_and_surfaces_the_refusal(wired: Wired) -> None:
    key = sf.binance_hmac()
    rc = _context(wired, key)
    order = _order(key, "sell", quote="40", symbol="BTCUSDT")
    with pv.VaultClient(wired.vault.data_target, token=wired.vault.tokens["router"]) as client:
        signed = client.sign_order(rc, order, "quote-sized sell").signed_request
        assert "quoteOrderQty=40&" in signed.url and "side=SELL" in signed.url
        order.quantity = "1"
        with pytest.raises(pv.InvalidArgumentError) as refused:
            client.sign_order(rc, order, "both sizes")
    assert (refused.value.reason, refused.value.metadata) == (
        "INVALID_FIELD", {"field": "order.quote_quantity"},
    )  # fmt: skip


def test_okx_orders_expire_by_their_signed_timestamp_even_without_exptime(wired: Wired) -> None:
    """``expTime`` is outside OKX's prehash: a router can drop it and the order still verifies.
    What binds freshness is the signed timestamp, which OKX refuses after 30 s."""
    key = sf.okx()
    rc = _context(wired, key)
    order = _order(key, "buy", qty="0.01", symbol="BTC-USDT")
    signed = sf.sign(wired.vault, rc, order).signed_request
    headers = sf.header_map(signed)
    assert int(headers["expTime"]) == sf.expire_ms(signed) <= sf.now_ms() + 30_000
    stripped = {name: value for name, value in headers.items() if name != "expTime"}
    accepted = sf.send(signed, headers=stripped)
    assert (accepted.status_code, accepted.json()["code"]) == (200, "0")
    stub, real_clock = wired.venues.okx, wired.venues.okx.clock
    stub.clock = lambda: sf.now_ms() + 31_000
    try:
        stale = sf.send(signed, headers=stripped)
    finally:
        stub.clock = real_clock
    assert (stale.status_code, stale.json()["code"]) == (401, "50102")
