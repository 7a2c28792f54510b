"""Order-field and context checks shared by every venue's order mapping and scheme.

Everything here is pure (no clock, no I/O, no randomness) and reveals no secret: key primitives
live in ``schemes/keys.py``, permission-answer helpers in ``permissions.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from urllib.parse import quote

from vault_server.brokers.base import (
    KeyAlgorithm,
    OrderSpec,
    OrderType,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.core.errors import InternalError, InvalidArgument, OperationNotSupported

MAX_RECV_WINDOW_MS = 60_000  # Binance's documented maximum; the vault applies it to Bybit too
MAX_EXTRAS = 16  # the API contract's cap on ``Order.extras``
_MAX_DECIMAL_CHARS = 40
_ID_PATTERN = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]{1,256}")
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what ``quote(safe="")`` leaves as it is

LIMIT_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
TRIGGERED = frozenset(
    {OrderType.STOP_LOSS, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}
)


# --- context and credential -----------------------------------------------------------------------
def check_credential(
    venue: Venue, algorithms: frozenset[KeyAlgorithm], credential: VenueCredential
) -> None:
    """The credential belongs to ``venue`` and uses a key type the venue module accepts."""
    if credential.venue is not venue:
        raise InternalError("credential was routed to the wrong venue module")
    if credential.algorithm not in algorithms:
        raise OperationNotSupported(
            "this venue does not accept the credential's key algorithm",
            metadata={"venue": venue.value, "algorithm": credential.algorithm.value},
        )
    if credential.algorithm is KeyAlgorithm.BEARER:
        return  # a bearer token has no separate key id
    logins = (KeyAlgorithm.SESSION_LOGIN, KeyAlgorithm.OAUTH_CONSENT)
    if credential.algorithm in logins and not credential.api_key:
        return  # a login (DXtrade) or a consent (cTrader) may have no API key
    header_token(credential.api_key, "credential.api_key")


def now_ms(ctx: SigningContext) -> int:
    if isinstance(ctx.now_ms, bool) or not isinstance(ctx.now_ms, int) or ctx.now_ms <= 0:
        raise InternalError("signing context carries no valid time")
    return ctx.now_ms


def recv_window_ms(ctx: SigningContext, maximum: int = MAX_RECV_WINDOW_MS) -> int:
    window = ctx.recv_window_ms
    if isinstance(window, bool) or not isinstance(window, int) or not 0 < window <= maximum:
        raise InvalidArgument("recv_window_ms", f"must be between 1 and {maximum} milliseconds")
    return window


def base_url(ctx: SigningContext, default: str) -> str:
    return (ctx.base_url or default).rstrip("/")


def header_token(value: str, field: str) -> str:
    """A value safe to place in an HTTP header or URL: printable ASCII, no spaces, no CR/LF."""
    if not isinstance(value, str) or not _HEADER_SAFE.fullmatch(value):
        raise InvalidArgument(field, "must be 1-256 printable ASCII characters without spaces")
    return value


# --- order fields ---------------------------------------------------------------------------------
def format_decimal(value: Decimal) -> str:
    """Positional notation, no exponent, no trailing zeros: 1E+3 -> "1000", 0.10 -> "0.1"."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError("not a finite Decimal")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def positive_decimal(value: Decimal | None, field: str) -> str:
    if value is None:
        raise InvalidArgument(field, "is required")
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidArgument(field, "must be a positive decimal")
    text = format_decimal(value)
    if len(text) > _MAX_DECIMAL_CHARS:
        raise InvalidArgument(field, f"must have at most {_MAX_DECIMAL_CHARS} characters")
    return text


def symbol(order: OrderSpec, *, required: bool = True) -> str | None:
    if order.symbol is None or order.symbol == "":
        if required:
            raise InvalidArgument("order.symbol", "is required")
        return None
    if (
        len(order.symbol) > 64
        or not order.symbol.isprintable()
        or order.symbol != order.symbol.strip()
    ):
        raise InvalidArgument("order.symbol", "must be 1-64 printable characters")
    return order.symbol


