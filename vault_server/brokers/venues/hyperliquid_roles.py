"""Hyperliquid attestation: reading ``POST /info {"type": "userRole", "user": <agent>}``.

The answer (Hyperliquid info endpoint, "Query a user's role") is one of
``{"role": "agent", "data": {"user": <master>}}``, ``{"role": "user"}``, ``{"role": "vault"}``,
``{"role": "subAccount", "data": {"master": ...}}`` or ``{"role": "missing"}``. Only an agent of
the configured master is clean (it trades and cannot withdraw or transfer). Any other role is
counted as able to move funds, so the credential is quarantined: a ``user`` answer means the key
is a master account's own key, and an unknown or expired agent, a vault or a sub-account is not
the key that was onboarded. An agent of another master is quarantined too.
"""

from __future__ import annotations

from collections.abc import Mapping

from vault_server.brokers import permissions as perm
from vault_server.brokers.base import PermissionReport, Scope, VenueCredential
from vault_server.brokers.schemes import eip712_agent
from vault_server.brokers.schemes.keys import require_secret

_FUND_MOVING = frozenset({Scope.READ, Scope.TRADE, Scope.WITHDRAW, Scope.TRANSFER})
_ROLES = frozenset({"agent", "user", "vault", "subAccount", "missing"})


def agent_of(credential: VenueCredential) -> str:
    """The agent's address, derived from the key itself (not from what was declared)."""
    key = require_secret(credential.private_key_pem, "credential.private_key")
    return eip712_agent.address_of(key).lower()


def parse(
    status: int,
    body: bytes,
    vocabulary: Mapping[str, frozenset[Scope]],
    *,
    master: str | None = None,
) -> PermissionReport:
    if status != 200:
        raise perm.refused(status)
    data = perm.json_object(status, body)
    role = data.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise perm.venue_error("permission answer has no known role", status)
    raw = {"role": role}
    if role != "agent":
        return PermissionReport(_FUND_MOVING, raw)
    detail = data.get("data")
    user = detail.get("user") if isinstance(detail, dict) else None
    if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
        raise perm.venue_error("agent answer lacks its master address", status)
    raw["master"] = user.lower()
    if master is None:
        raise perm.venue_error("the configured master address is needed to read the answer", status)
    if user.lower() != master.lower():
        raw["expectedMaster"] = master.lower()
        return PermissionReport(frozenset({Scope.TRANSFER}), raw)
    return PermissionReport(frozenset({Scope.READ, Scope.TRADE}), raw)
