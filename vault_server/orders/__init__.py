"""Order rules: a credential's order policy, the order units a venue reads, and the
checks every order passes before a signature exists.
"""

from __future__ import annotations

from vault_server.orders._checks import (
    check_client_order_id,
    check_policy,
    claim_order,
    is_claimed,
    prune_claims,
)
from vault_server.orders._policy import OrderPolicy, parse_decimal, validate_policy

__all__ = [
    "OrderPolicy",
    "check_client_order_id",
    "check_policy",
    "claim_order",
    "is_claimed",
    "parse_decimal",
    "prune_claims",
    "validate_policy",
]
