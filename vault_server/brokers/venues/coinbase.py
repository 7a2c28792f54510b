"""Coinbase Advanced Trade (``api.coinbase.com/api/v3/brokerage``): CDP JWT per request.

Every request carries ``Authorization: Bearer <JWT>`` (ES256 for EC P-256 keys, EdDSA for
Ed25519 keys; see ``_jwt_coinbase``) with ``uri = "<METHOD> api.coinbase.com<path>"`` (no query)
and ``exp = nbf + 120``; ``expire_at_ms = nbf * 1000 + 120000``. The header ``nonce`` is
``SigningContext.random_hex``.

**The JWT does not bind the body or the query** (reference §4.3): for 120 s a token minted for
``POST /api/v3/brokerage/orders`` authorises *any* order body on that path, any number of times.
So the adapter comes in two flavours:

* ``ADAPTER`` (``strict=False``): detached signing allowed; the caller could change the order.
* ``STRICT_ADAPTER`` (``strict=True``): ``proxy_only`` is True, so only ExecuteOrder may use it
  and the vault itself sends exactly the bytes it approved.

Scheme: ``schemes/cdp_jwt.py``.

=================  ==================================================  ========================
operation          request                                             body / query
=================  ==================================================  ========================
place              ``POST /api/v3/brokerage/orders``                   client_order_id,
                                                                       product_id, side,
                                                                       order_configuration
cancel             ``POST /api/v3/brokerage/orders/batch_cancel``      {"order_ids": [id]}
amend              ``POST /api/v3/brokerage/orders/edit``              order_id, price, size
query order        ``GET /api/v3/brokerage/orders/historical/{id}``    -
open orders        ``GET /api/v3/brokerage/orders/historical/batch``   order_status=OPEN
                                                                       [&product_ids=...]
account            ``GET /api/v3/brokerage/accounts``                  -
permissions        ``GET /api/v3/brokerage/key_permissions``           -
=================  ==================================================  ========================

``order_configuration`` from the order type and TIF: market → ``market_market_ioc``; limit
GTC → ``limit_limit_gtc``, GTD → ``limit_limit_gtd`` (extra ``end_time``), FOK →
``limit_limit_fok``, IOC → ``sor_limit_ioc``; stop-limit / take-profit-limit →
``stop_limit_stop_limit_gtc|gtd`` with ``stop_direction``. Units: ``quantity`` is always
``base_size`` (market buys too, although many clients size those with ``quote_size``);
``quote_quantity`` is ``quote_size``, only on ``market_market_ioc`` buys (Coinbase: "to sell,
provide a base_size"), and the order policy bounds it as notional. Coinbase requires a unique
``client_order_id``. Keys are created by Coinbase, so nothing is generatable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers import permissions as pm
from vault_server.brokers.base import (
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
from vault_server.brokers.schemes.cdp_jwt import CdpJwt
from vault_server.brokers.spec import (
    Call,
    Permissions,
    SpecAdapter,
    VenueSpec,
    live_and_practice,
    vocabulary,
)
from vault_server.core.errors import InvalidArgument, OperationNotSupported

P = "/api/v3/brokerage"
PERMISSION_PATH = P + "/key_permissions"
ALLOWED = frozenset(
    {("POST", P + p) for p in ("/orders", "/orders/batch_cancel", "/orders/edit",
                               "/orders/edit_preview", "/orders/preview", "/orders/close_position")}
    | {("GET", P + p) for p in ("/orders/historical/batch", "/orders/historical/fills",
                                "/accounts", "/key_permissions")}
)  # fmt: skip
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "post_only": frozenset({"true", "false"}), "end_time": hc.is_rfc3339_utc,
}  # fmt: skip
_LIMITS = (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)

SCOPE_VOCABULARY = vocabulary(
    read=("view", "can_view"), trade=("trade", "can_trade"), transfer=("transfer", "can_transfer")
)


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return Call("POST", P + "/orders", json=_place(order))
    sc.no_extras(order)
    if op is Operation.QUERY_ACCOUNT:
        return Call("GET", P + "/accounts")
    if op is Operation.QUERY_OPEN_ORDERS:
        query = [("order_status", "OPEN")]
        if (name := sc.symbol(order, required=False)) is not None:
            query.append(("product_ids", name))
        return Call("GET", P + "/orders/historical/batch", tuple(query))
    venue_id = hc.path_id(order.venue_order_id, "order.venue_order_id")
    assert venue_id is not None  # required=True
    if op is Operation.QUERY_ORDER:
        return Call("GET", f"{P}/orders/historical/{venue_id}")
    if op is Operation.CANCEL_ORDER:
        return Call("POST", P + "/orders/batch_cancel", json={"order_ids": [venue_id]})
    if op is Operation.AMEND_ORDER:
        edit: dict[str, Any] = {"order_id": venue_id}
        if order.price is not None:
            edit["price"] = sc.positive_decimal(order.price, "order.price")
        if order.quantity is not None:
            edit["size"] = sc.positive_decimal(order.quantity, "order.quantity")
        if len(edit) == 1:
            raise InvalidArgument("order.quantity", "or order.price is required to amend")
        return Call("POST", P + "/orders/edit", json=edit)
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec) -> dict[str, Any]:
    kind = sc.check_place_shape(order)
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, ()))
    client_id = sc.order_id(order.client_order_id, "order.client_order_id")
    if client_id is None:
        raise InvalidArgument("order.client_order_id", "is required by Coinbase")
    return {
        "client_order_id": client_id,
        "product_id": sc.symbol(order),
        "side": "BUY" if order.side is Side.BUY else "SELL",
        "order_configuration": _configuration(order, kind, extras),
    }


def _size(order: OrderSpec, kind: OrderType) -> dict[str, str]:
    """``base_size`` for ``quantity``; ``quote_size`` for ``quote_quantity`` on market buys only.

    Coinbase (Create Order, market_market_ioc): "To buy a product, provide a quote_size or
    base_size; to sell, provide a base_size"; limit configurations take ``base_size``.
    """
    if order.quote_quantity is None:
        return {"base_size": sc.positive_decimal(order.quantity, "order.quantity")}
    if kind is not OrderType.MARKET or order.side is not Side.BUY:
        sc.no_quote_size(order, "Coinbase takes quote_size on market buys only")
    return {"quote_size": sc.positive_decimal(order.quote_quantity, "order.quote_quantity")}


def _configuration(order: OrderSpec, kind: OrderType, extras: dict[str, str]) -> dict[str, Any]:
    size = _size(order, kind)
    tif, end_time = order.time_in_force, extras.pop("end_time", None)
    post_only = extras.pop("post_only", None)
    if (end_time is not None) != (tif is TimeInForce.GTD):
        raise InvalidArgument("order.extras", "end_time is required exactly for GTD orders")
    if kind is OrderType.MARKET:
        return {"market_market_ioc": size | _no_post_only(post_only)}
    if kind not in _LIMITS:
        raise InvalidArgument("order.order_type", f"{kind.value} is not offered by Coinbase")
    if tif not in (None, TimeInForce.GTC, TimeInForce.GTD, TimeInForce.FOK, TimeInForce.IOC):
        raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered by Coinbase")
    limit = size | {"limit_price": sc.positive_decimal(order.price, "order.price")}
    timed = {"end_time": end_time} if end_time is not None else {}
    suffix = "gtd" if tif is TimeInForce.GTD else "gtc"
    if kind is not OrderType.LIMIT:
        if tif not in (None, TimeInForce.GTC, TimeInForce.GTD):
            raise InvalidArgument("order.time_in_force", "stop-limit orders are GTC or GTD")
        rising = (kind is OrderType.STOP_LIMIT) == (order.side is Side.BUY)
        stop = {"stop_price": sc.positive_decimal(order.stop_price, "order.stop_price"),
                "stop_direction": "STOP_DIRECTION_STOP_UP" if rising else
                "STOP_DIRECTION_STOP_DOWN"}  # fmt: skip
        return {f"stop_limit_stop_limit_{suffix}": limit | stop | timed | _no_post_only(post_only)}
    if tif in (TimeInForce.FOK, TimeInForce.IOC):
        name = "limit_limit_fok" if tif is TimeInForce.FOK else "sor_limit_ioc"
        return {name: limit | _no_post_only(post_only)}
    return {f"limit_limit_{suffix}": limit | timed | {"post_only": post_only == "true"}}


def _no_post_only(post_only: str | None) -> dict[str, Any]:
    if post_only is not None:
        raise InvalidArgument("order.extras", "post_only applies to GTC/GTD limit orders only")
    return {}


def parse_permissions(
    status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """``key_permissions``: three boolean flags and the key's portfolio."""
    data = pm.json_object(status, body)
    if status != 200:
        raise pm.refused(status)
    scopes, flags = pm.flag_scopes(
        data, (("can_view", Scope.READ), ("can_trade", Scope.TRADE),
               ("can_transfer", Scope.TRANSFER)), status,
    )  # fmt: skip
    raw = {name: str(value).lower() for name, value in flags.items()}
    pm.copy_fields(raw, data, ("portfolio_uuid", "portfolio_type"), str, 128)
    return PermissionReport(scopes=frozenset(scopes), raw=raw)


