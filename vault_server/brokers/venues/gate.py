"""Gate.io API v4 (``api.gateio.ws``): HMAC-SHA512, detached signing, spot orders.

Signature (Gate v4 "APIv4 signed request requirements"; reference broker-breadth §1, §2)::

    SignatureString = METHOD + "\\n" + /api/v4/path + "\\n" + query + "\\n"
                      + hex(SHA512(body)) + "\\n" + timestamp        # seconds
    SIGN            = hex(HMAC_SHA512(secret, SignatureString))

Headers ``KEY``, ``Timestamp``, ``SIGN`` (``schemes/prehash_headers.py`` with :func:`prehash`
and a hex HMAC-SHA512 ``mac``: the secret is the ASCII string Gate shows, used as is). Credentials
are ``KeyAlgorithm.HMAC_SHA512``.

Freshness: Gate refuses a ``Timestamp`` more than 60 s from its clock. The timestamp is in whole
seconds (rounded down), so ``expire_at_ms = now + min(recv_window, 59 s)`` stays inside it. A
place also carries ``X-Gate-Exptime`` (same instant, ms), which Gate honours on that endpoint but
which is *not* signed: a router can strip it. The signed ``Timestamp`` is the hard limit.

Environments: LIVE ``https://api.gateio.ws``, TESTNET ``https://api-testnet.gateapi.io`` (Gate's
TestNet); Gate has no separate paper host, so PAPER is refused.

Units (Gate "Create an order", ``amount``): a limit order's ``amount`` is base currency; a
*market* order's is the quote currency for a buy and the base currency for a sell, and Gate has
no switch. So a market buy must be sized with ``quote_quantity`` (refused with ``quantity``),
and ``quote_quantity`` is refused everywhere else. Market orders are sent ``ioc`` (Gate accepts
only ioc/fok there); triggered orders need Gate's price-orders API and are refused.

=================  ================================================  ==========================
operation          request                                           parameters
=================  ================================================  ==========================
place              ``POST /api/v4/spot/orders``                      currency_pair, type,
                                                                     account, side, amount,
                                                                     price, time_in_force, text,
                                                                     extras sorted by name
cancel             ``DELETE /api/v4/spot/orders/{id}``               currency_pair (query)
amend              ``PATCH /api/v4/spot/orders/{id}``                currency_pair (query);
                                                                     amount, price (body)
query order        ``GET /api/v4/spot/orders/{id}``                  currency_pair
open orders        ``GET /api/v4/spot/open_orders`` (no symbol),     currency_pair, status=open
                   ``GET /api/v4/spot/orders`` (a symbol)
account            ``GET /api/v4/spot/accounts``                     currency (extra)
=================  ================================================  ==========================

``{id}`` is the venue order id, or the client id as Gate's ``text`` (``t-`` prefixed, which Gate
accepts in place of an order id). Permissions: Gate has no API that reports a main-account key's
own permissions, so attestation is unavailable; the scope vocabulary still refuses ``wallet``
(withdrawals and transfers), ``withdraw``, ``earn``, ``loan`` and sub-account tokens by name, and
fund-moving endpoints are refused at signing whatever the key allows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    Scope,
    Side,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.schemes import keys
from vault_server.brokers.schemes import prehash_headers as ph
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import InvalidArgument, OperationNotSupported

LIVE_URL = "https://api.gateio.ws"
TESTNET_URL = "https://api-testnet.gateapi.io"
MAX_TIMESTAMP_AGE_MS = 59_000  # Gate: 60 s, less the rounding of a seconds timestamp
_P = "/api/v4/spot/"
ORDERS = _P + "orders"
ALLOWED = frozenset(
    {("POST", ORDERS), ("GET", ORDERS), ("GET", _P + "open_orders"), ("GET", _P + "accounts")}
)
_ID = r"(?:[0-9]{1,32}|t-[A-Za-z0-9_.-]{1,28})"
ORDER_PATH = re.compile(re.escape(ORDERS) + "/" + _ID)
_TEXT = re.compile(r"[A-Za-z0-9_.-]{1,28}")
_PAIR = sc.matches(r"[A-Z0-9]{1,20}_[A-Z0-9]{1,20}")
_TIFS = {None: "gtc", TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc", TimeInForce.FOK: "fok"}
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "account": frozenset({"spot", "margin", "cross_margin", "unified"}),
    "stp_act": frozenset({"cn", "co", "cb"}),
    "action_mode": frozenset({"ACK", "RESULT", "FULL"}),
    "postOnly": frozenset({"true"}),
}
_ACCOUNT_EXTRAS: Mapping[str, sc.ExtraRule] = {"currency": sc.matches(r"[A-Z0-9]{1,20}")}
RESERVED = frozenset({"currency_pair", "type", "side", "amount", "price", "time_in_force",
                      "text", "auto_borrow", "auto_repay", "iceberg"})  # fmt: skip

# Gate's API-key permission names (the key page and SubAccountKey ``perms``: wallet, spot,
# futures, delivery, earn, options, account, unified, loan), plus generic words.
SCOPE_VOCABULARY = vocabulary(
    read=("read", "read_only", "readonly", "account"),
    trade=("trade", "spot", "margin", "futures", "delivery", "options", "unified"),
    withdraw=("withdraw", "withdrawal", "withdrawals"),
    transfer=("transfer", "earn", "loan", "sub_account", "subaccount"),
    combined={"wallet": frozenset({Scope.WITHDRAW, Scope.TRANSFER})},
)


def timestamp(now_ms: int) -> str:
    """Gate's ``Timestamp``: epoch seconds, rounded down."""
    return str(now_ms // 1000)


def prehash(p: ph.Prehash) -> bytes:
    """``METHOD\\npath\\nquery\\nhex(SHA512(body))\\ntimestamp``."""
    digest = hashlib.sha512(p.body).hexdigest()
    return f"{p.method.upper()}\n{p.path}\n{p.query}\n{digest}\n{p.timestamp}".encode("ascii")


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.QUERY_ACCOUNT:
        return Call("GET", _P + "accounts", tuple(
            sc.checked_extras(order.extras, _ACCOUNT_EXTRAS, RESERVED)))  # fmt: skip
    if op is not Operation.PLACE_ORDER:
        sc.no_extras(order)
    if op is Operation.QUERY_OPEN_ORDERS:
        if (name := sc.symbol(order, required=False)) is None:
            return Call("GET", _P + "open_orders")
        return Call("GET", ORDERS, (("currency_pair", _pair(name)), ("status", "open")))
    pair = _pair(sc.symbol(order))
    if op is Operation.PLACE_ORDER:
        return Call("POST", ORDERS, json=_place(order, pair))
    path, query = f"{ORDERS}/{_target(order)}", (("currency_pair", pair),)
    if op is Operation.CANCEL_ORDER:
        return Call("DELETE", path, query)
    if op is Operation.QUERY_ORDER:
        return Call("GET", path, query)
    if op is Operation.AMEND_ORDER:
        changes = {key: sc.positive_decimal(value, field) for key, value, field in (
            ("amount", order.quantity, "order.quantity"), ("price", order.price, "order.price"))
            if value is not None}  # fmt: skip
        if not changes:
            raise InvalidArgument("order.quantity", "or order.price is required to amend")
        if order.stop_price is not None or order.quote_quantity is not None:
            raise InvalidArgument("order.stop_price", "only amount and price amend on Gate")
        return Call("PATCH", path, query, json=changes)
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _pair(name: str | None) -> str:
    if name is None or not _PAIR(name):
        raise InvalidArgument("order.symbol", "must be a Gate currency pair such as BTC_USDT")
    return name


def _place(order: OrderSpec, pair: str) -> dict[str, Any]:
    kind = sc.check_place_shape(order)
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
    post_only = extras.pop("postOnly", None) == "true"
    if kind not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidArgument("order.order_type", f"{kind.value} needs Gate price-triggered orders")
    market = kind is OrderType.MARKET
    buy = order.side is Side.BUY
    if market and buy and order.quote_quantity is None:
        raise InvalidArgument(
            "order.quantity",
            "Gate reads a market buy amount in the quote currency: use quote_quantity",
        )
    if not (market and buy):
        sc.no_quote_size(order, "Gate takes a quote-sized amount on market buys only")
    if market:
        tif = "ioc"
    elif order.time_in_force not in _TIFS:
        assert order.time_in_force is not None
        raise InvalidArgument(
            "order.time_in_force", f"{order.time_in_force.value} is not offered by Gate"
        )
    else:
        tif = _TIFS[order.time_in_force]
    if post_only:
        if tif != "gtc" or market:
            raise InvalidArgument("order.extras", "postOnly needs a GTC limit order")
        tif = "poc"
    size = order.quote_quantity if order.quote_quantity is not None else order.quantity
    field = "order.quote_quantity" if order.quote_quantity is not None else "order.quantity"
    params: dict[str, Any] = {
        "currency_pair": pair, "type": kind.value, "account": extras.pop("account", "spot"),
        "side": "buy" if buy else "sell", "amount": sc.positive_decimal(size, field),
    }  # fmt: skip
    if order.price is not None:
        params["price"] = sc.positive_decimal(order.price, "order.price")
    params["time_in_force"] = tif
    if (text := _text(order)) is not None:
        params["text"] = text
    return params | dict(sorted(extras.items()))


def _text(order: OrderSpec) -> str | None:
    """The client id as Gate's ``text``: ``t-`` + 1-28 of ``A-Za-z0-9_.-``."""
    value = order.client_order_id
    if value is None or value == "":
        return None
    body = value.removeprefix("t-")
    if not _TEXT.fullmatch(body):
        raise InvalidArgument(
            "order.client_order_id", "must be 1-28 of A-Z a-z 0-9 _ . - on Gate (t- optional)"
        )
    return f"t-{body}"


def _target(order: OrderSpec) -> str:
    venue_id = order.venue_order_id
    if venue_id:
        if not re.fullmatch(r"[0-9]{1,32}", venue_id):
            raise InvalidArgument("order.venue_order_id", "must be Gate's numeric order id")
        return venue_id
    if (text := _text(order)) is not None:
        return text
    raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")


SPEC = VenueSpec(
    venue=Venue.GATE,
    label="Gate",
    urls={Environment.LIVE: LIVE_URL, Environment.TESTNET: TESTNET_URL},
    missing_environment="Gate has no paper environment: use its testnet",
    endpoints=Endpoints(
        allowed=ALLOWED,
        patterns=((methods("GET", "DELETE", "PATCH"), ORDER_PATH),),
        blocked_words=("withdraw", "transfer", "/wallet/", "sub_account", "deposit", "/earn/",
                       "/loan", "/margin/uni", "/flash_swap", "/rebate/", "/account/",
                       "/unified/", "/delivery/", "/options/", "/futures/", "/p2p/"),
    ),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA512}),
    scheme=ph.PrehashHeaders(
        timestamp=timestamp, prehash=prehash, encoding="hex",
        headers=(("KEY", "key"), ("Timestamp", "timestamp"), ("SIGN", "sign")),
        max_age_ms=MAX_TIMESTAMP_AGE_MS,
        expiry_header=("X-Gate-Exptime", frozenset({ORDERS})),
        mac=keys.hmac_sha512_hex,
    ),
    mapping=orders,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
