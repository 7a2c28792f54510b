"""Every order operation of every venue, through the vault to the venue stub.

Detached venues: SignOrder, then the caller sends the request as returned; proxy-only venues:
ExecuteOrder. Place (limit and market), cancel, amend, query one order, open orders and account
all reach an allow-listed endpoint, carry a valid signature and are accepted by the stub; each use
is one ``credential.use`` event naming the method and path it signed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import signing_flow as sf
from tests.support.signing_flow import B, VenueKey, Wired

Order = sf.trading_pb2.Order


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home") as w:
        yield w


def op(operation: int, **fields: Any) -> Order:
    return Order(operation=operation, **fields)


def _binance(usdm: bool) -> list[tuple[str, Order]]:
    symbol = "BTCUSDT" if usdm else "LTCBTC"
    amend = (
        op(B.ORDER_OPERATION_AMEND, symbol=symbol, venue_order_id="1001", side=B.ORDER_SIDE_BUY,
           quantity="2", price="9000")
        if usdm else op(B.ORDER_OPERATION_AMEND, symbol=symbol, venue_order_id="1001", quantity="0.5")
    )  # fmt: skip
    return [
        ("market", sf.place(symbol, kind="market", qty="1")),
        ("cancel", op(B.ORDER_OPERATION_CANCEL, symbol=symbol, client_order_id="gone1")),
        ("amend", amend),
        ("query", op(B.ORDER_OPERATION_QUERY_ORDER, symbol=symbol, venue_order_id="1001")),
        ("open", op(B.ORDER_OPERATION_QUERY_OPEN_ORDERS, symbol=symbol)),
        ("account", op(B.ORDER_OPERATION_QUERY_ACCOUNT)),
    ]


KRAKEN = [
    ("market", sf.place("XBTUSD", kind="market", qty="0.5")),
    ("cancel", op(B.ORDER_OPERATION_CANCEL, venue_order_id="OQCLML-BW3P3-BUCMWZ")),
    ("amend", op(B.ORDER_OPERATION_AMEND, venue_order_id="OQCLML-BW3P3-BUCMWZ", quantity="2")),
    ("query", op(B.ORDER_OPERATION_QUERY_ORDER, venue_order_id="OQCLML-BW3P3-BUCMWZ")),
    ("open", op(B.ORDER_OPERATION_QUERY_OPEN_ORDERS)),
    ("account", op(B.ORDER_OPERATION_QUERY_ACCOUNT)),
]
LINEAR = {"category": "linear"}
BYBIT = [
    ("market", sf.place("BTCUSDT", kind="market", qty="0.01", extras=LINEAR)),
    ("cancel", op(B.ORDER_OPERATION_CANCEL, symbol="BTCUSDT", venue_order_id="o-1", extras=LINEAR)),
    ("amend", op(B.ORDER_OPERATION_AMEND, symbol="BTCUSDT", venue_order_id="o-1", price="31000",
                 extras=LINEAR)),
    ("query", op(B.ORDER_OPERATION_QUERY_ORDER, symbol="BTCUSDT", venue_order_id="o-1",
                 extras=LINEAR)),
    ("open", op(B.ORDER_OPERATION_QUERY_OPEN_ORDERS, extras=LINEAR)),
    ("account", op(B.ORDER_OPERATION_QUERY_ACCOUNT)),
]  # fmt: skip
OKX = [
    ("market", sf.place("BTC-USDT", kind="market", qty="0.01")),
    (
        "cancel",
        op(B.ORDER_OPERATION_CANCEL, symbol="BTC-USDT", venue_order_id="312269865356374016"),
    ),
    ("amend", op(B.ORDER_OPERATION_AMEND, symbol="BTC-USDT", client_order_id="abc1", quantity="2")),
    ("query", op(B.ORDER_OPERATION_QUERY_ORDER, symbol="BTC-USDT", client_order_id="abc1")),
    ("open", op(B.ORDER_OPERATION_QUERY_OPEN_ORDERS, symbol="BTC-USDT")),
    ("account", op(B.ORDER_OPERATION_QUERY_ACCOUNT, extras={"ccy": "BTC"})),
]
COINBASE = [
    ("market", sf.place("BTC-USD", kind="market", qty="0.01")),
    ("cancel", op(B.ORDER_OPERATION_CANCEL, venue_order_id="0000-1111")),
    ("amend", op(B.ORDER_OPERATION_AMEND, venue_order_id="0000-1111", price="29000")),
    ("query", op(B.ORDER_OPERATION_QUERY_ORDER, venue_order_id="0000-1111")),
    ("open", op(B.ORDER_OPERATION_QUERY_OPEN_ORDERS, symbol="BTC-USD")),
    ("account", op(B.ORDER_OPERATION_QUERY_ACCOUNT)),
]


def _accepted(key: VenueKey, status: int, body: bytes) -> bool:
    data = json.loads(body) if body else None
    if key.broker == B.BROKER_KRAKEN_SPOT:
        return status == 200 and data["error"] == []
    if key.broker == B.BROKER_BYBIT:
        return status == 200 and data["retCode"] == 0
    if key.broker == B.BROKER_OKX:
        return status == 200 and data["code"] == "0"
    if key.broker == B.BROKER_COINBASE_ADVANCED and isinstance(data, dict):
        return status == 200 and data.get("success", True) is True
    return status in (200, 201, 204)


DETACHED: dict[str, tuple[Callable[[], VenueKey], list[tuple[str, Order]]]] = {
    "binance_spot": (sf.binance_hmac, _binance(usdm=False)),
    "binance_usdm": (lambda: sf.binance_hmac(usdm=True), _binance(usdm=True)),
    "kraken": (sf.kraken, KRAKEN),
    "bybit": (sf.bybit_hmac, BYBIT),
    "okx": (sf.okx, OKX),
    "coinbase": (sf.coinbase, COINBASE),
}


@pytest.mark.parametrize("venue", list(DETACHED))
def test_every_operation_is_signed_and_accepted(wired: Wired, venue: str) -> None:
    factory, operations = DETACHED[venue]
    key = factory()
    cred = wired.onboard(key, "op")
    rc = sf.begin(wired.vault, cred.name).name
    for label, order in [("limit", sf.place_for(key)), *operations]:
        mark = sf.last_audit_id(wired.vault)
        signed = sf.sign(wired.vault, rc, order).signed_request
        response = sf.send(signed)
        assert _accepted(key, response.status_code, response.content), (label, response.text)
        [use] = sf.audit_rows(wired.vault, after=mark)
        assert use.key() == ("credential.use", "success", "")
        assert use.details["method"] == signed.method
        assert signed.url.split("?", 1)[0].endswith(use.details["path"]), (label, use.details)
    stub = wired.venues.stub_for(key)
    assert len(stub.requests) == len(operations) + 1


def test_every_oanda_operation_through_the_proxy(wired: Wired) -> None:
    key = sf.oanda()
    rc = sf.begin(wired.vault, wired.onboard(key, "oa").name).name
    placed = sf.execute(wired.vault, rc, sf.place_for(key, "oa1"))
    assert placed.http_status == 201
    order_id = json.loads(placed.body)["orderCreateTransaction"]["id"]
    market = sf.execute(wired.vault, rc, sf.place_for(key, kind="market", tif=0))
    assert market.http_status == 201
    for order, status in (
        (op(B.ORDER_OPERATION_QUERY_ORDER, venue_order_id=order_id), 200),
        (op(B.ORDER_OPERATION_QUERY_OPEN_ORDERS), 200),
        (op(B.ORDER_OPERATION_QUERY_ACCOUNT), 200),
        (op(B.ORDER_OPERATION_AMEND, client_order_id="oa1", symbol="EUR_USD", side=B.ORDER_SIDE_SELL,
            type=B.ORDER_TYPE_LIMIT, quantity="50", price="1.2"), 201),
        (op(B.ORDER_OPERATION_CANCEL, venue_order_id=order_id), 200),
    ):  # fmt: skip
        done = sf.execute(wired.vault, rc, order)
        assert done.http_status == status, (order, done.body)
    assert [r.method for r in wired.venues.oanda.requests] == ["POST", "POST", "GET", "GET", "GET",
                                                               "PUT", "PUT"]  # fmt: skip


def test_every_alpaca_operation_through_the_proxy(wired: Wired) -> None:
    key = sf.alpaca()
    rc = sf.begin(wired.vault, wired.onboard(key, "al").name).name
    placed = sf.execute(wired.vault, rc, sf.place_for(key, "al1"))
    order_id = json.loads(placed.body)["id"]
    assert sf.execute(wired.vault, rc, sf.place_for(key, kind="market", tif=0)).http_status == 200
    replaced = sf.execute(
        wired.vault, rc, op(B.ORDER_OPERATION_AMEND, venue_order_id=order_id, quantity="2")
    )
    assert replaced.http_status == 200 and json.loads(replaced.body)["replaces"] == order_id
    new_id = json.loads(replaced.body)["id"]
    for order, status in (
        (op(B.ORDER_OPERATION_QUERY_ORDER, venue_order_id=new_id), 200),
        (op(B.ORDER_OPERATION_QUERY_OPEN_ORDERS, symbol="AAPL"), 200),
        (op(B.ORDER_OPERATION_QUERY_ACCOUNT), 200),
        (op(B.ORDER_OPERATION_CANCEL, venue_order_id=new_id), 204),
    ):
        done = sf.execute(wired.vault, rc, order)
        assert done.http_status == status, (order, done.body)
    assert wired.venues.alpaca.orders[new_id]["status"] == "canceled"
