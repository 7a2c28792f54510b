"""The order policy's size limits in the units the venue executes.

``max_notional`` is in quote units: a quote-sized order's notional is what the venue reads from
the signed request (``test_size_units`` readers), a base-sized one's is quantity x price, and a
base-sized market order has no price the vault could trust, so a notional limit refuses it.
``max_quantity`` is in base units and cannot be bypassed by sizing the order in quote units.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.unit.brokers.test_size_units import CASES, Case
from vault_server.brokers.base import Operation, OrderSpec, OrderType, Side
from vault_server.core.errors import OrderPolicyViolation
from vault_server.orders._checks import check_policy
from vault_server.orders._policy import OrderPolicy


def order(**fields: Any) -> OrderSpec:
    base: dict[str, Any] = {
        "operation": Operation.PLACE_ORDER, "symbol": "BTC-USDT", "side": Side.BUY,
        "order_type": OrderType.MARKET, "client_order_id": "p1",
    }  # fmt: skip
    return OrderSpec(**(base | fields))


def refused_rule(policy: OrderPolicy, spec: OrderSpec) -> str | None:
    try:
        check_policy(policy, spec)
    except OrderPolicyViolation as exc:
        return exc.metadata["rule"]
    return None


QUOTE_SIZED = [(case, kind, side) for case in CASES for kind, side in sorted(case.quote_sized)]


@pytest.mark.parametrize(("case", "kind", "side"), QUOTE_SIZED, ids=repr)
def test_a_quote_sized_order_whose_real_notional_exceeds_the_limit_is_refused(
    case: Case, kind: str, side: str
) -> None:
    """The venue's documented reading of the signed request is the notional the policy bounds."""
    amount, unit = case.reads(case.build(kind, side, quote_quantity=Decimal("250.5")))
    assert unit == "quote"
    spec = order(order_type=OrderType(kind), side=Side(side), quote_quantity=Decimal("250.5"))
    assert refused_rule(OrderPolicy(max_notional=str(amount - Decimal("0.1"))), spec) == (
        "max_notional"
    )
    assert refused_rule(OrderPolicy(max_notional=str(amount)), spec) is None


def test_quote_sizing_cannot_bypass_max_quantity() -> None:
    """quote / fill price is unbounded for a market order: refused under a quantity limit."""
    spec = order(quote_quantity=Decimal("1"))
    assert refused_rule(OrderPolicy(max_quantity="1000000"), spec) == "max_quantity"
    assert refused_rule(OrderPolicy(max_quantity="1", max_notional="5"), spec) == "max_quantity"
    assert refused_rule(OrderPolicy(max_notional="5"), spec) is None
    assert refused_rule(OrderPolicy(), spec) is None


def test_a_base_sized_market_order_has_no_notional_to_check_and_is_refused() -> None:
    """The API carries no reference price for market orders: a notional limit refuses them."""
    spec = order(quantity=Decimal("0.0001"))
    assert refused_rule(OrderPolicy(max_notional="1000000"), spec) == "max_notional"
    assert refused_rule(OrderPolicy(max_quantity="1"), spec) is None


@pytest.mark.parametrize(
    ("fields", "limit", "rule"),
    [
        ({"order_type": OrderType.LIMIT, "quantity": Decimal("0.01"), "price": Decimal("30000")},
         "299.99", "max_notional"),
        ({"order_type": OrderType.LIMIT, "quantity": Decimal("0.01"), "price": Decimal("30000")},
         "300", None),
        ({"order_type": OrderType.STOP_LOSS, "quantity": Decimal("2"),
          "stop_price": Decimal("10")}, "19", "max_notional"),
    ],
    ids=["limit-over", "limit-at", "stop-over"],
)  # fmt: skip
def test_a_base_sized_priced_order_is_bounded_by_quantity_times_price(
    fields: dict[str, Any], limit: str, rule: str | None
) -> None:
    assert refused_rule(OrderPolicy(max_notional=limit), order(**fields)) == rule


def test_max_quantity_bounds_base_units() -> None:
    over = order(quantity=Decimal("0.0100001"))
    assert refused_rule(OrderPolicy(max_quantity="0.01"), over) == "max_quantity"
    assert refused_rule(OrderPolicy(max_quantity="0.01"), order(quantity=Decimal("0.01"))) is None