def order_id(value: str | None, field: str) -> str | None:
    """A venue or client order id: 1-64 of ``A-Za-z0-9._:/-`` (None when absent)."""
    if value is None or value == "":
        return None
    if not _ID_PATTERN.fullmatch(value):
        raise InvalidArgument(field, "must be 1-64 characters of A-Z a-z 0-9 . _ : / -")
    return value


def check_place_shape(order: OrderSpec) -> OrderType:
    """Fields a new order needs (and must not have) for its type; returns the order type.

    Exactly one size: ``quantity`` (base units) or ``quote_quantity`` (quote units). Whether the
    venue can take a quote-sized order for this type and side is the venue module's check.
    """
    if order.quantity is not None and order.quote_quantity is not None:
        raise InvalidArgument("order.quote_quantity", "is mutually exclusive with order.quantity")
    if order.quantity is None and order.quote_quantity is None:
        raise InvalidArgument("order.quantity", "or order.quote_quantity is required")
    if order.side is None:
        raise InvalidArgument("order.side", "is required to place an order")
    if order.order_type is None:
        raise InvalidArgument("order.order_type", "is required to place an order")
    kind = order.order_type
    if kind in LIMIT_PRICED and order.price is None:
        raise InvalidArgument("order.price", f"is required for {kind.value} orders")
    if kind not in LIMIT_PRICED and order.price is not None:
        raise InvalidArgument("order.price", f"must not be set for {kind.value} orders")
    if kind in TRIGGERED and order.stop_price is None:
        raise InvalidArgument("order.stop_price", f"is required for {kind.value} orders")
    if kind not in TRIGGERED and order.stop_price is not None:
        raise InvalidArgument("order.stop_price", f"must not be set for {kind.value} orders")
    if kind not in LIMIT_PRICED and order.time_in_force is not None:
        raise InvalidArgument("order.time_in_force", f"must not be set for {kind.value} orders")
    return kind


def no_quote_size(order: OrderSpec, why: str) -> None:
    """Refuse ``quote_quantity`` where the venue offers no quote-sized order (``why`` says so)."""
    if order.quote_quantity is not None:
        raise InvalidArgument("order.quote_quantity", why)


ExtraRule = frozenset[str] | Callable[[str], bool]


def checked_extras(
    extras: Mapping[str, str],
    allowed: Mapping[str, ExtraRule],
    reserved: Iterable[str],
) -> list[tuple[str, str]]:
    """Validate ``extras`` against an allow-list; returns them sorted by name.

    Raises ``InvalidArgument("order.extras", ...)`` for too many extras, a name that would
    override a signed core field, an unknown name, or a value its rule refuses.
    """
    if len(extras) > MAX_EXTRAS:
        raise InvalidArgument("order.extras", f"at most {MAX_EXTRAS} extras are accepted")
    reserved_names = frozenset(reserved)
    result: list[tuple[str, str]] = []
    for name in sorted(extras):
        value = extras[name]
        shown = name if re.fullmatch(r"[A-Za-z0-9_]{1,40}", name) else "(unprintable)"
        if name in reserved_names:
            raise InvalidArgument("order.extras", f"{shown} is a signed core field")
        rule = allowed.get(name)
        if rule is None:
            raise InvalidArgument("order.extras", f"{shown} is not an accepted extra")
        valid = value in rule if isinstance(rule, frozenset) else rule(value)
        if not isinstance(value, str) or not valid:
            raise InvalidArgument("order.extras", f"{shown} has a value this venue refuses")
        result.append((name, value))
    return result


def no_extras(order: OrderSpec) -> None:
    if order.extras:
        raise InvalidArgument("order.extras", f"no extras are accepted for {order.operation.value}")


def matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda value: compiled.fullmatch(value) is not None


# --- encoding -------------------------------------------------------------------------------------
def percent_encode(params: Iterable[tuple[str, str]]) -> str:
    """``k=v&k=v`` with every byte outside RFC 3986 unreserved characters percent-encoded."""
    return "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in params)


def _encoded(value: str) -> str:
    # Most names and values need no escaping: skip ``quote``'s byte-by-byte walk for them.
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")
