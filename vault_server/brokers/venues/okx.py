"""OKX v5 (``www.okx.com``): HMAC-SHA256 + passphrase, detached signing.

Signature (reference §6.1, OKX "REST Authentication"; ``schemes/prehash_headers.py``)::

    timestamp      = ISO-8601 UTC with milliseconds, e.g. "2020-12-08T09:08:57.715Z"
    prehash        = timestamp + METHOD + requestPath + body
                     # requestPath carries "?query" for GET; body is the exact JSON sent, or ""
    OK-ACCESS-SIGN = base64(HMAC_SHA256(secret, prehash))

Headers: ``OK-ACCESS-KEY``, ``OK-ACCESS-SIGN``, ``OK-ACCESS-TIMESTAMP``,
``OK-ACCESS-PASSPHRASE`` (the passphrase in plain text: the venue's protocol; the HMAC secret
never leaves the vault), ``Content-Type: application/json`` on POST, ``x-simulated-trading: 1`` in
paper/testnet (OKX demo trading uses the live host).

Freshness: OKX refuses a request whose signed timestamp is more than ~30 s old (50102 "Timestamp
request expired"), so ``expire_at_ms = now + min(recv_window, 30000)``. Place and amend also carry
the ``expTime`` header (same instant), which OKX honours for those endpoints, but ``expTime`` is
*not* in the prehash: a router can strip it (or change it), and OKX offers no signed expiry for
REST orders. What the vault guarantees is the signed ``OK-ACCESS-TIMESTAMP``.

Units (OKX "Place order", ``sz`` and ``tgtCcy``): see :func:`_size_unit`. FUTURES/SWAP/OPTION
``sz`` is a number of contracts, which the vault passes as ``quantity`` unchanged.

=================  ====================================  =====================================
operation          request                               parameters (in this order)
=================  ====================================  =====================================
place              ``POST /api/v5/trade/order``          instId, tdMode, side, ordType, sz,
                                                         tgtCcy, px, clOrdId, extras sorted by
                                                         name
cancel             ``POST /api/v5/trade/cancel-order``   instId, ordId | clOrdId
amend              ``POST /api/v5/trade/amend-order``    instId, ordId | clOrdId, newSz, newPx,
                                                         cxlOnFail, reqId
query order        ``GET /api/v5/trade/order``           instId, ordId | clOrdId
open orders        ``GET /api/v5/trade/orders-pending``  instType, instId
account            ``GET /api/v5/account/balance``       ccy
permissions        ``GET /api/v5/account/config``        -
=================  ====================================  =====================================

``tdMode`` defaults to ``cash`` (spot); ``ordType`` follows the order type and time in force
(limit GTC → ``limit``, or ``post_only`` with extra ``postOnly=true``; IOC → ``ioc``; FOK →
``fok``). Trigger orders need OKX's algo endpoint and are refused. ``/api/v5/asset/transfer`` is
blocked although OKX's *Trade* permission covers "funding transfer" (reference §6.3).
"""

from __future__ import annotations

import re
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

URL = "https://www.okx.com"  # demo trading: the same host plus ``x-simulated-trading: 1``
PERMISSION_PATH = "/api/v5/account/config"
MAX_TIMESTAMP_AGE_MS = 30_000
_T = "/api/v5/trade/"
ALLOWED = frozenset(
    {("POST", _T + name) for name in (
        "order", "batch-orders", "cancel-order", "cancel-batch-orders", "amend-order",
        "amend-batch-orders", "close-position", "order-algo")}
    | {("GET", path) for path in (
        _T + "order", _T + "orders-pending", _T + "orders-history", _T + "fills",
        "/api/v5/account/balance", "/api/v5/account/positions", PERMISSION_PATH)}
)  # fmt: skip
_CL_ORD_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_TRUE_FALSE = frozenset({"true", "false"})
_CCY = sc.matches(r"[A-Z0-9]{1,16}")
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "tdMode": frozenset({"cash", "cross", "isolated", "spot_isolated"}),
    "posSide": frozenset({"long", "short", "net"}),
    "reduceOnly": _TRUE_FALSE,
    "ccy": _CCY,
    "stpMode": frozenset({"cancel_maker", "cancel_taker", "cancel_both"}),
    "postOnly": frozenset({"true"}),
}
_AMEND_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "cxlOnFail": _TRUE_FALSE, "reqId": sc.matches(r"[A-Za-z0-9]{1,32}"),
}  # fmt: skip
_OPEN_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "instType": frozenset({"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"})
}
_ACCOUNT_EXTRAS: Mapping[str, sc.ExtraRule] = {"ccy": _CCY}
RESERVED = frozenset({"instId", "side", "ordType", "sz", "px", "clOrdId", "ordId", "newSz",
                      "newPx", "tag", "tgtCcy"})  # fmt: skip
