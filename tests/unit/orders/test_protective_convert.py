"""Protective orders and position operations: API message -> ``OrderSpec``, field by field.

Every refusal names the exact field (``order.stop_loss.price``...), so a router sees which part
of its signal was wrong; nothing an operation does not take is silently ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pipsync.vault.v1 import trading_pb2 as T

from vault_server.brokers.base import Operation, ProtectiveLevel, Side, SizeUnit
from vault_server.core.errors import InvalidArgument
from vault_server.rpc.convert_signing import order_of


def level(**fields: str) -> T.ProtectiveLevel:
    return T.ProtectiveLevel(**fields)


def place(**fields: Any) -> T.Order:
    base: dict[str, Any] = {
        "operation": T.ORDER_OPERATION_PLACE, "symbol": "EUR_USD", "side": T.ORDER_SIDE_BUY,
        "type": T.ORDER_TYPE_LIMIT, "quantity": "1000", "price": "1.10", "client_order_id": "c1",
    }  # fmt: skip
    return T.Order(**(base | fields))


def refused(msg: T.Order) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as info:
        order_of(msg)
    return info.value.metadata["field"], str(info.value)


def test_place_carries_stop_loss_price_and_take_profit_distance() -> None:
    spec = order_of(place(stop_loss=level(price="1.05"), take_profit=level(distance="0.0150")))
    assert spec.stop_loss == ProtectiveLevel(price=Decimal("1.05"))
    assert spec.take_profit == ProtectiveLevel(distance=Decimal("0.0150"))
    assert spec.position_id is None and spec.size_unit is None


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (place(stop_loss=level(price="1e-3")), "order.stop_loss.price"),
        (place(stop_loss=level(price="-1.0")), "order.stop_loss.price"),
        (place(stop_loss=level(price="0")), "order.stop_loss.price"),
        (place(stop_loss=level(price="")), "order.stop_loss.price"),
        (place(take_profit=level(distance="NaN")), "order.take_profit.distance"),
        (place(take_profit=level(distance="1.2.3")), "order.take_profit.distance"),
        (place(stop_loss=level()), "order.stop_loss"),
        (place(take_profit=level()), "order.take_profit"),
    ],
)
def test_protective_levels_are_plain_positive_decimals_exactly_one(
    msg: T.Order, field: str
) -> None:
    assert refused(msg)[0] == field


def test_stop_loss_and_take_profit_must_bracket_a_limit_entry() -> None:
    assert refused(place(stop_loss=level(price="1.20")))[0] == "order.stop_loss.price"
    assert refused(place(take_profit=level(price="1.00")))[0] == "order.take_profit.price"
    sell = place(side=T.ORDER_SIDE_SELL, stop_loss=level(price="1.05"))
    assert refused(sell)[0] == "order.stop_loss.price"
    ok = order_of(place(side=T.ORDER_SIDE_SELL, stop_loss=level(price="1.15"),
                        take_profit=level(price="1.05")))  # fmt: skip
    assert ok.stop_loss is not None and ok.take_profit is not None
    # A market order has no entry price to check against: the venue judges it.
    market = place(type=T.ORDER_TYPE_MARKET, price="", stop_loss=level(price="9"))
    assert order_of(market).stop_loss == ProtectiveLevel(price=Decimal("9"))


def test_size_unit_maps_and_unknown_is_refused() -> None:
    assert order_of(place(size_unit=T.SIZE_UNIT_LOTS)).size_unit is SizeUnit.LOTS
    assert order_of(place(size_unit=T.SIZE_UNIT_BASE_UNITS)).size_unit is SizeUnit.BASE_UNITS
    assert order_of(place(size_unit=T.SIZE_UNIT_CONTRACTS)).size_unit is SizeUnit.CONTRACTS
    assert refused(place(size_unit=99))[0] == "order.size_unit"


def close(**fields: Any) -> T.Order:
    base = {"operation": T.ORDER_OPERATION_CLOSE_POSITION, "position_id": "6375",
            "client_order_id": "x1"}  # fmt: skip
    return T.Order(**(base | fields))


def amend(**fields: Any) -> T.Order:
    base = {"operation": T.ORDER_OPERATION_AMEND_POSITION, "position_id": "6375",
            "client_order_id": "a1"}  # fmt: skip
    return T.Order(**(base | fields))


def test_close_position_whole_or_partial() -> None:
    whole = order_of(close())
    assert (whole.operation, whole.position_id, whole.quantity) == (
        Operation.CLOSE_POSITION,
        "6375",
        None,
    )
    part = order_of(close(quantity="250", symbol="EUR_USD", size_unit=T.SIZE_UNIT_BASE_UNITS))
    assert (part.quantity, part.symbol) == (Decimal("250"), "EUR_USD")
    assert refused(close(position_id=""))[0] == "order.position_id"
    assert refused(close(quantity="1e3"))[0] == "order.quantity"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": T.ORDER_TYPE_MARKET}, "order.type"),
        ({"price": "1.1"}, "order.price"),
        ({"stop_price": "1.1"}, "order.stop_price"),
        ({"time_in_force": T.TIME_IN_FORCE_GTC}, "order.time_in_force"),
        ({"venue_order_id": "12"}, "order.venue_order_id"),
        ({"quote_quantity": "100"}, "order.quote_quantity"),
        ({"stop_loss": T.ProtectiveLevel(price="1.0")}, "order.stop_loss"),
        ({"take_profit": T.ProtectiveLevel(price="1.2")}, "order.take_profit"),
    ],
)
def test_close_position_refuses_fields_it_does_not_take(
    changes: dict[str, Any], field: str
) -> None:
    assert refused(close(**changes)) == (field, f"{field}: does not apply to close_position")


def test_position_operations_take_the_positions_side() -> None:
    """IG, Match-Trader and DXtrade deal a close (and DXtrade a protective order) against the
    position: its side is the caller's to state, BUY for a long."""
    assert order_of(close(side=T.ORDER_SIDE_BUY)).side is Side.BUY
    made = order_of(amend(stop_loss=level(price="1.08"), side=T.ORDER_SIDE_SELL,
                          venue_order_id="sl-1"))  # fmt: skip
    assert made.side is Side.SELL and made.venue_order_id == "sl-1"


