"""OANDA v20 REST (``api-fxtrade.oanda.com``, practice ``api-fxpractice.oanda.com``): proxy only.

OANDA authenticates with a **personal access token** sent as ``Authorization: Bearer <token>``
on every request (reference §8.1). There is no signature, no scope and no expiry: the token is
the secret, grants full trading on every sub-account, and cannot be narrowed or exchanged for a
short-lived one. So the venue is ``proxy_only`` (only the vault's own egress sends what ``build``
returns; the header value's ``repr`` is masked) and ``single_permission_tier``. There is no API
to ask what a token may do: ``permission_request`` returns None. ``expire_at_ms`` is the vault's
own freshness window (``now + recv_window``): OANDA itself has none (``schemes/static_headers``).

The account comes from ``credential.account_id`` (required). Practice serves PAPER and TESTNET.

=================  ======================================================  ===================
operation          request                                                 body
=================  ======================================================  ===================
place              ``POST /v3/accounts/{acct}/orders``                     {"order": {...}}
amend (replace)    ``PUT /v3/accounts/{acct}/orders/{specifier}``          {"order": {...}}
cancel             ``PUT /v3/accounts/{acct}/orders/{specifier}/cancel``   -
query order        ``GET /v3/accounts/{acct}/orders/{specifier}``          -
open orders        ``GET /v3/accounts/{acct}/pendingOrders``               -
account            ``GET /v3/accounts/{acct}/summary``                     -
close position     ``PUT /v3/accounts/{acct}/trades/{tradeID}/close``      {"units": ...}
amend position     ``PUT /v3/accounts/{acct}/trades/{tradeID}/orders``     {"stopLoss", ...}
query positions    ``GET /v3/accounts/{acct}/openTrades``                  -
=================  ======================================================  ===================

``{"order": {"type", "instrument", "units", "price", "timeInForce", "stopLossOnFill",
"takeProfitOnFill", "positionFill", "gtdTime", "triggerCondition", "clientExtensions": {"id":
client_order_id}}}`` with ``units`` negative for
sells; MARKET (FOK by default, or IOC) and LIMIT (GTC by default, GTD with extra ``gtdTime``,
GFD for DAY, FOK, IOC) only. The specifier is ``venue_order_id`` or ``@client_order_id``.
A replace is a whole new order specification (OANDA cancels and re-creates it); it carries no
``clientExtensions``. Everything else, including ``PATCH .../configuration``, trailing and
guaranteed stop losses, ``clientExtensions`` edits and ``.../positions/{instrument}/close``, is
refused.

Protective orders (https://developer.oanda.com/rest-live-v20/order-df/ "StopLossDetails",
"TakeProfitDetails"; https://developer.oanda.com/rest-live-v20/trade-ep/): a placed or replaced
order carries ``stopLossOnFill`` (``{"price": p}`` or ``{"distance": d}``, distance in price
units from the trade's open price, only one of the two) and ``takeProfitOnFill``
(``{"price": p}``: TakeProfitDetails has no distance, so a take-profit distance is refused,
never dropped). A position here is an OANDA **trade** and ``position_id`` is its trade id
(digits): ``PUT .../trades/{id}/close`` with ``{"units": "ALL"}`` or a positive partial
``units`` (never more than the trade's open units; OANDA's rule), and ``PUT
.../trades/{id}/orders`` with ``stopLoss`` / ``takeProfit`` (same details shapes) sets the
trade's dependent orders. Positions are queried with ``GET .../openTrades``, not
``openPositions``: an OANDA position is the per-instrument aggregate and has no id the close and
amend calls accept, whereas each open trade lists its ``id`` (the ``position_id`` to close or
amend) with its ``stopLossOrder`` / ``takeProfitOrder``. Checked against the v20 OpenAPI
transcription (docs.rs ``oanda-v20-openapi`` 0.2.1: StopLossDetails, TakeProfitDetails,
CloseTradeRequest, Trade); the pages on developer.oanda.com were not fetched from here.
A partial close sends the vault's decimal as-is: OANDA's per-instrument unit precision
(``tradeUnitsPrecision``) is left to OANDA to enforce (UNVERIFIED how it answers excess digits).

Units (OANDA v20 "Order" definitions): ``units`` is the quantity in units of the instrument's
base currency (EUR_USD: euros), its sign is the side; OANDA has no quote-sized order, so
``quote_quantity`` is refused.
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
    ProtectiveLevel,
    Side,
    SizeUnit,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, live_and_practice
from vault_server.core.errors import InvalidArgument, OperationNotSupported

_ACCOUNT = r"[0-9]{1,4}(?:-[0-9]{1,12}){3}"
_SPECIFIER = r"(?:[0-9]{1,20}|@[A-Za-z0-9_:-]{1,64})"
_ACCOUNT_ID = re.compile(_ACCOUNT)
_INSTRUMENT = re.compile(r"[A-Z0-9]{1,16}_[A-Z0-9]{1,16}")
_VENUE_ID = re.compile(r"[0-9]{1,20}")
_TRADE = r"[0-9]{1,20}"
_MARKET_TIFS = {None: "FOK", TimeInForce.FOK: "FOK", TimeInForce.IOC: "IOC"}
_LIMIT_TIFS = {None: "GTC", TimeInForce.GTC: "GTC", TimeInForce.GTD: "GTD",
               TimeInForce.DAY: "GFD", TimeInForce.FOK: "FOK", TimeInForce.IOC: "IOC"}  # fmt: skip
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "positionFill": frozenset({"DEFAULT", "OPEN_ONLY", "REDUCE_FIRST", "REDUCE_ONLY"}),
    "gtdTime": hc.is_rfc3339_utc,
    "triggerCondition": frozenset({"DEFAULT", "INVERSE", "BID", "ASK", "MID"}),
}
RESERVED = frozenset({"type", "instrument", "units", "price", "timeInForce", "clientExtensions",
                      "tradeClientExtensions", "priceBound", "stopLossOnFill", "takeProfitOnFill",
                      "trailingStopLossOnFill", "guaranteedStopLossOnFill"})  # fmt: skip


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    account = credential.account_id
    if not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account):
        raise InvalidArgument("credential.account_id", "must be an OANDA v20 account id")
    acct = f"/v3/accounts/{account}"
    op = order.operation
    if op is Operation.PLACE_ORDER:
        body = {"order": _order_request(order, with_client_id=True)}
        return Call("POST", acct + "/orders", json=body)
    if op is Operation.AMEND_ORDER:
        body = {"order": _order_request(order, with_client_id=False)}
        return Call("PUT", f"{acct}/orders/{_specifier(order)}", json=body)
    sc.no_extras(order)
    if op in _POSITION_CALLS:
        return _POSITION_CALLS[op](order, acct)
    if op is Operation.QUERY_ACCOUNT:
        return Call("GET", acct + "/summary")
    if op is Operation.QUERY_OPEN_ORDERS:
        return Call("GET", acct + "/pendingOrders")
    if op is Operation.CANCEL_ORDER:
        return Call("PUT", f"{acct}/orders/{_specifier(order)}/cancel")
    if op is Operation.QUERY_ORDER:
        return Call("GET", f"{acct}/orders/{_specifier(order)}")
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _close_trade(order: OrderSpec, acct: str) -> Call:
    """Close a trade: all of it, or ``quantity`` units (positive: OANDA takes the trade's side)."""
    units = (
        "ALL" if order.quantity is None else sc.positive_decimal(order.quantity, "order.quantity")
    )
    return Call("PUT", f"{acct}/trades/{_trade_id(order)}/close", json={"units": units})


def _amend_trade(order: OrderSpec, acct: str) -> Call:
    """Set a trade's stop loss and/or take profit (the dependent orders OANDA keeps per trade)."""
    body: dict[str, Any] = {}
    if order.stop_loss is not None:
        body["stopLoss"] = _details(order.stop_loss, "order.stop_loss")
    if order.take_profit is not None:
        body["takeProfit"] = _details(order.take_profit, "order.take_profit")
    if not body:
        raise InvalidArgument("order.stop_loss", "or order.take_profit is required to amend")
    return Call("PUT", f"{acct}/trades/{_trade_id(order)}/orders", json=body)


def _open_trades(order: OrderSpec, acct: str) -> Call:
    """Every open trade, each with its id and its stop loss / take profit orders."""
    return Call("GET", acct + "/openTrades")


_POSITION_CALLS = {
    Operation.CLOSE_POSITION: _close_trade,
    Operation.AMEND_POSITION: _amend_trade,
    Operation.QUERY_POSITIONS: _open_trades,
}


def _trade_id(order: OrderSpec) -> str:
    if order.venue_order_id is not None:
        # OANDA acts on the trade by its id alone: an order id would be ignored, and an ignored
        # field is one the caller believes did something (a side is refused centrally).
        raise InvalidArgument("order.venue_order_id", "OANDA acts on a trade by its id alone")
    if not order.position_id or not re.fullmatch(_TRADE, order.position_id):
        raise InvalidArgument("order.position_id", "must be an OANDA trade id (digits)")
    return order.position_id


def _details(level: ProtectiveLevel, field: str) -> dict[str, str]:
    """StopLossDetails / TakeProfitDetails: ``price`` or (stop loss only) ``distance``."""
    if level.price is not None:
        return {"price": sc.positive_decimal(level.price, field + ".price")}
    if field == "order.take_profit":
        raise InvalidArgument(field + ".distance", "OANDA takes a take profit as a price only")
    return {"distance": sc.positive_decimal(level.distance, field + ".distance")}


def _specifier(order: OrderSpec) -> str:
    if order.venue_order_id:
        if not _VENUE_ID.fullmatch(order.venue_order_id):
            raise InvalidArgument("order.venue_order_id", "must be an OANDA order id (digits)")
        return order.venue_order_id
    client_id = hc.path_id(order.client_order_id, "order.client_order_id", required=False)
    if client_id is None:
        raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")
    return "@" + client_id


def _order_request(order: OrderSpec, *, with_client_id: bool) -> dict[str, Any]:
    kind = hc.check_place_shape_any_tif(order)
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
    name = sc.symbol(order)
    if name is None or not _INSTRUMENT.fullmatch(name):
        raise InvalidArgument("order.symbol", "must be an OANDA instrument such as EUR_USD")
    tif = order.time_in_force
    if kind is OrderType.MARKET:
        tifs: Mapping[TimeInForce | None, str] = _MARKET_TIFS
    elif kind is OrderType.LIMIT:
        tifs = _LIMIT_TIFS
    else:
        raise InvalidArgument("order.order_type", f"{kind.value} orders are not built for OANDA")
    if tif not in tifs:
        shown = tif.value if tif is not None else "none"
        raise InvalidArgument("order.time_in_force", f"{shown} is not valid for this order type")
    if ("gtdTime" in extras) != (tifs[tif] == "GTD"):
        raise InvalidArgument("order.extras", "gtdTime is required exactly for GTD orders")
    if "triggerCondition" in extras and kind is not OrderType.LIMIT:
        raise InvalidArgument("order.extras", "triggerCondition applies to limit orders only")
    sc.no_quote_size(order, "OANDA sizes orders in units of the instrument's base currency only")
    units = sc.positive_decimal(order.quantity, "order.quantity")
    request: dict[str, Any] = {
        "type": kind.name, "instrument": name,
        "units": units if order.side is Side.BUY else "-" + units,
    }  # fmt: skip
    if order.price is not None:
        request["price"] = sc.positive_decimal(order.price, "order.price")
    request["timeInForce"] = tifs[tif]
    if order.stop_loss is not None:
        request["stopLossOnFill"] = _details(order.stop_loss, "order.stop_loss")
    if order.take_profit is not None:
        request["takeProfitOnFill"] = _details(order.take_profit, "order.take_profit")
    request["positionFill"] = extras.pop("positionFill", "DEFAULT")
    request |= dict(sorted(extras.items()))
    if with_client_id and order.client_order_id:
        request["clientExtensions"] = {
            "id": hc.path_id(order.client_order_id, "order.client_order_id")
        }
    return request


SPEC = VenueSpec(
    venue=Venue.OANDA,
    label="OANDA",
    urls=live_and_practice("https://api-fxtrade.oanda.com", "https://api-fxpractice.oanda.com"),
    endpoints=Endpoints(patterns=(
        (methods("POST"), re.compile(rf"/v3/accounts/{_ACCOUNT}/orders")),
        (methods("PUT", "GET"), re.compile(rf"/v3/accounts/{_ACCOUNT}/orders/{_SPECIFIER}")),
        (methods("PUT"), re.compile(rf"/v3/accounts/{_ACCOUNT}/orders/{_SPECIFIER}/cancel")),
        (methods("GET"), re.compile(rf"/v3/accounts/{_ACCOUNT}/(?:pendingOrders|summary)")),
        (methods("PUT"), re.compile(rf"/v3/accounts/{_ACCOUNT}/trades/{_TRADE}/(?:close|orders)")),
        (methods("GET"), re.compile(rf"/v3/accounts/{_ACCOUNT}/openTrades")),
    )),
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.BEARER}),
    scheme=StaticHeaders(headers=(("Authorization", "bearer_secret"),),
                         fixed=(("Accept-Datetime-Format", "RFC3339"),)),
    mapping=orders,
    proxy_only=True,
    single_permission_tier=True,
    size_unit=SizeUnit.BASE_UNITS,
    protective_orders=True,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
