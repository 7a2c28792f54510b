"""HTTP-level helpers shared by venue mappings and schemes (JSON bodies, secret headers, path ids).

Pure: no clock, no I/O, no randomness. Generic order checks live in ``_signing_common``, key
primitives in ``schemes/keys.py``; this module adds:

* :class:`RedactedHeader`: header values that carry secret material (OANDA bearer token, Alpaca
  secret key, OKX passphrase) would otherwise be printed by ``PreparedRequest``'s dataclass
  ``repr``. The value is still an ordinary ``str`` on the wire; only its ``repr`` is masked.
  The type also marks what proxy mode scrubs from a venue's answer (``brokers.revealed``).
* :func:`path_id`: identifiers that are placed *inside a URL path* (OANDA order specifiers,
  Alpaca and Coinbase order ids) must not be able to form ``.``/``..`` segments, slashes or
  percent-escapes, so they get a stricter alphabet than ``_signing_common.order_id``.
* the single-tier scope vocabulary and a TIF-agnostic order-shape check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import OrderSpec, OrderType, Scope, normalize_scope_token
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

_PATH_ID = re.compile(r"[A-Za-z0-9_:-]{1,64}")
_HEADER_SECRET = re.compile(rb"[\x21-\x7e]{1,4096}")
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")


class RedactedHeader(str):
    """A header value whose ``repr`` is masked (the bytes sent are unchanged)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def secret_header(secret: Secret | None, field: str) -> RedactedHeader:
    """Reveal ``secret`` as a header value: printable ASCII without spaces, never echoed."""
    value = keys.require_secret(secret, field).reveal()
    if not _HEADER_SECRET.fullmatch(value):
        raise InvalidArgument(field, "must be printable ASCII without spaces")
    return RedactedHeader(value.decode("ascii"))


def path_id(value: str | None, field: str, *, required: bool = True) -> str | None:
    """An id that goes into a URL path segment: 1-64 of ``A-Z a-z 0-9 _ : -``."""
    if value is None or value == "":
        if required:
            raise InvalidArgument(field, "is required for this operation")
        return None
    if not isinstance(value, str) or not _PATH_ID.fullmatch(value):
        raise InvalidArgument(field, "must be 1-64 characters of A-Z a-z 0-9 _ : -")
    return value


def is_rfc3339_utc(value: str) -> bool:
    return _RFC3339_UTC.fullmatch(value) is not None


def compact_json(data: Mapping[str, Any]) -> bytes:
    """The exact body bytes: no whitespace, ASCII-escaped, key order as built."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def check_place_shape_any_tif(order: OrderSpec) -> OrderType:
    """``_signing_common.check_place_shape`` minus its rule that only limit orders carry a TIF.

    OANDA (market FOK/IOC) and Alpaca (market day/gtc/ioc/fok) accept a time in force on every
    order type; the venue module validates the TIF itself.
    """
    return sc.check_place_shape(replace(order, time_in_force=None))


_R, _RT = frozenset({Scope.READ}), frozenset({Scope.READ, Scope.TRADE})


def single_tier_vocabulary(
    extra: Mapping[str, frozenset[Scope]] | None = None,
) -> Mapping[str, frozenset[Scope]]:
    """Scope tokens for venues whose keys have one tier: trading implies reading.

    Tokens are stored folded (``normalize_scope_token``) so "Full Access" and "full_access"
    match. Fund-moving words are refused by ``base.normalize_scopes`` before any lookup.
    """
    tokens = {
        "read": _R, "read_only": _R, "view": _R, "query": _R,
        "trade": _RT, "trading": _RT, "full": _RT, "full_access": _RT, "full_trading": _RT,
        "read_write": _RT,
    }  # fmt: skip
    return {normalize_scope_token(k): v for k, v in {**tokens, **(extra or {})}.items()}