_LIMIT_ORD_TYPES = {None: "limit", TimeInForce.GTC: "limit", TimeInForce.IOC: "ioc",
                    TimeInForce.FOK: "fok"}  # fmt: skip

# Tokens of ``perm`` in GET /api/v5/account/config ("read_only,withdraw,trade") and UI names.
SCOPE_VOCABULARY = vocabulary(
    read=("read_only", "read"), trade=("trade",), withdraw=("withdraw",), transfer=("transfer",)
)

okx_timestamp = ph.iso_ms


okx_signature = ph.path_prehash_base64


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.QUERY_ACCOUNT:
        ccy = sc.checked_extras(order.extras, _ACCOUNT_EXTRAS, RESERVED)
        return Call("GET", "/api/v5/account/balance", tuple(ccy))
    if op is Operation.QUERY_OPEN_ORDERS:
        query = dict(sc.checked_extras(order.extras, _OPEN_EXTRAS, RESERVED))
        if (name := sc.symbol(order, required=False)) is not None:
            query["instId"] = name
        return Call.query_or_json("GET", _T + "orders-pending", query)
    params: dict[str, Any] = {"instId": sc.symbol(order)}
    if op is Operation.PLACE_ORDER:
        return Call("POST", _T + "order", json=_place(order, params))
    if op is Operation.AMEND_ORDER:
        extras = dict(sc.checked_extras(order.extras, _AMEND_EXTRAS, RESERVED))
        params |= _target(order)
        changes = {key: sc.positive_decimal(value, field) for key, value, field in (
            ("newSz", order.quantity, "order.quantity"), ("newPx", order.price, "order.price"))
            if value is not None}  # fmt: skip
        if not changes:
            raise InvalidArgument("order.quantity", "or order.price is required to amend")
        if order.stop_price is not None:
            raise InvalidArgument("order.stop_price", "cannot be amended on OKX orders")
        return Call("POST", _T + "amend-order", json=params | changes | _typed(extras))
    sc.no_extras(order)
    params |= _target(order)
    if op is Operation.CANCEL_ORDER:
        return Call("POST", _T + "cancel-order", json=params)
    if op is Operation.QUERY_ORDER:
        return Call.query_or_json("GET", _T + "order", params)
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec, params: dict[str, Any]) -> dict[str, Any]:
    kind = sc.check_place_shape(order)
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
    post_only = extras.pop("postOnly", None) == "true"
    if kind is OrderType.MARKET:
        ord_type = "market"
    elif kind is OrderType.LIMIT:
        tif = order.time_in_force
        if tif is not None and tif not in _LIMIT_ORD_TYPES:
            raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered by OKX")
        gtc = tif in (None, TimeInForce.GTC)
        ord_type = "post_only" if post_only and gtc else _LIMIT_ORD_TYPES[tif]
    else:
        raise InvalidArgument("order.order_type", f"{kind.value} needs OKX algo orders")
    if post_only and ord_type != "post_only":
        raise InvalidArgument("order.extras", "postOnly needs a GTC limit order")
    params["tdMode"] = extras.pop("tdMode", "cash")
    params["side"] = "buy" if order.side is Side.BUY else "sell"
    params["ordType"] = ord_type
    target = _size_unit(order, kind, params["instId"], params["tdMode"])
    if order.quote_quantity is not None:
        params["sz"] = sc.positive_decimal(order.quote_quantity, "order.quote_quantity")
    else:
        params["sz"] = sc.positive_decimal(order.quantity, "order.quantity")
    if target is not None:
        params["tgtCcy"] = target
    if order.price is not None:
        params["px"] = sc.positive_decimal(order.price, "order.price")
    if (client_id := _client_id(order)) is not None:
        params["clOrdId"] = client_id
    return params | _typed(extras)


