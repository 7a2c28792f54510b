"""Kraken Futures REST v3 (``futures.kraken.com/derivatives/api/v3``): HMAC-SHA512, detached.

Scheme, nonce and freshness rules: ``schemes/authent.py`` (``Authent`` over the URL-encoded
postData + the vault's nonce + the path without ``/derivatives``; the ``Nonce`` header is always
sent). Parameters are in the order below (form body of a POST, query string of a GET).

=================  ==================================  ========================================
operation          request                             parameters
=================  ==================================  ========================================
place              ``POST sendorder``                  orderType, symbol, side, size,
                                                       limitPrice, stopPrice, cliOrdId,
                                                       extras sorted by name
cancel             ``POST cancelorder``                order_id | cliOrdId
amend              ``POST editorder``                  orderId | cliOrdId, size, limitPrice,
                                                       stopPrice
query order        ``POST orders/status``              orderIds | cliOrdIds
open orders        ``GET openorders``                  - (all symbols; symbol ignored)
account            ``GET accounts``                    -
=================  ==================================  ========================================

Order types: market ``mkt``; limit ``lmt`` (GTC) or ``ioc`` (IOC); ``post_only=true`` makes a
GTC limit order ``post``; stop-loss and take-profit are ``stp`` / ``take_profit`` with
``stopPrice`` and, for the limit forms, ``limitPrice`` (without it Kraken triggers a market
order).

Units (Kraken Futures "Send order", ``size``): ``size`` is the order size in the contract's own
unit: the base currency for multi-collateral ``PF_`` perpetuals and ``FF_`` futures, whole USD
contracts for inverse ``PI_``/``FI_`` ones. ``quantity`` is sent as ``size`` unchanged; there is
no quote-currency size, so ``quote_quantity`` is refused.

Permissions: Kraken Futures has no API that reports a key's permissions (its keys have a
"General API" level, read-only or full access, and a separate "Withdrawal API" level), so
attestation is not available; the vocabulary still names the withdrawal levels so onboarding
refuses them, and the fund-moving endpoints (``withdrawal``, ``transfer``,
``transfer/subaccount``, ...) are blocked whatever the key allows. Kraken Futures has no paper or
testnet environment: its demo API was retired in 2026.
"""

from __future__ import annotations

from collections.abc import Mapping

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.schemes.authent import Authent
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import InvalidArgument, OperationNotSupported

V3 = "/derivatives/api/v3/"
ALLOWED = frozenset(
    {("POST", V3 + name) for name in (
        "sendorder", "editorder", "cancelorder", "cancelallorders", "cancelallordersafter",
        "orders/status")}
    | {("GET", V3 + name) for name in ("openorders", "openpositions", "fills", "accounts")}
)  # fmt: skip
_TYPES = {
    OrderType.MARKET: "mkt", OrderType.LIMIT: "lmt", OrderType.STOP_LOSS: "stp",
    OrderType.STOP_LIMIT: "stp", OrderType.TAKE_PROFIT: "take_profit",
    OrderType.TAKE_PROFIT_LIMIT: "take_profit",
}  # fmt: skip
_TRUE_FALSE = frozenset({"true", "false"})
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "reduceOnly": _TRUE_FALSE,
    "triggerSignal": frozenset({"mark", "index", "last"}),
    "post_only": _TRUE_FALSE,
}
RESERVED = frozenset(
    {"orderType", "symbol", "side", "size", "limitPrice", "stopPrice", "cliOrdId", "order_id",
     "orderId", "orderIds", "cliOrdIds", "processBefore"}
)  # fmt: skip

# The key levels Kraken Futures shows when a key is created ("General API": no access, read
# only, full access; "Withdrawal API": no access, full access), and the plain words.
SCOPE_VOCABULARY = vocabulary(
    read=("read", "read-only", "general-read-only", "General API Read Only"),
    trade=("trade", "general-full-access", "General API Full Access"),
    withdraw=("withdraw", "withdrawal", "withdrawal-full-access", "Withdrawal API Full Access"),
    transfer=("transfer",),
)  # fmt: skip