SPEC = VenueSpec(
    venue=Venue.COINBASE_ADVANCED,
    label="Coinbase Advanced",
    # Coinbase's static Advanced Trade sandbox: unauthenticated, mocked, production-shaped.
    urls=live_and_practice("https://api.coinbase.com", "https://api-sandbox.coinbase.com"),
    endpoints=Endpoints(
        allowed=ALLOWED,
        patterns=((methods("GET"), re.compile(P + r"/orders/historical/[A-Za-z0-9-]{1,64}")),
                  (methods("GET"), re.compile(P + r"/accounts/[A-Za-z0-9-]{1,64}"))),
        blocked_words=("/v2/", "move_funds", "portfolios", "allocate", "sweeps", "convert",
                       "withdraw", "deposit", "transfer", "transaction", "payment", "address"),
    ),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ED25519}),
    scheme=CdpJwt(),
    mapping=orders,
    permissions=Permissions(Call("GET", PERMISSION_PATH), parse_permissions),
    options={"strict": False},
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
# The JWT does not bind the body (reference §4.3): strict mode sends only what the vault built.
STRICT_ADAPTER = ADAPTER.variant(proxy_only=True, options={"strict": True})


def CoinbaseAdvancedAdapter(*, strict: bool = False) -> SpecAdapter:  # noqa: N802 - was a class
    """Coinbase Advanced; ``strict=True`` is proxy-only (ExecuteOrder alone may use it)."""
    return STRICT_ADAPTER if strict else ADAPTER
