"""What Binance Spot and USD-M Futures share: order mapping, scopes, permission query.

Parameter order, fixed so the official vectors reproduce byte for byte: core fields in the
market's ``place_order`` order (Spot §1.3: symbol, side, type, timeInForce, quantity, price;
USD-M §2.2: symbol, side, type, quantity, price, timeInForce), then stopPrice,
newClientOrderId, then the validated extras sorted by name; the scheme (``schemes/hmac_query``)
appends ``recvWindow``, ``timestamp`` and ``signature``.

Units: the parameter name is the unit. ``quantity`` is base units for every type and side;
``quoteOrderQty`` (quote units) only where the market lists it, on MARKET orders.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

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
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.schemes.hmac_query import HmacQuery
from vault_server.brokers.spec import Call, Permissions, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import InvalidArgument, OperationNotSupported

PERMISSION_PATH = "/sapi/v1/account/apiRestrictions"
PERMISSION_HOST = "https://api.binance.com"  # the permission query lives on Spot, also for USD-M
RESERVED = frozenset(
    {"symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price", "stopPrice",
     "newClientOrderId",
     "orderId", "origClientOrderId", "newQty", "recvWindow", "timestamp", "signature"}
)  # fmt: skip
# Words that mark fund-moving or key-management paths; checked on the decoded, folded path.
BLOCKED_WORDS = ("withdraw", "transfer", "sub-account", "subaccount", "giftcard", "dust",
                 "capital", "apirestrictions/", "/asset/")  # fmt: skip
DECIMAL = r"(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?"

SCOPE_VOCABULARY = vocabulary(
    read=("read", "enableReading", "enableFixReadOnly"),
    trade=("trade", "enableSpotAndMarginTrading", "Enable Spot & Margin Trading", "enableFutures",
           "enableMargin", "enableVanillaOptions", "Enable European Options",
           "enablePortfolioMarginTrading", "enableFixApiTrade"),
    withdraw=("enableWithdrawals",),
    transfer=("enableInternalTransfer", "permitsUniversalTransfer",
              "Enable Margin Loan, Repay & Transfer"),
)  # fmt: skip


def market_spec(
    venue: Venue,
    *,
    live_url: str,
    testnet_url: str,
    allowed: frozenset[tuple[str, str]],
    orders: BinanceOrders,
    algorithms: frozenset[KeyAlgorithm],
    generatable: frozenset[KeyAlgorithm],
    trade_flag: str,
) -> VenueSpec:
    """A Binance market: what Spot and USD-M share, with what they do not as arguments.

    ``/sapi/`` is refused except the permission query, which lives on Spot's host for both
    markets and is not served by the testnets (a configured base URL still reaches it).
    """
    return VenueSpec(
        venue=venue,
        label=venue.value,
        urls={Environment.LIVE: live_url, Environment.TESTNET: testnet_url},
        missing_environment="Binance has no paper environment; use testnet",
        endpoints=Endpoints(
            allowed=allowed | {("GET", PERMISSION_PATH)},
            blocked_words=BLOCKED_WORDS,
            guarded={"/sapi/": frozenset({("GET", PERMISSION_PATH)})},
        ),
        scope_vocabulary=SCOPE_VOCABULARY,
        algorithms=algorithms,
        generatable=generatable,
        scheme=HmacQuery("X-MBX-APIKEY"),
        mapping=orders,
        permissions=Permissions(
            Call("GET", PERMISSION_PATH), functools.partial(parse_permissions, trade_flag),
            host=PERMISSION_HOST, environments=frozenset({Environment.LIVE}),
        ),
    )  # fmt: skip


def with_body_params(adapter: SpecAdapter, body_params: bool) -> SpecAdapter:
    """``adapter``, or (``body_params``) its variant that sends POST/PUT parameters as a form."""
    if not body_params:
        return adapter
    scheme = HmacQuery("X-MBX-APIKEY", body_params=True)
    return adapter.variant(scheme=scheme, options={"body_params": True})


@dataclass(frozen=True)
class BinanceOrders:
    """A Binance market's order mapping (what differs between Spot and USD-M is data)."""

    order_path: str
    open_orders_path: str
    account_path: str
    amend_method: str
    amend_path: str
    amend_keeps_priority: bool  # Spot: quantity-only keepPriority amend; USD-M: side+qty+price
    place_order: tuple[str, ...]
    type_names: Mapping[OrderType, str]
    tif_names: Mapping[TimeInForce, str]
    place_extras: Mapping[str, sc.ExtraRule]

    def __call__(self, order: OrderSpec, credential: VenueCredential) -> Call:
        op = order.operation
        if op is Operation.PLACE_ORDER:
            return Call("POST", self.order_path, self._place(order))
        sc.no_extras(order)
        if op is Operation.CANCEL_ORDER:
            return Call("DELETE", self.order_path, _target(order))
        if op is Operation.QUERY_ORDER:
            return Call("GET", self.order_path, _target(order))
        if op is Operation.AMEND_ORDER:
            return Call(self.amend_method, self.amend_path, self._amend(order))
        if op is Operation.QUERY_OPEN_ORDERS:
            name = sc.symbol(order, required=False)
            return Call("GET", self.open_orders_path, (("symbol", name),) if name else ())
        if op is Operation.QUERY_ACCOUNT:
            return Call("GET", self.account_path)
        raise OperationNotSupported("operation not supported", metadata={"operation": op.value})

    def _place(self, order: OrderSpec) -> tuple[tuple[str, str], ...]:
        kind = sc.check_place_shape(order)
        assert order.side is not None  # checked by check_place_shape
        if order.quote_quantity is not None and (
            kind is not OrderType.MARKET or "quoteOrderQty" not in self.place_order
        ):
            sc.no_quote_size(order, "Binance takes quoteOrderQty on Spot MARKET orders only")
        fields: dict[str, str | None] = {
            "symbol": sc.symbol(order),
            "side": order.side.value.upper(),
            "type": self.type_names[kind],
            "timeInForce": self._tif(order) if kind in sc.LIMIT_PRICED else None,
            "quantity": _decimal_or_none(order.quantity, "order.quantity"),
            "quoteOrderQty": _decimal_or_none(order.quote_quantity, "order.quote_quantity"),
            "price": _decimal_or_none(order.price, "order.price"),
            "stopPrice": _decimal_or_none(order.stop_price, "order.stop_price"),
            "newClientOrderId": sc.order_id(order.client_order_id, "order.client_order_id"),
        }
        core = [(name, value) for name in self.place_order if (value := fields[name])]
        extras = sc.checked_extras(order.extras, self.place_extras, RESERVED)
        if order.time_in_force is TimeInForce.GTD and "goodTillDate" not in dict(extras):
            raise InvalidArgument("order.extras", "goodTillDate is required for GTD orders")
        return (*core, *extras)

    def _tif(self, order: OrderSpec) -> str:
        tif = order.time_in_force or TimeInForce.GTC  # Binance requires one; GTC is its default
        name = self.tif_names.get(tif)
        if name is None:
            raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered by Binance")
        return name

    def _amend(self, order: OrderSpec) -> tuple[tuple[str, str], ...]:
        params = _target(order)
        if order.stop_price is not None:
            raise InvalidArgument("order.stop_price", "cannot be amended on Binance")
        quantity = sc.positive_decimal(order.quantity, "order.quantity")
        if self.amend_keeps_priority:
            if order.price is not None:
                raise InvalidArgument("order.price", "Spot amends change quantity only")
            return (*params, ("newQty", quantity))
        if order.side is None:
            raise InvalidArgument("order.side", "is required to modify a USD-M order")
        price = sc.positive_decimal(order.price, "order.price")
        side = order.side.value.upper()
        return (*params, ("side", side), ("quantity", quantity), ("price", price))


