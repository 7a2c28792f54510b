"""The order policy over protective orders and position operations, and the central refusal of
both at venues that cannot take them (``VenueSpec.protective_orders``)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    ProtectiveLevel,
    Side,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.brokers.registry import adapter_for
from vault_server.core.errors import InvalidArgument, OperationNotSupported, OrderPolicyViolation
from vault_server.core.secret import Secret
from vault_server.orders import check_client_order_id, check_policy, is_claimed
from vault_server.orders._policy import OrderPolicy

STRICT = OrderPolicy(allowed_symbols=("EUR_USD",), allowed_sides=("buy",),
                     allowed_order_types=("limit",), max_quantity="1000",
                     max_notional="1200")  # fmt: skip
SL = ProtectiveLevel(price=Decimal("1.05"))


def spec(operation: Operation = Operation.PLACE_ORDER, **fields: Any) -> OrderSpec:
    return OrderSpec(operation, client_order_id="c1", **fields)


def place(**fields: Any) -> OrderSpec:
    base: dict[str, Any] = {"symbol": "EUR_USD", "side": Side.BUY, "order_type": OrderType.LIMIT,
                            "quantity": Decimal("1000"), "price": Decimal("1.10")}  # fmt: skip
    return spec(**(base | fields))


def rule(policy: OrderPolicy, order: OrderSpec) -> str | None:
    try:
        check_policy(policy, order)
    except OrderPolicyViolation as exc:
        return exc.metadata["rule"]
    return None


def test_protective_prices_are_not_entry_prices_for_the_notional_limit() -> None:
    # 1000 x 1.10 = 1100 <= 1200: a take profit far above the entry does not count.
    far = ProtectiveLevel(price=Decimal("5"))
    assert rule(STRICT, place(stop_loss=SL, take_profit=far)) is None
    # A market order with a stop loss still has no entry price the vault could trust.
    market = place(order_type=OrderType.MARKET, price=None, stop_loss=SL)
    assert rule(OrderPolicy(max_notional="1200"), market) == "max_notional"
    assert rule(STRICT, place(price=Decimal("1.3"), stop_loss=SL)) == "max_notional"


def test_close_position_is_bound_by_symbols_and_quantity_not_sides_or_types() -> None:
    close = spec(Operation.CLOSE_POSITION, position_id="7", symbol="EUR_USD")
    assert rule(STRICT, close) is None  # whole close: no quantity, no side, no type
    assert rule(STRICT, spec(Operation.CLOSE_POSITION, position_id="7", symbol="EUR_USD",
                             quantity=Decimal("1000"))) is None  # fmt: skip
    partial = spec(Operation.CLOSE_POSITION, position_id="7", symbol="EUR_USD",
                   quantity=Decimal("1000.01"))  # fmt: skip
    assert rule(STRICT, partial) == "max_quantity"
    elsewhere = spec(Operation.CLOSE_POSITION, position_id="7", symbol="GBP_USD")
    assert rule(STRICT, elsewhere) == "allowed_symbols"


@pytest.mark.parametrize("operation", [Operation.CLOSE_POSITION, Operation.AMEND_POSITION])
def test_position_operation_names_its_symbol_under_an_allow_list(operation: Operation) -> None:
    anonymous = spec(operation, position_id="7", stop_loss=SL)
    assert rule(STRICT, anonymous) == "allowed_symbols"
    assert rule(OrderPolicy(), anonymous) is None  # no allow-list: nothing to check it against
    assert rule(STRICT, spec(operation, position_id="7", symbol="EUR_USD", stop_loss=SL)) is None


def test_query_positions_is_not_bounded_by_size_rules() -> None:
    assert rule(STRICT, OrderSpec(Operation.QUERY_POSITIONS)) is None


def test_position_changes_need_a_client_order_id_and_are_claimed() -> None:
    for operation in (Operation.CLOSE_POSITION, Operation.AMEND_POSITION):
        with pytest.raises(InvalidArgument) as info:
            check_client_order_id(OrderSpec(operation, position_id="7"))
        assert info.value.field == "order.client_order_id"
        assert is_claimed(spec(operation, position_id="7"))
    assert is_claimed(place())
    assert not is_claimed(spec(Operation.QUERY_POSITIONS))
    assert not is_claimed(spec(Operation.AMEND_ORDER))  # unchanged: replaces are not claimed
    check_client_order_id(OrderSpec(Operation.QUERY_POSITIONS))


# --- the central refusal ------------------------------------------------------------------------
CRED = VenueCredential(Venue.BINANCE_SPOT, Environment.TESTNET, KeyAlgorithm.HMAC_SHA256,
                       "k" * 64, secret=Secret("s" * 64))  # fmt: skip
CTX = SigningContext(now_ms=1_700_000_000_000)
BINANCE = adapter_for(Venue.BINANCE_SPOT)


@pytest.mark.parametrize(
    "operation",
    [Operation.CLOSE_POSITION, Operation.AMEND_POSITION, Operation.QUERY_POSITIONS],
)
def test_venue_without_protective_orders_refuses_position_operations(operation: Operation) -> None:
    with pytest.raises(OperationNotSupported) as info:
        BINANCE.build(OrderSpec(operation, position_id="7", stop_loss=SL), CRED, CTX)
    assert info.value.metadata["operation"] == operation.value


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"stop_loss": SL}, "order.stop_loss"),
        ({"take_profit": ProtectiveLevel(distance=Decimal("10"))}, "order.take_profit"),
        ({"position_id": "7"}, "order.position_id"),
    ],
)
def test_venue_without_protective_orders_never_drops_a_stop_loss(
    fields: dict[str, Any], field: str
) -> None:
    order = OrderSpec(Operation.PLACE_ORDER, symbol="LTCBTC", side=Side.BUY,
                      order_type=OrderType.LIMIT, quantity=Decimal("1"), price=Decimal("0.1"),
                      client_order_id="c1", **fields)  # fmt: skip
    BINANCE.build(replace(order, **dict.fromkeys(fields)), CRED, CTX)  # without it: builds
    with pytest.raises(InvalidArgument) as info:
        BINANCE.build(order, CRED, CTX)
    assert info.value.field == field


def test_only_declared_venues_take_protective_orders() -> None:
    taking = {v for v in Venue if getattr(_adapter(v), "protective_orders", False)}
    assert Venue.OANDA in taking
    assert not taking & {Venue.BINANCE_SPOT, Venue.BINANCE_USDM, Venue.KRAKEN_SPOT, Venue.BYBIT,
                         Venue.OKX, Venue.COINBASE_ADVANCED, Venue.ALPACA}  # fmt: skip


def _adapter(venue: Venue) -> Any:
    try:
        return adapter_for(venue)
    except Exception:  # planned venues are refused by the registry
        return None
