"""Bybit v5 (``api.bybit.com``): HMAC-SHA256 and RSA keys, detached signing.

Signature (reference §5.2, Bybit v5 guide; ``schemes/prehash_headers.py``)::

    prehash     = timestamp + api_key + recv_window + (query_string | json_body)
    X-BAPI-SIGN = hex(HMAC_SHA256(secret, prehash))          # system-generated keys
                | base64(RSASSA_PKCS1_v1_5_SHA256(key, prehash))  # self-generated RSA keys

Headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW``, ``X-BAPI-SIGN``;
``expire_at_ms = timestamp + recv_window`` (the venue refuses it after that).

The product line is the required extra ``category`` (spot, linear, inverse, option) on every
order operation. Parameter order (JSON keys and query parameters):

=================  =================================  ========================================
operation          request                            parameters
=================  =================================  ========================================
place              ``POST /v5/order/create``          category, symbol, side, orderType, qty,
                                                      marketUnit (spot market only),
                                                      price, triggerPrice, triggerDirection,
                                                      orderFilter, timeInForce, orderLinkId,
                                                      extras sorted by name
amend              ``POST /v5/order/amend``           category, symbol, orderId, orderLinkId,
                                                      qty, price, triggerPrice
cancel             ``POST /v5/order/cancel``          category, symbol, orderId, orderLinkId
query order        ``GET /v5/order/realtime``         category, symbol, orderId, orderLinkId
open orders        ``GET /v5/order/realtime``         category, symbol, baseCoin, settleCoin
account            ``GET /v5/account/wallet-balance`` accountType (extra, default UNIFIED)
permissions        ``GET /v5/user/query-api``         -
=================  =================================  ========================================

Triggered orders: derivatives get ``triggerDirection`` (stop buy / take-profit sell trigger on a
rise = 1, the others on a fall = 2); spot gets ``orderFilter=StopOrder``.

Units (Bybit v5 "Place Order", ``qty`` and ``marketUnit``): spot limit orders and every
``linear``/``option`` order read ``qty`` in the base coin, ``inverse`` orders in contracts (USD);
a spot *market* buy reads ``qty`` in the quote coin unless ``marketUnit`` says otherwise (UTA
accounts). So every spot market order (triggered ones too) carries ``marketUnit`` explicitly:
``baseCoin`` for ``quantity``, ``quoteCoin`` for ``quote_quantity``; ``quote_quantity`` is refused
for anything but spot market orders, and ``marketUnit`` is reserved (a router cannot set it).
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

PERMISSION_PATH = "/v5/user/query-api"
ALLOWED = frozenset(
    {("POST", f"/v5/order/{name}") for name in (
        "create", "amend", "cancel", "cancel-all", "create-batch", "amend-batch", "cancel-batch",
        "pre-check", "disconnected-cancel-all")}
    | {("GET", path) for path in (
        "/v5/order/realtime", "/v5/order/history", "/v5/execution/list", "/v5/position/list",
        "/v5/account/wallet-balance", PERMISSION_PATH)}
)  # fmt: skip
_CATEGORIES = frozenset({"spot", "linear", "inverse", "option"})
_TIFS = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_TRUE_FALSE = frozenset({"true", "false"})
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "category": _CATEGORIES,
    "positionIdx": frozenset({"0", "1", "2"}),
    "reduceOnly": _TRUE_FALSE,
    "closeOnTrigger": _TRUE_FALSE,
    "mmp": _TRUE_FALSE,
    "smpType": frozenset({"None", "CancelMaker", "CancelTaker", "CancelBoth"}),
    "triggerBy": frozenset({"LastPrice", "IndexPrice", "MarkPrice"}),
}
_CATEGORY_ONLY: Mapping[str, sc.ExtraRule] = {"category": _CATEGORIES}
_OPEN_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "category": _CATEGORIES, "baseCoin": sc.matches(r"[A-Z0-9]{1,20}"),
    "settleCoin": sc.matches(r"[A-Z0-9]{1,20}"),
}  # fmt: skip
_ACCOUNT_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "accountType": frozenset({"UNIFIED", "CONTRACT", "SPOT"})
}
RESERVED = frozenset(
    {"symbol", "side", "orderType", "qty", "marketUnit", "price", "triggerPrice",
     "triggerDirection", "orderFilter", "timeInForce", "orderLinkId", "orderId", "timestamp",
     "sign", "api_key", "recv_window"}
)  # fmt: skip

# Tokens from GET /v5/user/query-api (bybit-exchange/docs v5/user/apikey-info and update-api):
# category names and their permission values.
SCOPE_VOCABULARY = vocabulary(
    read=("read", "readOnly", "Read-Only", "Exchange", "ExchangeHistory", "NFT",
          "NFTQueryProductList", "Affiliate"),
    trade=("trade", "ContractTrade", "Order", "Position", "Spot", "SpotTrade", "Options",
           "OptionsTrade", "Derivatives", "DerivativesTrade", "CopyTrading", "BlockTrade"),
    withdraw=("Withdraw",),
    transfer=("AccountTransfer", "SubMemberTransfer", "SubMemberTransferList", "Earn", "FiatP2P",
              "FiatBybitPay", "FiatConvertBroker"),
    combined={"Read-Write": frozenset({Scope.READ, Scope.TRADE}),
              "Wallet": frozenset({Scope.WITHDRAW, Scope.TRANSFER})},
)  # fmt: skip


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.QUERY_ACCOUNT:
        extras = dict(sc.checked_extras(order.extras, _ACCOUNT_EXTRAS, RESERVED))
        account_type = extras.get("accountType", "UNIFIED")
        return Call("GET", "/v5/account/wallet-balance", (("accountType", account_type),))
    rules = {Operation.PLACE_ORDER: _PLACE_EXTRAS, Operation.QUERY_OPEN_ORDERS: _OPEN_EXTRAS}
    extras = dict(sc.checked_extras(order.extras, rules.get(op, _CATEGORY_ONLY), RESERVED))
    category = extras.pop("category", None)
    if category is None:
        raise InvalidArgument("order.extras", "category is required for Bybit orders")
    params: dict[str, Any] = {"category": category}
    name = sc.symbol(order, required=op is not Operation.QUERY_OPEN_ORDERS)
    if name is not None:
        params["symbol"] = name
    if op is Operation.PLACE_ORDER:
        return Call("POST", "/v5/order/create", json=_place(order, params, extras))
    if op is Operation.QUERY_OPEN_ORDERS:
        fields = params | dict(sorted(extras.items()))
        return Call.query_or_json("GET", "/v5/order/realtime", fields)
    params |= _target(order)
    if op is Operation.CANCEL_ORDER:
        return Call("POST", "/v5/order/cancel", json=params)
    if op is Operation.QUERY_ORDER:
        return Call.query_or_json("GET", "/v5/order/realtime", params)
    if op is Operation.AMEND_ORDER:
        changes = {
            key: sc.positive_decimal(value, field)
            for key, value, field in (("qty", order.quantity, "order.quantity"),
                                      ("price", order.price, "order.price"),
                                      ("triggerPrice", order.stop_price, "order.stop_price"))
            if value is not None
        }  # fmt: skip
        if not changes:
            raise InvalidArgument("order.quantity", "or a price is required to amend an order")
        return Call("POST", "/v5/order/amend", json=params | changes)
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec, params: dict[str, Any], extras: dict[str, str]) -> dict[str, Any]:
    kind = sc.check_place_shape(order)
    assert order.side is not None  # checked by check_place_shape
    params["side"] = "Buy" if order.side is Side.BUY else "Sell"
    params["orderType"] = "Limit" if kind in sc.LIMIT_PRICED else "Market"
    spot_market = params["category"] == "spot" and params["orderType"] == "Market"
    if order.quote_quantity is None:
        params["qty"] = sc.positive_decimal(order.quantity, "order.quantity")
    elif spot_market:
        params["qty"] = sc.positive_decimal(order.quote_quantity, "order.quote_quantity")
    else:
        sc.no_quote_size(order, "Bybit takes a quote-sized qty on spot market orders only")
    if spot_market:  # Bybit's default for spot market buys is the quote coin: always pin it
        params["marketUnit"] = "baseCoin" if order.quote_quantity is None else "quoteCoin"
    if order.price is not None:
        params["price"] = sc.positive_decimal(order.price, "order.price")
    if kind in sc.TRIGGERED:
        params["triggerPrice"] = sc.positive_decimal(order.stop_price, "order.stop_price")
        if params["category"] == "spot":
            params["orderFilter"] = "StopOrder"
        else:
            stop = kind in (OrderType.STOP_LOSS, OrderType.STOP_LIMIT)
            params["triggerDirection"] = 1 if stop == (order.side is Side.BUY) else 2
    if order.time_in_force is not None:
        tif = _TIFS.get(order.time_in_force)
        if tif is None:
            raise InvalidArgument(
                "order.time_in_force", f"{order.time_in_force.value} is not offered by Bybit"
            )
        params["timeInForce"] = tif
    link_id = sc.order_id(order.client_order_id, "order.client_order_id")
    if link_id is not None:
        params["orderLinkId"] = link_id
    for key, value in sorted(extras.items()):
        typed: Any = value == "true" if value in _TRUE_FALSE else value
        params[key] = int(value) if key == "positionIdx" else typed
    return params


def _target(order: OrderSpec) -> dict[str, str]:
    target = {}
    if (venue_id := sc.order_id(order.venue_order_id, "order.venue_order_id")) is not None:
        target["orderId"] = venue_id
    if (link_id := sc.order_id(order.client_order_id, "order.client_order_id")) is not None:
        target["orderLinkId"] = link_id
    if not target:
        raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")
    return target


def parse_permissions(
    status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """``query-api``: permission categories and their entries, plus ``readOnly``."""
    data = pm.json_object(status, body)
    code, result = data.get("retCode"), data.get("result")
    if status != 200 or code != 0 or not isinstance(result, dict):
        raise pm.refused(status, str(code or ""))
    permissions, read_only = result.get("permissions"), result.get("readOnly")
    if not isinstance(permissions, dict) or read_only not in (0, 1):
        raise pm.venue_error("permission answer lacks permissions or readOnly", status)
    tokens: list[str] = []
    raw = {"readOnly": str(read_only)}
    for category, entries in permissions.items():
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise pm.venue_error("permission answer has a malformed category", status)
        if entries:
            tokens += [str(category), *entries]
            raw[f"permissions.{category}"[:64]] = ",".join(entries)[:256]
    scopes, unknown = pm.scopes_for_tokens(tokens, vocabulary)
    scopes.add(Scope.READ)  # "Any permission can access this endpoint": every key reads
    if read_only == 1:
        scopes.discard(Scope.TRADE)
    pm.copy_fields(raw, result, ("type", "deadlineDay", "expiredAt", "createdAt", "isMaster",
                                 "uta", "note"), (str, int, bool), 128)  # fmt: skip
    if isinstance(result.get("ips"), list):
        raw["ips"] = ",".join(str(ip) for ip in result["ips"])[:512]
    if unknown:
        raw["unknownPermissions"] = ",".join(unknown)[:512]
    return PermissionReport(scopes=frozenset(scopes), raw=raw)


SPEC = VenueSpec(
    venue=Venue.BYBIT,
    label="Bybit",
    urls={
        Environment.LIVE: "https://api.bybit.com",
        Environment.TESTNET: "https://api-testnet.bybit.com",
        Environment.PAPER: "https://api-demo.bybit.com",  # Bybit demo trading
    },
    endpoints=Endpoints(
        allowed=ALLOWED,
        blocked_words=("/v5/asset/", "withdraw", "transfer", "/v5/earn", "fiat", "loan",
                       "broker", "sub-member", "submember", "sub-api"),
        guarded={"/v5/user/": frozenset({("GET", PERMISSION_PATH)})},
    ),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.RSA}),
    generatable=frozenset({KeyAlgorithm.RSA}),
    scheme=ph.PrehashHeaders(
        timestamp=ph.epoch_ms, prehash=ph.BYBIT_PREHASH, encoding="hex",
        headers=(("X-BAPI-API-KEY", "key"), ("X-BAPI-TIMESTAMP", "timestamp"),
                 ("X-BAPI-RECV-WINDOW", "window"), ("X-BAPI-SIGN", "sign")),
    ),
    mapping=orders,
    permissions=Permissions(Call("GET", PERMISSION_PATH), parse_permissions),
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
