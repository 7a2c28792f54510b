"""Bitget v2 (``api.bitget.com``): HMAC-SHA256 + passphrase, detached signing.

Signature (Bitget "Signature", ccxt ``bitget.sign``; ``schemes/prehash_headers.py``)::

    timestamp   = epoch milliseconds, e.g. "1659076670000"
    prehash     = timestamp + METHOD + requestPath [+ "?" + queryString] + body
    ACCESS-SIGN = base64(HMAC_SHA256(secret, prehash))

Headers: ``ACCESS-KEY``, ``ACCESS-SIGN``, ``ACCESS-TIMESTAMP``, ``ACCESS-PASSPHRASE`` (the
passphrase in plain text: the venue's protocol, as with OKX; the HMAC secret never leaves the
vault), ``Content-Type: application/json`` on POST, ``paptrading: 1`` in paper/testnet (Bitget
demo trading uses the live host). GET parameters are sent sorted by name (as Bitget's SDKs and
ccxt do) and restricted to characters that need no percent-encoding, so the signed query is the
raw query Bitget verifies.

Freshness: Bitget refuses a request whose ``ACCESS-TIMESTAMP`` is more than 30 s away from its
clock, so ``expire_at_ms = now + min(recv_window, 30000)``. There is no other expiry field.

Units (Bitget "Place Order", spot and futures):

* spot limit orders: ``size`` is base currency (``quantity``);
* spot **market buys**: ``size`` is the *quote* amount to spend and there is no selector to make
  it base: only ``quote_quantity`` is accepted, a base-sized market buy is refused;
* spot market sells: ``size`` is base currency (``quote_quantity`` refused);
* futures (``productType`` extra present: ``/api/v2/mix``): ``size`` is base coin, always.

=================  =========================================  ===============================
operation          spot / futures request                     parameters
=================  =========================================  ===============================
place              ``POST …/spot/trade/place-order``          symbol, side, orderType, force,
                   ``POST …/mix/order/place-order``           price, size, clientOid, extras
cancel             ``POST …/spot/trade/cancel-order``         symbol, orderId | clientOid
                   ``POST …/mix/order/cancel-order``          (+ productType, marginCoin)
amend (spot)       ``POST …/spot/trade/cancel-replace-order`` symbol, price, size, id
query order        ``GET …/spot/trade/orderInfo``             orderId | clientOid
                   ``GET …/mix/order/detail``                 (+ symbol, productType)
open orders        ``GET …/spot/trade/unfilled-orders``       symbol
                   ``GET …/mix/order/orders-pending``         productType, symbol
account            ``GET …/spot/account/assets``              coin
                   ``GET …/mix/account/accounts``             productType
permissions        ``GET /api/v2/spot/account/info``          - (``authorities``)
=================  =========================================  ===============================

Withdrawal (``/api/v2/spot/wallet/withdrawal``), transfers (``/wallet/transfer``,
``/wallet/subaccount-transfer``), sub-accounts, P2P, convert, earn and loans are blocked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _signing_common as sc
from vault_server.brokers import permissions as pm
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PermissionReport,
    Scope,
    Side,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.schemes import prehash_headers as ph
from vault_server.brokers.spec import Call, Permissions, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import InvalidArgument, OperationNotSupported

URL = "https://api.bitget.com"  # demo trading: the same host plus ``paptrading: 1``
PERMISSION_PATH = "/api/v2/spot/account/info"
MAX_TIMESTAMP_AGE_MS = 30_000
_S, _M = "/api/v2/spot/trade/", "/api/v2/mix/order/"
ALLOWED = frozenset(
    {("POST", _S + name) for name in (
        "place-order", "cancel-order", "batch-orders", "batch-cancel-order",
        "cancel-replace-order")}
    | {("POST", _M + name) for name in (
        "place-order", "cancel-order", "modify-order", "batch-place-order", "batch-cancel-orders")}
    | {("GET", path) for path in (
        _S + "orderInfo", _S + "unfilled-orders", _S + "history-orders", _S + "fills",
        _M + "detail", _M + "orders-pending", _M + "orders-history", _M + "fills",
        "/api/v2/spot/account/assets", "/api/v2/mix/account/accounts",
        "/api/v2/mix/position/all-position", PERMISSION_PATH)}
)  # fmt: skip
BLOCKED_WORDS = ("withdraw", "transfer", "/wallet/", "subaccount", "sub-account", "/user/",
                 "deposit", "/broker/", "/p2p/", "convert", "/earn/", "loan", "apikey",
                 "/tax/")  # fmt: skip
_PLAIN = sc.matches(r"[A-Za-z0-9_-]{1,40}")  # needs no percent-encoding
_CLIENT_OID = sc.matches(r"[A-Za-z0-9_-]{1,50}")
_PRODUCT_TYPES = frozenset({"USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES", "SUSDT-FUTURES",
                            "SCOIN-FUTURES", "SUSDC-FUTURES"})  # fmt: skip
_MIX_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "productType": _PRODUCT_TYPES,
    "marginMode": frozenset({"isolated", "crossed"}),
    "marginCoin": sc.matches(r"[A-Za-z0-9]{1,16}"),
    "tradeSide": frozenset({"open", "close"}),
    "reduceOnly": frozenset({"YES", "NO"}),
    "stpMode": frozenset({"none", "cancel_taker", "cancel_maker", "cancel_both"}),
    "postOnly": frozenset({"true"}),
}
_SPOT_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "stpMode": _MIX_EXTRAS["stpMode"], "postOnly": frozenset({"true"}),
}  # fmt: skip
_QUERY_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "productType": _PRODUCT_TYPES, "marginCoin": _MIX_EXTRAS["marginCoin"],
}  # fmt: skip
_ACCOUNT_EXTRAS: Mapping[str, sc.ExtraRule] = {"productType": _PRODUCT_TYPES, "coin": _PLAIN}
RESERVED = frozenset({"symbol", "side", "orderType", "force", "price", "size", "clientOid",
                      "orderId", "newClientOid"})  # fmt: skip
_FORCE = {None: "gtc", TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc", TimeInForce.FOK: "fok"}

# ``authorities`` of GET /api/v2/spot/account/info (Bitget "Get Account Information") and the
# names of its key-creation page. Read-only codes end in ``r``, read-write in ``w``.
SCOPE_VOCABULARY = vocabulary(
    read=("readonly", "read", "coor", "cpor", "stor", "smor", "ttor", "wtor", "taxr", "chor",
          "p2pr", "pllr", "taxw"),
    trade=("trade", "coow", "cpow", "stow", "smow", "ttow"),
    withdraw=("wwow", "withdraw", "withdrawal"),
    transfer=("wtow", "transfer", "chow", "p2p", "p2pw", "pllw"),
)  # fmt: skip


bitget_signature = ph.path_prehash_base64


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return _place(order)
    if op is Operation.QUERY_ACCOUNT:
        extras = dict(sc.checked_extras(order.extras, _ACCOUNT_EXTRAS, RESERVED))
        if "productType" in extras:
            if "coin" in extras:
                raise InvalidArgument("order.extras", "coin is a spot account filter")
            return _get("/api/v2/mix/account/accounts", extras)
        return _get("/api/v2/spot/account/assets", extras)
    extras = dict(sc.checked_extras(order.extras, _QUERY_EXTRAS, RESERVED))
    mix = "productType" in extras
    if "marginCoin" in extras and not mix:
        raise InvalidArgument("order.extras", "marginCoin needs productType (futures)")
    if op is Operation.QUERY_OPEN_ORDERS:
        if (name := sc.symbol(order, required=False)) is not None:
            extras["symbol"] = _plain(name, "order.symbol")
        return _get(_M + "orders-pending" if mix else _S + "unfilled-orders", extras)
    params: dict[str, str] = {"symbol": _plain(sc.symbol(order), "order.symbol")}
    if op is Operation.AMEND_ORDER:
        if mix:
            raise OperationNotSupported(
                "amending Bitget futures orders is not supported: cancel and place",
                metadata={"operation": op.value},
            )
        if order.stop_price is not None or order.time_in_force is not None:
            raise InvalidArgument("order", "only price and size can be amended on Bitget")
        params["price"] = sc.positive_decimal(order.price, "order.price")
        params["size"] = sc.positive_decimal(order.quantity, "order.quantity")
        return Call("POST", _S + "cancel-replace-order", json=params | _target(order))
    if op is Operation.CANCEL_ORDER:
        path = _M + "cancel-order" if mix else _S + "cancel-order"
        return Call("POST", path, json=params | extras | _target(order))
    if op is Operation.QUERY_ORDER:
        if not mix:
            params = {}  # spot orderInfo takes the order id alone
        return _get(_M + "detail" if mix else _S + "orderInfo", params | extras | _target(order))
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec) -> Call:
    kind = sc.check_place_shape(order)
    mix = "productType" in order.extras
    extras = dict(sc.checked_extras(order.extras, _MIX_EXTRAS if mix else _SPOT_EXTRAS, RESERVED))
    post_only = extras.pop("postOnly", None) == "true"
    if kind not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidArgument("order.order_type", f"{kind.value} needs Bitget plan orders")
    side = "buy" if order.side is Side.BUY else "sell"
    params: dict[str, Any] = {"symbol": _plain(sc.symbol(order), "order.symbol")}
    if mix:
        for name in ("marginMode", "marginCoin"):
            if name not in extras:
                raise InvalidArgument("order.extras", f"{name} is required for futures orders")
        params |= {name: extras.pop(name) for name in ("productType", "marginMode", "marginCoin")}
    params |= {"side": side, "orderType": kind.value}
    if kind is OrderType.LIMIT:
        tif = order.time_in_force
        if tif not in _FORCE:
            raise InvalidArgument(
                "order.time_in_force", f"{tif.value if tif else tif} is not offered by Bitget"
            )
        if post_only and tif not in (None, TimeInForce.GTC):
            raise InvalidArgument("order.extras", "postOnly needs a GTC limit order")
        params["force"] = "post_only" if post_only else _FORCE[tif]
        params["price"] = sc.positive_decimal(order.price, "order.price")
    elif post_only:
        raise InvalidArgument("order.extras", "postOnly needs a GTC limit order")
    params["size"] = _size(order, kind, mix)
    if (client_id := _client_id(order)) is not None:
        params["clientOid"] = client_id
    path = _M + "place-order" if mix else _S + "place-order"
    return Call("POST", path, json=params | dict(sorted(extras.items())))


def _size(order: OrderSpec, kind: OrderType, mix: bool) -> str:
    """Bitget's ``size`` in the unit it reads (see the module doc), refusing any other unit."""
    if not mix and kind is OrderType.MARKET and order.side is Side.BUY:
        if order.quote_quantity is None:
            raise InvalidArgument(
                "order.quantity",
                "Bitget sizes spot market buys in the quote currency (no base-unit option): "
                "use quote_quantity",
            )
        return sc.positive_decimal(order.quote_quantity, "order.quote_quantity")
    why = "Bitget reads this size in the base currency: use quantity"
    sc.no_quote_size(order, why)
    return sc.positive_decimal(order.quantity, "order.quantity")