def _size_unit(order: OrderSpec, kind: OrderType, inst_id: str, td_mode: str) -> str | None:
    """The ``tgtCcy`` to send (None: OKX has no selector here), refusing sizes OKX would misread.

    OKX ``sz`` (Place order): SPOT/MARGIN limit orders are base currency; SPOT market orders
    follow ``tgtCcy`` (default ``quote_ccy`` for buys!); MARGIN market buys are quote and sells
    base, with no selector; FUTURES/SWAP/OPTION are contracts. A two-part instId (``BTC-USDT``)
    is SPOT with ``tdMode`` cash/spot_isolated; with cross/isolated it may be MARGIN, so only
    the sizes both readings agree on are accepted there.
    """
    quote = order.quote_quantity is not None
    spot_pair = inst_id.count("-") == 1
    if kind is OrderType.MARKET and spot_pair:
        if td_mode in ("cash", "spot_isolated"):
            return "quote_ccy" if quote else "base_ccy"
        if order.side is Side.BUY and not quote:
            raise InvalidArgument(
                "order.quantity",
                "OKX reads margin market buys in the quote currency: use quote_quantity",
            )
        if order.side is Side.SELL and quote:
            raise InvalidArgument(
                "order.quote_quantity", "OKX reads margin market sells in the base currency"
            )
        return None
    sc.no_quote_size(order, "OKX takes a quote-sized sz on SPOT/MARGIN market orders only")
    return None


def _client_id(order: OrderSpec) -> str | None:
    value = order.client_order_id
    if value is None or value == "":
        return None
    if not _CL_ORD_ID.fullmatch(value):
        raise InvalidArgument("order.client_order_id", "must be 1-32 letters or digits on OKX")
    return value


def _target(order: OrderSpec) -> dict[str, str]:
    if (venue_id := sc.order_id(order.venue_order_id, "order.venue_order_id")) is not None:
        return {"ordId": venue_id}
    if (client_id := _client_id(order)) is not None:
        return {"clOrdId": client_id}
    raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")


def _typed(extras: Mapping[str, str]) -> dict[str, Any]:
    """Extras in name order; ``true``/``false`` become JSON booleans (OKX's declared types)."""
    return {k: (v == "true" if v in _TRUE_FALSE else v) for k, v in sorted(extras.items())}


def parse_permissions(
    status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """``account/config``: one row whose ``perm`` lists the key's permissions."""
    data = pm.json_object(status, body)
    code, rows = data.get("code"), data.get("data")
    if status != 200 or code != "0" or not isinstance(rows, list) or len(rows) != 1:
        raise pm.refused(status, str(code or ""))
    row = rows[0]
    if not isinstance(row, dict) or not isinstance(perm := row.get("perm"), str):
        raise pm.venue_error("permission answer lacks perm", status)
    tokens = [token.strip() for token in perm.split(",") if token.strip()]
    scopes, unknown = pm.scopes_for_tokens(tokens, vocabulary)
    raw = {"perm": perm[:256]}
    pm.copy_fields(raw, row, ("label", "ip", "acctLv", "posMode", "mainUid", "uid"), str, 256)
    if unknown:
        raw["unknownPermissions"] = ",".join(unknown)[:512]
    return PermissionReport(scopes=frozenset(scopes), raw=raw)


SPEC = VenueSpec(
    venue=Venue.OKX,
    label="OKX",
    urls=dict.fromkeys(Environment, URL),
    endpoints=Endpoints(
        allowed=ALLOWED,
        blocked_words=("/asset/", "withdraw", "transfer", "/users/", "subaccount", "/finance/",
                       "/broker/", "/fiat/", "convert", "deposit", "apikey"),
    ),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256}),
    scheme=ph.PrehashHeaders(
        timestamp=ph.iso_ms, prehash=ph.PATH_PREHASH, encoding="base64",
        headers=(("OK-ACCESS-KEY", "key"), ("OK-ACCESS-SIGN", "sign"),
                 ("OK-ACCESS-TIMESTAMP", "timestamp"), ("OK-ACCESS-PASSPHRASE", "passphrase")),
        max_age_ms=MAX_TIMESTAMP_AGE_MS,
        expiry_header=("expTime", frozenset({_T + "order", _T + "amend-order"})),
        demo_header=("x-simulated-trading", "1"),
    ),
    mapping=orders,
    permissions=Permissions(Call("GET", PERMISSION_PATH), parse_permissions),
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