def _decimal_or_none(value: Decimal | None, field: str) -> str | None:
    return None if value is None else sc.positive_decimal(value, field)


def _target(order: OrderSpec) -> tuple[tuple[str, str], ...]:
    params = [("symbol", sc.symbol(order) or "")]
    venue_id = sc.order_id(order.venue_order_id, "order.venue_order_id")
    client_id = sc.order_id(order.client_order_id, "order.client_order_id")
    if venue_id is not None:
        if not venue_id.isdigit():
            raise InvalidArgument("order.venue_order_id", "must be a Binance numeric order id")
        params.append(("orderId", venue_id))
    if client_id is not None:
        params.append(("origClientOrderId", client_id))
    if venue_id is None and client_id is None:
        raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")
    return tuple(params)


def parse_permissions(
    trade_flag: str, status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """``apiRestrictions``: boolean flags; ``trade_flag`` grants trading on this market."""
    data = pm.json_object(status, body)
    if status != 200 or "enableReading" not in data:
        raise pm.refused(status, str(data.get("code", "")))
    scopes, _ = pm.flag_scopes(
        data, (("enableReading", Scope.READ), (trade_flag, Scope.TRADE),
               ("enableWithdrawals", Scope.WITHDRAW)), status,
    )  # fmt: skip
    transfer = pm.flag(data, "enableInternalTransfer", status)
    if pm.flag(data, "permitsUniversalTransfer", status) or transfer:
        scopes.add(Scope.TRANSFER)
    raw = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in data.items()
        if isinstance(value, bool | int) and len(key) <= 64
    }
    return PermissionReport(scopes=frozenset(scopes), raw=raw)
