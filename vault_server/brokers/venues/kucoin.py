"""KuCoin spot (``api.kucoin.com``, HF trading): HMAC-SHA256 + passphrase, detached signing.

Signature (KuCoin "Authentication"; reference broker-breadth §1; ``schemes/prehash_headers.py``)::

    prehash            = timestamp + METHOD + endpoint[?query] + body     # timestamp: epoch ms
    KC-API-SIGN        = base64(HMAC_SHA256(secret, prehash))
    KC-API-PASSPHRASE  = base64(HMAC_SHA256(secret, passphrase))          # API key version 2
    KC-API-KEY-VERSION = 2

Headers ``KC-API-KEY``, ``KC-API-SIGN``, ``KC-API-TIMESTAMP``, ``KC-API-PASSPHRASE``,
``KC-API-KEY-VERSION``; ``Content-Type: application/json`` with a body. Unlike OKX and Bitget,
the passphrase never goes on the wire: version-2 keys send its HMAC under the secret, which the
router cannot turn back into the passphrase or the secret.

Freshness: KuCoin refuses a ``KC-API-TIMESTAMP`` more than 5 s from its clock, so
``expire_at_ms = now + min(recv_window, 5000)``.

Environments: LIVE only (KuCoin retired its sandbox); PAPER and TESTNET are refused.

Units (KuCoin "Add Order (HF)"): ``size`` is base currency; a *market* order takes either
``size`` (base) or ``funds`` (quote), for buys and sells alike, so ``quantity`` is sent as
``size`` and ``quote_quantity`` as ``funds`` (market orders only; refused on limit orders).

=================  ===========================================================  ==============
operation          request                                                      parameters
=================  ===========================================================  ==============
place              ``POST /api/v1/hf/orders``                                   clientOid,
                                                                                symbol, side,
                                                                                type, size |
                                                                                funds, price,
                                                                                timeInForce,
                                                                                extras sorted
cancel             ``DELETE /api/v1/hf/orders/{orderId}`` or                    symbol (query)
                   ``…/hf/orders/client-order/{clientOid}``
amend              ``POST /api/v1/hf/orders/alter``                             symbol,
                                                                                orderId |
                                                                                clientOid,
                                                                                newSize,
                                                                                newPrice
query order        ``GET`` the cancel paths                                     symbol
open orders        ``GET /api/v1/hf/orders/active`` (a symbol) or               symbol
                   ``GET /api/v1/hf/orders/active/symbols``
account            ``GET /api/v1/accounts``                                     currency, type
permissions        ``GET /api/v1/user/api-key``                                 -
=================  ===========================================================  ==============

Permissions: ``permission`` of ``/api/v1/user/api-key`` is a comma list (General, Spot, Margin,
Futures, Earn, InnerTransfer, Transfer, Withdrawal …); ``Withdrawal``/``Transfer``/
``InnerTransfer``/``Earn`` count as fund-moving, so such a key is quarantined at attestation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
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
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.schemes import prehash_headers as ph
from vault_server.brokers.spec import Call, Permissions, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import InvalidArgument, OperationNotSupported

URL = "https://api.kucoin.com"
PERMISSION_PATH = "/api/v1/user/api-key"
MAX_TIMESTAMP_AGE_MS = 5_000
_H = "/api/v1/hf/orders"
ALLOWED = frozenset(
    {("POST", _H), ("POST", _H + "/alter"), ("GET", _H + "/active"),
     ("GET", _H + "/active/symbols"), ("GET", "/api/v1/accounts"), ("GET", PERMISSION_PATH)}
)  # fmt: skip
ORDER_PATH = re.compile(re.escape(_H) + r"/(?:client-order/)?[A-Za-z0-9_-]{1,64}")
_CLIENT_OID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_SYMBOL = sc.matches(r"[A-Z0-9]{1,20}-[A-Z0-9]{1,20}")
_TIFS = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_TRUE = frozenset({"true"})
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "postOnly": _TRUE, "hidden": _TRUE, "stp": frozenset({"CN", "CO", "CB", "DC"}),
    "remark": sc.matches(r"[A-Za-z0-9 _.-]{1,20}"),
}  # fmt: skip
_ACCOUNT_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "currency": sc.matches(r"[A-Z0-9]{1,20}"), "type": frozenset({"main", "trade", "margin"}),
}  # fmt: skip
RESERVED = frozenset({"clientOid", "symbol", "side", "type", "size", "funds", "price",
                      "timeInForce", "orderId", "newSize", "newPrice", "cancelAfter",
                      "tradeType"})  # fmt: skip

# ``permission`` tokens of GET /api/v1/user/api-key and the names on KuCoin's key page.
SCOPE_VOCABULARY = vocabulary(
    read=("General", "read"),
    trade=("Spot", "Margin", "Futures", "trade", "Trade", "HFTrade"),
    withdraw=("Withdrawal", "Withdraw"),
    transfer=("Transfer", "InnerTransfer", "Earn", "FlexTransfers"),
)


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.QUERY_ACCOUNT:
        extras = sc.checked_extras(order.extras, _ACCOUNT_EXTRAS, ())  # "type" is allowed here
        return Call("GET", "/api/v1/accounts", tuple(extras))
    if op is not Operation.PLACE_ORDER:
        sc.no_extras(order)
    if op is Operation.QUERY_OPEN_ORDERS:
        if (name := sc.symbol(order, required=False)) is None:
            return Call("GET", _H + "/active/symbols")
        return Call("GET", _H + "/active", (("symbol", _symbol(name)),))
    symbol = _symbol(sc.symbol(order))
    if op is Operation.PLACE_ORDER:
        return Call("POST", _H, json=_place(order, symbol))
    if op is Operation.AMEND_ORDER:
        params: dict[str, Any] = {"symbol": symbol} | _target(order)
        changes = {key: sc.positive_decimal(value, field) for key, value, field in (
            ("newSize", order.quantity, "order.quantity"),
            ("newPrice", order.price, "order.price")) if value is not None}  # fmt: skip
        if not changes:
            raise InvalidArgument("order.quantity", "or order.price is required to amend")
        if order.stop_price is not None or order.quote_quantity is not None:
            raise InvalidArgument("order.stop_price", "only size and price amend on KuCoin")
        return Call("POST", _H + "/alter", json=params | changes)
    target = _target(order)
    path = f"{_H}/{target['orderId']}" if "orderId" in target else (
        f"{_H}/client-order/{target['clientOid']}")  # fmt: skip
    if op is Operation.CANCEL_ORDER:
        return Call("DELETE", path, (("symbol", symbol),))
    if op is Operation.QUERY_ORDER:
        return Call("GET", path, (("symbol", symbol),))
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _symbol(name: str | None) -> str:
    if name is None or not _SYMBOL(name):
        raise InvalidArgument("order.symbol", "must be a KuCoin symbol such as BTC-USDT")
    return name


def _place(order: OrderSpec, symbol: str) -> dict[str, Any]:
    kind = sc.check_place_shape(order)
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
    if kind not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidArgument("order.order_type", f"{kind.value} needs KuCoin stop orders")
    params: dict[str, Any] = {}
    if (client_oid := _client_oid(order)) is not None:
        params["clientOid"] = client_oid
    params |= {"symbol": symbol, "side": "buy" if order.side is Side.BUY else "sell",
               "type": kind.value}  # fmt: skip
    if order.quote_quantity is not None:
        if kind is not OrderType.MARKET:
            sc.no_quote_size(order, "KuCoin takes quote-sized funds on market orders only")
        params["funds"] = sc.positive_decimal(order.quote_quantity, "order.quote_quantity")
    else:
        params["size"] = sc.positive_decimal(order.quantity, "order.quantity")
    if kind is OrderType.LIMIT:
        params["price"] = sc.positive_decimal(order.price, "order.price")
        tif = order.time_in_force
        if tif is not None and tif not in _TIFS:
            raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered by KuCoin")
        params["timeInForce"] = _TIFS[tif or TimeInForce.GTC]
    elif extras.keys() & {"postOnly", "hidden"}:
        raise InvalidArgument("order.extras", "postOnly and hidden need a limit order")
    typed = {k: (True if v == "true" else v) for k, v in sorted(extras.items())}
    return params | typed


def _client_oid(order: OrderSpec) -> str | None:
    value = order.client_order_id
    if value is None or value == "":
        return None
    if not _CLIENT_OID.fullmatch(value):
        raise InvalidArgument("order.client_order_id", "must be 1-40 of A-Z a-z 0-9 _ - on KuCoin")
    return value


def _target(order: OrderSpec) -> dict[str, str]:
    venue_id = hc.path_id(order.venue_order_id, "order.venue_order_id", required=False)
    if venue_id is not None:
        return {"orderId": venue_id}
    if (client_oid := _client_oid(order)) is not None:
        return {"clientOid": client_oid}
    raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")


def parse_permissions(
    status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """``user/api-key``: ``permission`` is a comma list of the key's permissions."""
    data = pm.json_object(status, body)
    code, row = data.get("code"), data.get("data")
    if status != 200 or code != "200000" or not isinstance(row, dict):
        raise pm.refused(status, str(code or ""))
    if not isinstance(perm := row.get("permission"), str):
        raise pm.venue_error("permission answer lacks permission", status)
    tokens = [token.strip() for token in perm.split(",") if token.strip()]
    scopes, unknown = pm.scopes_for_tokens(tokens, vocabulary)
    raw = {"permission": perm[:256]}
    pm.copy_fields(raw, row, ("remark", "apiVersion", "ipWhitelist", "createdAt", "uid",
                              "isMaster"), (str, int, bool), 256)  # fmt: skip
    if unknown:
        raw["unknownPermissions"] = ",".join(unknown)[:512]
    return PermissionReport(scopes=frozenset(scopes), raw=raw)


