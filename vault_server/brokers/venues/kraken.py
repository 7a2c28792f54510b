"""Kraken Spot REST (``api.kraken.com``): HMAC-SHA512 with a base64 secret, detached signing.

Scheme, nonce and ``deadline`` rules: ``schemes/hmac_nonce.py``. Every call is
``POST /0/private/<Method>``; parameters below are sorted by name after ``nonce`` when signed.

=================  ==========================  ============================================
operation          method                      parameters
=================  ==========================  ============================================
place              ``AddOrder``                pair, type, ordertype, volume, price, price2,
                                               timeinforce, cl_ord_id, deadline, extras
cancel             ``CancelOrder``             txid | cl_ord_id
amend              ``AmendOrder``              txid | cl_ord_id, order_qty, limit_price,
                                               trigger_price, deadline, [post_only]
query order        ``QueryOrders``             txid
open orders        ``OpenOrders``              - (Kraken cannot filter by pair; symbol ignored)
account            ``Balance``                 -
permissions        ``GetApiKeyInfo``           -
=================  ==========================  ============================================

Units (Kraken REST "Add Order"): ``volume`` is in the base asset for every order type and side
unless ``oflags`` carries ``viqc``. ``quantity`` is sent as ``volume`` without ``viqc`` (and
``viqc`` is refused as an extra, so a router cannot flip the unit); ``quote_quantity`` is sent as
``volume`` with ``viqc`` added to ``oflags``, which Kraken supports on market buys only.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from vault_server.brokers.schemes.hmac_nonce import HmacNonce
from vault_server.brokers.spec import Call, Permissions, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import InvalidArgument, OperationNotSupported

PRIVATE = "/0/private/"
ALLOWED_METHODS = frozenset(
    {"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "CancelOrder", "CancelOrderBatch",
     "CancelAll", "CancelAllOrdersAfter", "OpenOrders", "ClosedOrders", "QueryOrders",
     "OrderAmends", "TradesHistory", "QueryTrades", "OpenPositions", "Balance", "BalanceEx",
     "TradeBalance", "GetApiKeyInfo"}
)  # fmt: skip
_ORDER_TYPES = {
    OrderType.MARKET: "market", OrderType.LIMIT: "limit", OrderType.STOP_LOSS: "stop-loss",
    OrderType.STOP_LIMIT: "stop-loss-limit", OrderType.TAKE_PROFIT: "take-profit",
    OrderType.TAKE_PROFIT_LIMIT: "take-profit-limit",
}  # fmt: skip
_TIFS = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC"}
# viqc (quote-currency volume) is refused as an extra: only ``quote_quantity`` may set it.
_OFLAGS = frozenset({"post", "fcib", "fciq", "nompp"})


def _oflags(value: str) -> bool:
    flags = value.split(",")
    return len(set(flags)) == len(flags) and all(f in _OFLAGS for f in flags)


_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "oflags": _oflags,
    "stptype": frozenset({"cancel-newest", "cancel-oldest", "cancel-both"}),
    "reduce_only": frozenset({"true", "false"}),
    "trigger": frozenset({"index", "last"}),
    "userref": sc.matches(r"-?[0-9]{1,10}"),
    "displayvol": sc.matches(r"(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?"),
    "validate": frozenset({"true"}),
    "trading_agreement": frozenset({"agree"}),
}
_AMEND_EXTRAS: Mapping[str, sc.ExtraRule] = {"post_only": frozenset({"true", "false"})}
RESERVED = frozenset(
    {"nonce", "otp", "pair", "type", "ordertype", "volume", "price", "price2", "timeinforce",
     "cl_ord_id", "deadline", "txid", "order_qty", "limit_price", "trigger_price"}
)  # fmt: skip

# GetApiKeyInfo tokens (docs.kraken.com/api-reference/account-data/get-api-key-info) and the
# names the Kraken UI shows for the same permissions.
SCOPE_VOCABULARY = vocabulary(
    read=("read", "query-funds", "Query Funds", "query-open-trades", "Query Open Orders & Trades",
          "query-closed-trades", "Query Closed Orders & Trades", "query-ledger",
          "Query Ledger Entries", "export-data", "Export Data", "create-ws-token",
          "Access WebSockets API"),
    trade=("trade", "modify-trades", "Create & Modify Orders", "Modify Orders", "close-trades",
           "Cancel/Close Orders"),
    withdraw=("withdraw-funds", "Withdraw Funds", "add-withdraw-address",
              "update-withdraw-address"),
    transfer=("add-funds", "Deposit Funds", "earn-funds", "Earn Funds"),
)  # fmt: skip

Params = tuple[tuple[str, str], ...]


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return Call("POST", PRIVATE + "AddOrder", _place(order), timed=True)
    if op is Operation.AMEND_ORDER:
        return Call("POST", PRIVATE + "AmendOrder", _amend(order), timed=True)
    sc.no_extras(order)
    if op is Operation.CANCEL_ORDER:
        return Call("POST", PRIVATE + "CancelOrder", _target(order))
    if op is Operation.QUERY_ORDER:
        txid = sc.order_id(order.venue_order_id, "order.venue_order_id")
        if txid is None:
            raise InvalidArgument("order.venue_order_id", "is required to query a Kraken order")
        return Call("POST", PRIVATE + "QueryOrders", (("txid", txid),))
    if op is Operation.QUERY_OPEN_ORDERS:
        return Call("POST", PRIVATE + "OpenOrders")
    if op is Operation.QUERY_ACCOUNT:
        return Call("POST", PRIVATE + "Balance")
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec) -> Params:
    kind = sc.check_place_shape(order)
    assert order.side is not None  # checked by check_place_shape
    quote = order.quote_quantity is not None
    if quote and (kind is not OrderType.MARKET or order.side is not Side.BUY):
        sc.no_quote_size(order, "Kraken takes a quote volume (oflags=viqc) on market buys only")
    volume = (
        sc.positive_decimal(order.quote_quantity, "order.quote_quantity")
        if quote
        else sc.positive_decimal(order.quantity, "order.quantity")
    )
    params = [
        ("pair", sc.symbol(order) or ""),
        ("type", order.side.value),
        ("ordertype", _ORDER_TYPES[kind]),
        ("volume", volume),
    ]
    if kind in sc.TRIGGERED:  # Kraken: price = trigger, price2 = limit
        params.append(("price", sc.positive_decimal(order.stop_price, "order.stop_price")))
        if order.price is not None:
            params.append(("price2", sc.positive_decimal(order.price, "order.price")))
    elif order.price is not None:
        params.append(("price", sc.positive_decimal(order.price, "order.price")))
    if order.time_in_force is not None:
        tif = _TIFS.get(order.time_in_force)
        if tif is None:
            raise InvalidArgument(
                "order.time_in_force", f"{order.time_in_force.value} is not offered by Kraken"
            )
        params.append(("timeinforce", tif))
    client_id = sc.order_id(order.client_order_id, "order.client_order_id")
    if client_id is not None:
        params.append(("cl_ord_id", client_id))
    extras = sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED)
    if quote:  # the only way to make Kraken read ``volume`` in the quote currency
        flags = dict(extras).get("oflags")
        extras = [(k, v) for k, v in extras if k != "oflags"]
        extras.append(("oflags", f"{flags},viqc" if flags else "viqc"))
    return (*params, *extras)


def _target(order: OrderSpec) -> Params:
    txid = sc.order_id(order.venue_order_id, "order.venue_order_id")
    client_id = sc.order_id(order.client_order_id, "order.client_order_id")
    if (txid is None) == (client_id is None):
        raise InvalidArgument(
            "order.venue_order_id", "exactly one of it and order.client_order_id is required"
        )
    return (("txid", txid),) if txid is not None else (("cl_ord_id", client_id or ""),)


def _amend(order: OrderSpec) -> Params:
    params = list(_target(order))
    for value, name, field in (
        (order.quantity, "order_qty", "order.quantity"),
        (order.price, "limit_price", "order.price"),
        (order.stop_price, "trigger_price", "order.stop_price"),
    ):
        if value is not None:
            params.append((name, sc.positive_decimal(value, field)))
    if len(params) == 1:
        raise InvalidArgument("order.quantity", "or a price is required to amend an order")
    return (*params, *sc.checked_extras(order.extras, _AMEND_EXTRAS, RESERVED))


def parse_permissions(
    status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """``GetApiKeyInfo``: a list of permission tokens."""
    data = pm.json_object(status, body)
    errors, result = data.get("error"), data.get("result")
    if status != 200 or not isinstance(errors, list) or errors:
        code = errors[0] if isinstance(errors, list) and errors else ""
        raise pm.refused(status, str(code))
    tokens = result.get("permissions") if isinstance(result, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise pm.venue_error("permission answer lacks a permissions list", status)
    assert isinstance(result, dict)
    scopes, unknown = pm.scopes_for_tokens(tokens, vocabulary)
    raw = {"permissions": ",".join(tokens)}
    pm.copy_fields(raw, result, ("apiKeyName", "nonceWindow", "validUntil", "queryFrom",
                                 "queryTo", "createdTime", "modifiedTime", "lastUsed"),
                   (str, int), 128)  # fmt: skip
    if isinstance(result.get("ipAllowlist"), list):
        raw["ipAllowlist"] = ",".join(str(ip) for ip in result["ipAllowlist"])[:512]
    if unknown:
        raw["unknownPermissions"] = ",".join(unknown)
    return PermissionReport(scopes=frozenset(scopes), raw=raw)


SPEC = VenueSpec(
    venue=Venue.KRAKEN_SPOT,
    label="Kraken Spot",
    urls={Environment.LIVE: "https://api.kraken.com"},
    missing_environment="Kraken Spot has no paper or testnet environment",
    endpoints=Endpoints(
        allowed=frozenset(("POST", PRIVATE + name) for name in ALLOWED_METHODS),
        blocked_words=("withdraw", "deposit", "transfer", "subaccount", "earn", "wallet",
                       "stake"),
    ),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA512}),
    scheme=HmacNonce(),
    mapping=orders,
    permissions=Permissions(Call("POST", PRIVATE + "GetApiKeyInfo"), parse_permissions),
    needs_nonce=True,
    options={"order_deadline": True},
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)


def KrakenSpotAdapter(*, order_deadline: bool = True) -> SpecAdapter:  # noqa: N802 - was a class
    """Kraken Spot; ``order_deadline=False`` omits ``deadline`` (only to replay §3.2 in tests)."""
    if order_deadline:
        return ADAPTER
    return ADAPTER.variant(scheme=HmacNonce(deadline=False), options={"order_deadline": False})