def test_amend_position_needs_a_position_and_a_level() -> None:
    spec = order_of(amend(stop_loss=level(price="1.08"), symbol="EUR_USD"))
    assert spec.operation is Operation.AMEND_POSITION
    assert spec.stop_loss == ProtectiveLevel(price=Decimal("1.08")) and spec.take_profit is None
    assert refused(amend())[0] == "order.stop_loss"
    assert refused(amend(position_id="", stop_loss=level(price="1")))[0] == "order.position_id"
    assert refused(amend(stop_loss=level(price="1"), quantity="5"))[0] == "order.quantity"
    assert refused(amend(stop_loss=level(price="1"), size_unit=T.SIZE_UNIT_LOTS))[0] == (
        "order.size_unit"
    )


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "id/1", "id?x", "é1"])
def test_position_id_charset_and_length(bad: str) -> None:
    assert refused(close(position_id=bad))[0] == "order.position_id"


def test_query_positions_takes_no_order_fields() -> None:
    spec = order_of(T.Order(operation=T.ORDER_OPERATION_QUERY_POSITIONS))
    assert spec.operation is Operation.QUERY_POSITIONS
    for changes in ({"symbol": "EUR_USD"}, {"position_id": "1"}, {"quantity": "1"},
                    {"stop_loss": T.ProtectiveLevel(price="1")}):  # fmt: skip
        msg = T.Order(operation=T.ORDER_OPERATION_QUERY_POSITIONS, **changes)
        assert refused(msg)[0] == f"order.{next(iter(changes))}"


def test_position_fields_are_refused_on_other_operations() -> None:
    assert refused(place(position_id="6375"))[0] == "order.position_id"
    cancel = T.Order(operation=T.ORDER_OPERATION_CANCEL, venue_order_id="1",
                     stop_loss=T.ProtectiveLevel(price="1"))  # fmt: skip
    assert refused(cancel)[0] == "order.stop_loss"
    query = T.Order(operation=T.ORDER_OPERATION_QUERY_ACCOUNT, position_id="1")
    assert refused(query)[0] == "order.position_id"
    # A replace (AMEND) is a whole new order: it may carry protective levels.
    replace = place(operation=T.ORDER_OPERATION_AMEND, stop_loss=level(price="1.0"))
    assert order_of(replace).stop_loss == ProtectiveLevel(price=Decimal("1.0"))