def _plain(value: str | None, field: str) -> str:
    if value is None or not _PLAIN(value):
        raise InvalidArgument(field, "must be 1-40 of A-Z a-z 0-9 _ - on Bitget")
    return value


def _client_id(order: OrderSpec) -> str | None:
    value = order.client_order_id
    if value is None or value == "":
        return None
    if not _CLIENT_OID(value):
        raise InvalidArgument("order.client_order_id", "must be 1-50 of A-Z a-z 0-9 _ - on Bitget")
    return value


def _target(order: OrderSpec) -> dict[str, str]:
    if (venue_id := order.venue_order_id) is not None and venue_id != "":
        return {"orderId": _plain(venue_id, "order.venue_order_id")}
    if (client_id := _client_id(order)) is not None:
        return {"clientOid": client_id}
    raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")


def _get(path: str, params: Mapping[str, str]) -> Call:
    """A GET with its parameters sorted by name (the order Bitget's SDKs sign)."""
    return Call("GET", path, params=tuple(sorted(params.items())))


def parse_permissions(
    status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """``spot/account/info``: ``data.authorities`` lists the key's permission codes."""
    data = pm.json_object(status, body)
    code, info = data.get("code"), data.get("data")
    if status != 200 or code != "00000" or not isinstance(info, dict):
        raise pm.refused(status, str(code or ""))
    authorities = info.get("authorities")
    if not isinstance(authorities, list) or not all(isinstance(a, str) for a in authorities):
        raise pm.venue_error("permission answer lacks authorities", status)
    scopes, unknown = pm.scopes_for_tokens(authorities, vocabulary)
    raw = {"authorities": ",".join(authorities)[:256]}
    pm.copy_fields(raw, info, ("userId", "ips", "traderType"), str, 256)
    pm.copy_fields(raw, info, ("parentId",), (str, int), 64)
    if unknown:
        raw["unknownPermissions"] = ",".join(unknown)[:512]
    return PermissionReport(scopes=frozenset(scopes), raw=raw)


SPEC = VenueSpec(
    venue=Venue.BITGET,
    label="Bitget",
    urls=dict.fromkeys(Environment, URL),
    endpoints=Endpoints(allowed=ALLOWED, blocked_words=BLOCKED_WORDS),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256}),
    scheme=ph.PrehashHeaders(
        timestamp=ph.epoch_ms, prehash=ph.PATH_PREHASH, encoding="base64",
        headers=(("ACCESS-KEY", "key"), ("ACCESS-SIGN", "sign"),
                 ("ACCESS-TIMESTAMP", "timestamp"), ("ACCESS-PASSPHRASE", "passphrase")),
        max_age_ms=MAX_TIMESTAMP_AGE_MS,
        demo_header=("paptrading", "1"),
    ),
    mapping=orders,
    permissions=Permissions(Call("GET", PERMISSION_PATH), parse_permissions),
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
