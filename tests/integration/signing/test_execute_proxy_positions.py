"""ExecuteOrder with protective orders and position operations, through a real vault, on OANDA.

A signal places a market order with a stop loss and a take profit, moves the stop loss, closes
part of the trade and then the rest; the order policy (symbol allow-list, size cap, rate limit,
client-order-id replay) bounds every one of these operations; the token never leaves the vault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support import signing_flow as sf
from tests.support.canary import find
from tests.support.signing_flow import B, Wired
from tests.venue_stubs.oanda_stub import OandaStub

T = sf.trading_pb2
FP = grpc.StatusCode.FAILED_PRECONDITION
IA = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home") as w:
        yield w


def _position_op(operation: int, coid: str, **fields: object) -> T.Order:
    return T.Order(operation=operation, client_order_id=coid, **fields)  # type: ignore[arg-type]


def test_place_with_sl_tp_amend_partial_close_close(wired: Wired) -> None:
    key = sf.oanda()
    limits = sf.policy(symbols=["EUR_USD"], max_quantity="1000", max_orders=50)
    cred = wired.onboard(key, "oa-fx", policy=limits)
    rc = sf.begin(wired.vault, cred.name).name
    stub: OandaStub = wired.venues.oanda

    placed = sf.place_for(key, "sig1", kind="market", qty="1000")
    placed.stop_loss.price = "1.05"
    placed.take_profit.price = "1.2"
    placed.size_unit = T.SIZE_UNIT_BASE_UNITS
    done = sf.execute(wired.vault, rc, placed)
    assert done.http_status == 201, done.body
    trade_id = json.loads(done.body)["orderFillTransaction"]["tradeOpened"]["tradeID"]
    assert stub.trades[trade_id]["stopLoss"] == {"price": "1.05"}
    assert stub.trades[trade_id]["takeProfit"] == {"price": "1.2"}

    amend = _position_op(B.ORDER_OPERATION_AMEND_POSITION, "am1", position_id=trade_id,
                         symbol="EUR_USD", stop_loss=T.ProtectiveLevel(price="1.08"))  # fmt: skip
    assert sf.execute(wired.vault, rc, amend).http_status == 200
    assert stub.trades[trade_id]["stopLoss"] == {"price": "1.08"}

    listed = sf.execute(wired.vault, rc, T.Order(operation=B.ORDER_OPERATION_QUERY_POSITIONS))
    [trade] = json.loads(listed.body)["trades"]
    assert trade["id"] == trade_id and trade["stopLossOrder"]["price"] == "1.08"

    partial = _position_op(B.ORDER_OPERATION_CLOSE_POSITION, "cl1", position_id=trade_id,
                           symbol="EUR_USD", quantity="400")  # fmt: skip
    assert sf.execute(wired.vault, rc, partial).http_status == 200
    assert stub.trades[trade_id]["currentUnits"] == "600"

    # A replayed close is refused by the vault before it reaches OANDA.
    err, rows = sf.refusal(wired.vault, "ExecuteOrder", sf.execute_request(rc, partial))
    assert (err.code, err.reason) == (FP, "DUPLICATE_CLIENT_ORDER_ID")
    assert stub.trades[trade_id]["currentUnits"] == "600"

    whole = _position_op(B.ORDER_OPERATION_CLOSE_POSITION, "cl2", position_id=trade_id,
                         symbol="EUR_USD")  # fmt: skip
    closed = sf.execute(wired.vault, rc, whole)
    assert closed.http_status == 200, closed.body
    assert stub.trades[trade_id]["state"] == "CLOSED"
    paths = [(r.method, r.path) for r in stub.requests]
    a = f"/v3/accounts/{sf.OANDA_ACCOUNT}"
    assert paths == [("POST", f"{a}/orders"), ("PUT", f"{a}/trades/{trade_id}/orders"),
                     ("GET", f"{a}/openTrades"), ("PUT", f"{a}/trades/{trade_id}/close"),
                     ("PUT", f"{a}/trades/{trade_id}/close")]  # fmt: skip
    rows = sf.audit_rows(wired.vault)
    uses = [
        r.details.get("operation") for r in rows if r.key()[:2] == ("credential.use", "success")
    ]
    assert uses[-5:] == ["place_order", "amend_position", "query_positions", "close_position",
                         "close_position"]  # fmt: skip
    blob = b"".join(x.SerializeToString() for x in (done, listed, closed))
    blob += "\n".join(r.raw for r in rows).encode()
    assert find(key.secret_text, blob) == []


def test_the_policy_bounds_position_operations(wired: Wired) -> None:
    key = sf.oanda()
    limits = sf.policy(symbols=["EUR_USD"], max_quantity="1000")
    cred = wired.onboard(key, "oa-fx", policy=limits)
    rc = sf.begin(wired.vault, cred.name).name
    placed = sf.place_for(key, "sig1", kind="market", qty="1000")
    placed.stop_loss.price = "1.05"
    done = sf.execute(wired.vault, rc, placed)
    trade_id = json.loads(done.body)["orderFillTransaction"]["tradeOpened"]["tradeID"]
    refused = [
        # No symbol under an allow-list; a symbol outside it; a close larger than the size cap.
        (_position_op(B.ORDER_OPERATION_CLOSE_POSITION, "p1", position_id=trade_id),
         "allowed_symbols"),
        (_position_op(B.ORDER_OPERATION_AMEND_POSITION, "p2", position_id=trade_id,
                      symbol="GBP_USD", stop_loss=T.ProtectiveLevel(price="1.0")),
         "allowed_symbols"),
        (_position_op(B.ORDER_OPERATION_CLOSE_POSITION, "p3", position_id=trade_id,
                      symbol="EUR_USD", quantity="1000.5"), "max_quantity"),
    ]  # fmt: skip
    for order, rule in refused:
        err, rows = sf.refusal(wired.vault, "ExecuteOrder", sf.execute_request(rc, order))
        assert (err.code, err.reason, err.metadata["rule"]) == (FP, "ORDER_POLICY_VIOLATION", rule)
        assert [r.key() for r in rows] == [("credential.use", "denied", "ORDER_POLICY_VIOLATION")]
    # Field errors name the field.
    no_coid = T.Order(operation=B.ORDER_OPERATION_CLOSE_POSITION, position_id=trade_id,
                      symbol="EUR_USD")  # fmt: skip
    err, _ = sf.refusal(wired.vault, "ExecuteOrder", sf.execute_request(rc, no_coid))
    assert (err.code, err.metadata["field"]) == (IA, "order.client_order_id")
    both = _position_op(B.ORDER_OPERATION_CLOSE_POSITION, "p4", position_id=trade_id,
                        symbol="EUR_USD", side=B.ORDER_SIDE_SELL)  # fmt: skip
    err, _ = sf.refusal(wired.vault, "ExecuteOrder", sf.execute_request(rc, both))
    assert (err.code, err.metadata["field"]) == (IA, "order.side")
    lots = sf.place_for(key, "sig2", kind="market", qty="1")
    lots.size_unit = T.SIZE_UNIT_LOTS
    err, _ = sf.refusal(wired.vault, "ExecuteOrder", sf.execute_request(rc, lots))
    assert (err.code, err.metadata["field"]) == (IA, "order.size_unit")
    assert wired.venues.oanda.trades[trade_id]["currentUnits"] == "1000"
    assert len(wired.venues.oanda.requests) == 1


def test_a_venue_without_protective_orders_refuses_them(wired: Wired) -> None:
    key = sf.binance_hmac()
    cred = wired.onboard(key, "bn")
    rc = sf.begin(wired.vault, cred.name).name
    order = sf.place_for(key)
    order.stop_loss.price = "0.05"
    err, _ = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, order))
    assert (err.code, err.metadata["field"]) == (IA, "order.stop_loss")
    close = _position_op(B.ORDER_OPERATION_CLOSE_POSITION, "bc1", position_id="1")
    err, _ = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, close))
    assert err.reason == "OPERATION_NOT_SUPPORTED"
    assert wired.venues.binance.requests == []


def test_closes_and_amends_count_against_the_rate_limit(wired: Wired) -> None:
    key = sf.oanda()
    cred = wired.onboard(key, "oa-fx", policy=sf.policy(max_orders=2, rate_interval_s=3600))
    rc = sf.begin(wired.vault, cred.name).name
    done = sf.execute(wired.vault, rc, sf.place_for(key, "r1", kind="market", qty="100"))
    trade_id = json.loads(done.body)["orderFillTransaction"]["tradeOpened"]["tradeID"]
    partial = _position_op(B.ORDER_OPERATION_CLOSE_POSITION, "r2", position_id=trade_id,
                           quantity="10")  # fmt: skip
    assert sf.execute(wired.vault, rc, partial).http_status == 200
    amend = _position_op(B.ORDER_OPERATION_AMEND_POSITION, "r3", position_id=trade_id,
                         stop_loss=T.ProtectiveLevel(distance="0.01"))  # fmt: skip
    err, _ = sf.refusal(wired.vault, "ExecuteOrder", sf.execute_request(rc, amend))
    assert (err.reason, err.metadata["rule"]) == ("ORDER_POLICY_VIOLATION",
                                                  "max_orders_per_interval")  # fmt: skip
    # Queries are not rate-limited.
    listed = sf.execute(wired.vault, rc, T.Order(operation=B.ORDER_OPERATION_QUERY_POSITIONS))
    assert listed.http_status == 200 and wired.venues.oanda.trades[trade_id]["stopLoss"] is None
