"""Order policy: validated on update, stored as JSON, checked before any signature exists."""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vault_server.core.errors import InvalidArgument

MAX_SYMBOLS = 500
MAX_FRESHNESS_S = 60.0
SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop_loss", "stop_limit", "take_profit", "take_profit_limit")


def parse_decimal(field_name: str, value: str) -> Decimal | None:
    """Plain decimal strings only: no exponent, no NaN/inf, positive."""
    if not value:
        return None
    if len(value) > 40 or any(c not in "0123456789." for c in value) or value.count(".") > 1:
        raise InvalidArgument(field_name, "must be a plain positive decimal string")
    try:
        parsed = Decimal(value)
    except decimal.InvalidOperation:
        raise InvalidArgument(field_name, "must be a plain positive decimal string") from None
    if parsed <= 0:
        raise InvalidArgument(field_name, "must be positive")
    return parsed


@dataclass(frozen=True)
class OrderPolicy:
    allowed_symbols: tuple[str, ...] = ()
    allowed_sides: tuple[str, ...] = ()
    allowed_order_types: tuple[str, ...] = ()
    max_quantity: str = ""
    max_notional: str = ""
    max_orders_per_interval: int = 0
    rate_interval_s: float = 60.0
    max_freshness_s: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed_symbols": list(self.allowed_symbols),
            "allowed_sides": list(self.allowed_sides),
            "allowed_order_types": list(self.allowed_order_types),
            "max_quantity": self.max_quantity,
            "max_notional": self.max_notional,
            "max_orders_per_interval": self.max_orders_per_interval,
            "rate_interval_s": self.rate_interval_s,
            "max_freshness_s": self.max_freshness_s,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> OrderPolicy:
        doc = doc or {}
        return cls(
            allowed_symbols=tuple(doc.get("allowed_symbols", ())),
            allowed_sides=tuple(doc.get("allowed_sides", ())),
            allowed_order_types=tuple(doc.get("allowed_order_types", ())),
            max_quantity=doc.get("max_quantity", ""),
            max_notional=doc.get("max_notional", ""),
            max_orders_per_interval=int(doc.get("max_orders_per_interval", 0)),
            rate_interval_s=float(doc.get("rate_interval_s", 60.0)),
            max_freshness_s=float(doc.get("max_freshness_s", 5.0)),
        )


def validate_policy(policy: OrderPolicy) -> OrderPolicy:
    if len(policy.allowed_symbols) > MAX_SYMBOLS:
        raise InvalidArgument("policy.allowed_symbols", f"at most {MAX_SYMBOLS} symbols")
    for symbol in policy.allowed_symbols:
        if not symbol or len(symbol) > 64 or not all(c.isalnum() or c in "-_/.:" for c in symbol):
            raise InvalidArgument("policy.allowed_symbols", "symbols are 1-64 of [A-Za-z0-9-_/.:]")
    for side in policy.allowed_sides:
        if side not in SIDES:
            raise InvalidArgument("policy.allowed_sides", "unknown side")
    for kind in policy.allowed_order_types:
        if kind not in ORDER_TYPES:
            raise InvalidArgument("policy.allowed_order_types", "unknown order type")
    parse_decimal("policy.max_quantity", policy.max_quantity)
    parse_decimal("policy.max_notional", policy.max_notional)
    if not 0 <= policy.max_orders_per_interval <= 1_000_000:
        raise InvalidArgument("policy.max_orders_per_interval", "must be 0..1000000")
    if not 0 < policy.rate_interval_s <= 86_400:
        raise InvalidArgument("policy.rate_interval", "must be between 0 and 1 day")
    if not 0 < policy.max_freshness_s <= MAX_FRESHNESS_S:
        raise InvalidArgument("policy.max_freshness", "must be between 0 and 60 s")
    return policy