SPEC = VenueSpec(
    venue=Venue.KUCOIN,
    label="KuCoin",
    urls={Environment.LIVE: URL},
    missing_environment="KuCoin has no sandbox: live keys only",
    endpoints=Endpoints(
        allowed=ALLOWED,
        patterns=((methods("GET", "DELETE"), ORDER_PATH),),
        blocked_words=("withdraw", "transfer", "deposit", "/sub/", "sub-user", "subuser",
                       "/earn/", "/margin/", "borrow", "repay", "lend", "purchase", "redeem",
                       "convert", "/broker/", "/ua/", "/v3/", "/accounts/"),
        guarded={"api-key": frozenset({("GET", PERMISSION_PATH)}),
                 "/user/": frozenset({("GET", PERMISSION_PATH)})},
    ),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256}),
    scheme=ph.PrehashHeaders(
        timestamp=ph.epoch_ms, prehash=ph.PATH_PREHASH, encoding="base64",
        headers=(("KC-API-KEY", "key"), ("KC-API-SIGN", "sign"),
                 ("KC-API-TIMESTAMP", "timestamp"), ("KC-API-PASSPHRASE", "signed_passphrase")),
        max_age_ms=MAX_TIMESTAMP_AGE_MS,
        static_headers=(("KC-API-KEY-VERSION", "2"),),
    ),
    mapping=orders,
    permissions=Permissions(Call("GET", PERMISSION_PATH), parse_permissions),
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
