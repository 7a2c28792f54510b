"""Alpaca Trading API (``api.alpaca.markets``, paper ``paper-api.alpaca.markets``): proxy only.

Personal keys authenticate with two static headers on every request, ``APCA-API-KEY-ID`` and
``APCA-API-SECRET-KEY`` (reference §7.1): the secret itself travels, nothing is signed, and
Alpaca offers no short-lived token for the Trading API. So the venue is ``proxy_only`` (the
secret header's ``repr`` is masked; only the vault's egress sends it) and
``single_permission_tier`` (a personal key can trade *and*, on crypto accounts, withdraw through
``POST /v2/wallets/transfers``, which is blocked here). There is no permission API.
``expire_at_ms`` is the vault's own freshness window (``now + recv_window``).

=================  =====================================  =====================================
operation          request                                body / query
=================  =====================================  =====================================
place              ``POST /v2/orders``                    symbol, qty, side, type,
                                                          time_in_force, limit_price,
                                                          stop_price, client_order_id,
                                                          extended_hours
amend (replace)    ``PATCH /v2/orders/{order_id}``        qty, limit_price, stop_price,
                                                          time_in_force, client_order_id
cancel             ``DELETE /v2/orders/{order_id}``       -
query order        ``GET /v2/orders/{order_id}``          -
open orders        ``GET /v2/orders``                     status=open[&symbols=...]
account            ``GET /v2/account``                    -
=================  =====================================  =====================================

Order types: market, limit, stop (``STOP_LOSS``), stop_limit; time in force day (default), gtc,
ioc, fok. Order ids are Alpaca's UUIDs.

Units (Alpaca "Create an Order"): ``qty`` is shares (or base coin for crypto) on every type and
side; ``quote_quantity`` becomes ``notional`` (a dollar amount, "cannot work with qty", market
orders only); a replace changes ``qty`` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    Side,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, live_and_practice
from vault_server.core.errors import InvalidArgument, OperationNotSupported

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ORDER_ID = re.compile(_UUID)
ALLOWED = frozenset({("POST", "/v2/orders"), ("GET", "/v2/orders"), ("GET", "/v2/account")})
_TYPES = {OrderType.MARKET: "market", OrderType.LIMIT: "limit", OrderType.STOP_LOSS: "stop",
          OrderType.STOP_LIMIT: "stop_limit"}  # fmt: skip
_TIFS = {None: "day", TimeInForce.DAY: "day", TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc",
         TimeInForce.FOK: "fok"}  # fmt: skip
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {"extended_hours": frozenset({"true", "false"})}
RESERVED = frozenset({"symbol", "qty", "notional", "side", "type", "time_in_force", "limit_price",
                      "stop_price", "client_order_id", "order_class", "trail_price"})  # fmt: skip


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return Call("POST", "/v2/orders", json=_place(order))
    if op is Operation.AMEND_ORDER:
        return Call("PATCH", f"/v2/orders/{_order_id(order)}", json=_replace(order))
    sc.no_extras(order)
    if op is Operation.QUERY_ACCOUNT:
        return Call("GET", "/v2/account")
    if op is Operation.QUERY_OPEN_ORDERS:
        query = [("status", "open")]
        if (name := sc.symbol(order, required=False)) is not None:
            query.append(("symbols", name))
        return Call("GET", "/v2/orders", tuple(query))
    if op is Operation.CANCEL_ORDER:
        return Call("DELETE", f"/v2/orders/{_order_id(order)}")
    if op is Operation.QUERY_ORDER:
        return Call("GET", f"/v2/orders/{_order_id(order)}")
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _order_id(order: OrderSpec) -> str:
    value = order.venue_order_id
    if not value or not _ORDER_ID.fullmatch(value):
        raise InvalidArgument("order.venue_order_id", "must be an Alpaca order id (UUID)")
    return value


def _tif(order: OrderSpec) -> str:
    tif = order.time_in_force
    if tif not in _TIFS:
        shown = tif.value if tif is not None else "none"
        raise InvalidArgument("order.time_in_force", f"{shown} is not offered by Alpaca")
    return _TIFS[tif]


def _place(order: OrderSpec) -> dict[str, Any]:
    kind = hc.check_place_shape_any_tif(order)
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
    if kind not in _TYPES:
        raise InvalidArgument("order.order_type", f"{kind.value} is not offered by Alpaca")
    if order.quote_quantity is None:
        size = {"qty": sc.positive_decimal(order.quantity, "order.quantity")}
    elif kind is OrderType.MARKET:
        size = {"notional": sc.positive_decimal(order.quote_quantity, "order.quote_quantity")}
    else:
        sc.no_quote_size(order, "Alpaca takes notional on market orders only")
    body: dict[str, Any] = {
        "symbol": sc.symbol(order),
        **size,
        "side": "buy" if order.side is Side.BUY else "sell",
        "type": _TYPES[kind],
        "time_in_force": _tif(order),
    }
    if order.price is not None:
        body["limit_price"] = sc.positive_decimal(order.price, "order.price")
    if order.stop_price is not None:
        body["stop_price"] = sc.positive_decimal(order.stop_price, "order.stop_price")
    if (client_id := sc.order_id(order.client_order_id, "order.client_order_id")) is not None:
        body["client_order_id"] = client_id
    if "extended_hours" in extras:
        body["extended_hours"] = extras["extended_hours"] == "true"
    return body


def _replace(order: OrderSpec) -> dict[str, Any]:
    if order.extras:
        raise InvalidArgument("order.extras", "no extras are accepted for amend_order")
    body: dict[str, Any] = {}
    for key, value, field in (("qty", order.quantity, "order.quantity"),
                              ("limit_price", order.price, "order.price"),
                              ("stop_price", order.stop_price, "order.stop_price")):  # fmt: skip
        if value is not None:
            body[key] = sc.positive_decimal(value, field)
    if not body:
        raise InvalidArgument("order.quantity", "or a price is required to amend an order")
    if order.time_in_force is not None:
        body["time_in_force"] = _tif(order)
    if (client_id := sc.order_id(order.client_order_id, "order.client_order_id")) is not None:
        body["client_order_id"] = client_id
    return body


SPEC = VenueSpec(
    venue=Venue.ALPACA,
    label="Alpaca",
    urls=live_and_practice("https://api.alpaca.markets", "https://paper-api.alpaca.markets"),
    endpoints=Endpoints(
        allowed=ALLOWED,
        patterns=((methods("GET", "PATCH", "DELETE"), re.compile(rf"/v2/orders/{_UUID}")),),
        blocked_words=("/v2/wallets", "transfer", "withdraw", "/configurations", "/v2/account/",
                       "/v1/"),
    ),
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.STATIC_HEADERS}),
    scheme=StaticHeaders(headers=(("APCA-API-KEY-ID", "api_key"),
                                  ("APCA-API-SECRET-KEY", "secret"))),
    mapping=orders,
    proxy_only=True,
    single_permission_tier=True,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
