"""Reading a venue's answer to the permission query: shared checks and scope mapping.

Each venue's parser (in its venue module) is a few lines on top of these: the answer must be a
JSON object, boolean flags must be booleans, and reported permission tokens are folded and mapped
with the same vocabulary and fund-moving stems as onboarding. Errors name fields and the venue's
status and code only, never the answer's content.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vault_server.brokers.base import Scope, normalize_scope_token, normalize_scopes
from vault_server.core.errors import UnknownScope, VenueUnavailable, WithdrawalScopeRejected


def venue_error(message: str, status: int, code: str = "") -> VenueUnavailable:
    metadata = {"venueStatus": str(status)}
    if code:
        metadata["venueCode"] = code[:80]
    return VenueUnavailable(message, metadata=metadata)


def refused(status: int, code: str = "") -> VenueUnavailable:
    return venue_error("venue refused the permission query", status, code)


def json_object(status: int, body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise venue_error("venue answered the permission query with non-JSON", status) from None
    if not isinstance(data, dict):
        raise venue_error("venue answered the permission query with an unexpected shape", status)
    return data


def flag(data: Mapping[str, Any], name: str, status: int) -> bool:
    value = data.get(name)
    if not isinstance(value, bool):
        raise venue_error(f"permission answer lacks boolean field {name}", status)
    return value


def flag_scopes(
    data: Mapping[str, Any], flags: Sequence[tuple[str, Scope]], status: int
) -> tuple[set[Scope], dict[str, bool]]:
    """Scopes of the boolean ``flags`` that are true (every flag must be present)."""
    values = {name: flag(data, name, status) for name, _ in flags}
    return {scope for name, scope in flags if values[name]}, values


def scopes_for_tokens(
    tokens: Iterable[str], vocabulary: Mapping[str, frozenset[Scope]]
) -> tuple[set[Scope], list[str]]:
    """Scopes a venue reports for a key, and the tokens no vocabulary entry explains.

    Uses the same folding and fund-moving stems as onboarding (``base.normalize_scopes``): a token
    that smells of withdraw/transfer but is not in the vocabulary still counts as TRANSFER.
    """
    scopes: set[Scope] = set()
    unknown: list[str] = []
    for token in tokens:
        try:
            scopes |= normalize_scopes([token], vocabulary)
        except WithdrawalScopeRejected:
            known = vocabulary.get(normalize_scope_token(token))
            scopes |= known if known else {Scope.TRANSFER}
        except UnknownScope:
            unknown.append(token[:64])
    return scopes, unknown


def copy_fields(
    raw: dict[str, str],
    data: Mapping[str, Any],
    names: Iterable[str],
    types: type | tuple[type, ...],
    limit: int,
) -> None:
    """Copy the non-secret ``names`` of ``data`` that have one of ``types`` into ``raw``."""
    for name in names:
        if isinstance(data.get(name), types):
            raw[name] = str(data[name])[:limit]