Params = tuple[tuple[str, str], ...]


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return Call("POST", V3 + "sendorder", _place(order))
    if op is Operation.AMEND_ORDER:
        return Call("POST", V3 + "editorder", _amend(order))
    sc.no_extras(order)
    if op is Operation.CANCEL_ORDER:
        return Call("POST", V3 + "cancelorder", _target(order, "order_id"))
    if op is Operation.QUERY_ORDER:
        target = _target(order, "orderIds")
        name = "orderIds" if target[0][0] == "orderIds" else "cliOrdIds"
        return Call("POST", V3 + "orders/status", ((name, target[0][1]),))
    if op is Operation.QUERY_OPEN_ORDERS:
        return Call("GET", V3 + "openorders")
    if op is Operation.QUERY_ACCOUNT:
        return Call("GET", V3 + "accounts")
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec) -> Params:
    kind = sc.check_place_shape(order)
    assert order.side is not None  # checked by check_place_shape
    sc.no_quote_size(order, "Kraken Futures sizes every order in contracts (order.quantity)")
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
    order_type = _TYPES[kind]
    if kind is OrderType.LIMIT:
        tif = order.time_in_force
        if tif not in (None, TimeInForce.GTC, TimeInForce.IOC):
            raise InvalidArgument(
                "order.time_in_force", f"{tif.value} is not offered by Kraken Futures"
            )
        order_type = "ioc" if tif is TimeInForce.IOC else "lmt"
        if extras.pop("post_only", "false") == "true":
            if order_type == "ioc":
                raise InvalidArgument("order.extras", "post_only cannot be combined with IOC")
            order_type = "post"
    elif "post_only" in extras:
        raise InvalidArgument("order.extras", "post_only is for limit orders only")
    if "triggerSignal" in extras and kind not in sc.TRIGGERED:
        raise InvalidArgument("order.extras", "triggerSignal is for stop and take-profit orders")
    params = [
        ("orderType", order_type),
        ("symbol", sc.symbol(order) or ""),
        ("side", order.side.value),
        ("size", sc.positive_decimal(order.quantity, "order.quantity")),
    ]
    if order.price is not None:
        params.append(("limitPrice", sc.positive_decimal(order.price, "order.price")))
    if kind in sc.TRIGGERED:
        params.append(("stopPrice", sc.positive_decimal(order.stop_price, "order.stop_price")))
    client_id = sc.order_id(order.client_order_id, "order.client_order_id")
    if client_id is not None:
        params.append(("cliOrdId", client_id))
    return (*params, *sorted(extras.items()))


def _target(order: OrderSpec, venue_name: str) -> Params:
    venue_id = sc.order_id(order.venue_order_id, "order.venue_order_id")
    client_id = sc.order_id(order.client_order_id, "order.client_order_id")
    if (venue_id is None) == (client_id is None):
        raise InvalidArgument(
            "order.venue_order_id", "exactly one of it and order.client_order_id is required"
        )
    return ((venue_name, venue_id),) if venue_id is not None else (("cliOrdId", client_id or ""),)


def _amend(order: OrderSpec) -> Params:
    sc.no_extras(order)
    params = list(_target(order, "orderId"))
    for value, name, field in (
        (order.quantity, "size", "order.quantity"),
        (order.price, "limitPrice", "order.price"),
        (order.stop_price, "stopPrice", "order.stop_price"),
    ):
        if value is not None:
            params.append((name, sc.positive_decimal(value, field)))
    if len(params) == 1:
        raise InvalidArgument("order.quantity", "or a price is required to amend an order")
    return tuple(params)


SPEC = VenueSpec(
    venue=Venue.KRAKEN_FUTURES,
    label="Kraken Futures",
    urls={Environment.LIVE: "https://futures.kraken.com"},
    missing_environment="Kraken Futures has no paper or testnet environment (demo API retired)",
    endpoints=Endpoints(
        allowed=ALLOWED,
        blocked_words=("withdraw", "transfer", "subaccount", "wallet", "deposit", "/history/",
                       "assignmentprogram"),
    ),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA512}),
    scheme=Authent(),
    mapping=orders,
    needs_nonce=True,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
