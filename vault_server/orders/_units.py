"""Order policy for quote-sized orders: the size limits in the units the venue will execute.

A base-sized order (``quantity``) is bounded by ``order_checks.check_policy``: ``max_quantity``
against the quantity, ``max_notional`` against quantity x (limit or stop) price, and refused
under ``max_notional`` when it has no price (a market order: its real notional is unknown).

A quote-sized order (``quote_quantity``, a market order on every venue that offers one) states
its notional itself, in quote units, so:

* ``max_notional`` is checked against ``quote_quantity`` directly;
* ``max_quantity`` cannot be checked: the base amount is ``quote_quantity / fill price`` and no
  price in the order bounds the fill (a market order has none), so a quote-sized order is
  refused under a ``max_quantity`` limit rather than let it bypass that limit.
"""

from __future__ import annotations

from vault_server.brokers.base import OrderSpec
from vault_server.core.errors import OrderPolicyViolation
from vault_server.orders._policy import OrderPolicy, parse_decimal


def check_quote_sized(policy: OrderPolicy, order: OrderSpec) -> None:
    """Raise ``ORDER_POLICY_VIOLATION`` if a quote-sized order breaks a size limit.

    A no-op for base-sized orders (``quote_quantity`` is None).
    """
    quote = order.quote_quantity
    if quote is None:
        return
    max_notional = parse_decimal("policy.max_notional", policy.max_notional)
    if max_notional is not None and quote > max_notional:
        raise OrderPolicyViolation(
            "the quote quantity exceeds the credential's maximum notional",
            metadata={"rule": "max_notional"},
        )
    if parse_decimal("policy.max_quantity", policy.max_quantity) is not None:
        raise OrderPolicyViolation(
            "a quote-sized order has no base quantity to check against the credential's maximum",
            metadata={"rule": "max_quantity"},
        )
