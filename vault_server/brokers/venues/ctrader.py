"""cTrader Open API (Spotware): proxy only, OAuth consent, JSON messages over one WebSocket.

cTrader has no per-request signature: a connection is authenticated once for the platform
application (``ProtoOAApplicationAuthReq{clientId, clientSecret}``) and once per trading account
(``ProtoOAAccountAuthReq{ctidTraderAccountId, accessToken}``), then carries every message of
that account. The vault holds the consent's tokens (``ctrader_session``) and sends the messages
itself through the ``ctrader`` egress transport (``vault_server/egress/ctrader.py``): the venue is
``proxy_only``. A grant has one of two scopes, ``SCOPE_VIEW`` or ``SCOPE_TRADE`` (trading
includes viewing), so it is ``single_permission_tier``; the API has no withdrawal message.

Sources: https://help.ctrader.com/open-api/ ("Sending and receiving JSON": ``{"clientMsgId",
"payloadType", "payload"}`` over TCP or WebSocket; "Endpoints": ``live.ctraderapi.com`` and
``demo.ctraderapi.com``, JSON on port 5036); the message definitions of
``spotware/openapi-proto-messages`` (``OpenApiMessages.proto``, ``OpenApiModelMessages.proto``:
payload types, fields, enums).

A request is a ``PreparedRequest`` whose path names the message and whose body is its payload
**without** ``ctidTraderAccountId`` (the transport adds the authorised account) and, for a new
order, with ``symbolName`` instead of ``symbolId`` (the transport resolves it per account with
``ProtoOASymbolsListReq``: symbol ids differ between servers). The allow-list is the list of
message names built here; nothing else reaches the wire.

==================  ===============================  ========================================
operation           message                          payload
==================  ===============================  ========================================
place               ``ProtoOANewOrderReq``           symbolName, orderType, tradeSide, volume
cancel              ``ProtoOACancelOrderReq``        orderId
amend order         ``ProtoOAAmendOrderReq``         orderId, volume / prices / SL / TP
query order         ``ProtoOAOrderDetailsReq``       orderId
orders, positions   ``ProtoOAReconcileReq``          {} (positions and pending orders)
account             ``ProtoOATraderReq``             {}
close position      ``ProtoOAClosePositionReq``      positionId, volume (absent: all of it)
amend position      ``ProtoOAAmendPositionSLTPReq``  positionId, stopLoss, takeProfit
==================  ===============================  ========================================

Size unit: ``BASE_UNITS``. ``volume`` is "represented in 0.01 of a unit (e.g. 1000 in protocol
means 10.00 units)" (ProtoOANewOrderReq.volume), so ``volume = quantity x 100`` exactly: one rule
for every symbol, no contract size or lot size to look up (a lot's size differs per symbol); a
quantity with more than two decimals is refused, never rounded.

Enums are sent as their numbers (``orderType`` MARKET 1, LIMIT 2, STOP 3; ``tradeSide`` BUY 1,
SELL 2; ``timeInForce`` GOOD_TILL_CANCEL 2, IMMEDIATE_OR_CANCEL 3, FILL_OR_KILL 4).

Protective levels: a ``price`` is ``stopLoss`` / ``takeProfit`` (absolute), a ``distance`` is
``relativeStopLoss`` / ``relativeTakeProfit`` "in 1/100000 of unit of a price" (an integer;
a distance finer than 0.00001 is refused). The proto says the absolute fields are "not
supported for the MARKET orders": a MARKET order with absolute levels is sent without them and
the transport sets them on the filled position with ``ProtoOAAmendPositionSLTPReq`` at once
(its answer says whether that worked; see the transport). A position takes prices only
(``ProtoOAAmendPositionSLTPReq`` has no relative fields).

Symbols: ``order.symbol`` is the cTrader symbol name as the broker spells it (``EURUSD``).

UNVERIFIED: that the JSON API takes enum numbers (the docs' examples carry numbers for
``payloadType`` only); that an amend of a position's SL/TP that omits one level removes it (the
vault sends what the caller gave).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    ProtectiveLevel,
    Scope,
    Side,
    SizeUnit,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, live_and_practice, vocabulary
from vault_server.brokers.venues.ctrader_session import SESSION
from vault_server.core.errors import InvalidArgument, OperationNotSupported

_ID = re.compile(r"[0-9]{1,18}")  # int64 ids
_SYMBOL = re.compile(r"[A-Za-z0-9._#&/ -]{1,64}")
_CLIENT_ORDER_ID = re.compile(r"[\x21-\x7e]{1,50}")  # MaxLength = 50
_ORDER_TYPES = {OrderType.MARKET: 1, OrderType.LIMIT: 2, OrderType.STOP_LOSS: 3}
_SIDES = {Side.BUY: 1, Side.SELL: 2}
_TIFS = {TimeInForce.GTC: 2, TimeInForce.IOC: 3, TimeInForce.FOK: 4}
_PRICE_SCALE = Decimal(100_000)  # relative levels: 1/100000 of a price unit
_VOLUME_SCALE = Decimal(100)  # volume: 0.01 of a unit
MESSAGES = ("NewOrder", "CancelOrder", "AmendOrder", "OrderDetails", "Reconcile", "Trader",
            "ClosePosition", "AmendPositionSLTP")  # fmt: skip


def messages(order: OrderSpec, credential: VenueCredential) -> Call:
    """The cTrader message for ``order`` (see the module table)."""
    account_id(credential)  # the transport authorises this account; refuse a bad one early
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return _call("NewOrder", _place(order))
    if op is Operation.AMEND_ORDER:
        return _call("AmendOrder", {"orderId": _id(order.venue_order_id)} | _amend(order))
    if op is Operation.AMEND_POSITION:
        return _call("AmendPositionSLTP", {"positionId": _position(order)} | _levels(order))
    if order.stop_loss is not None or order.take_profit is not None:
        raise InvalidArgument("order.stop_loss", f"is not accepted for {op.value}")
    sc.no_extras(order)
    if op is Operation.CLOSE_POSITION:
        body: dict[str, Any] = {"positionId": _position(order)}
        if order.quantity is not None:  # absent: the transport closes the whole volume
            body["volume"] = _volume(order.quantity)
        return _call("ClosePosition", body)
    if op is Operation.CANCEL_ORDER:
        return _call("CancelOrder", {"orderId": _id(order.venue_order_id)})
    if op is Operation.QUERY_ORDER:
        return _call("OrderDetails", {"orderId": _id(order.venue_order_id)})
    if op in (Operation.QUERY_OPEN_ORDERS, Operation.QUERY_POSITIONS):
        return _call("Reconcile", {})
    if op is Operation.QUERY_ACCOUNT:
        return _call("Trader", {})
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def account_id(credential: VenueCredential) -> int:
    """The ``ctidTraderAccountId`` (int64) the credential trades (``credential.account_id``)."""
    value = credential.account_id
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidArgument("credential.account_id", "must be the ctidTraderAccountId (digits)")
    return int(value)


def _call(message: str, payload: dict[str, Any]) -> Call:
    return Call("POST", f"/ProtoOA{message}Req", json=payload)


def _id(value: str | None, field: str = "order.venue_order_id") -> int:
    if value is None or not _ID.fullmatch(value):
        raise InvalidArgument(field, "must be a cTrader id (digits)")
    return int(value)


def _position(order: OrderSpec) -> int:
    return _id(order.position_id, "order.position_id")


def _place(order: OrderSpec) -> dict[str, Any]:
    """ProtoOANewOrderReq without the account: symbol name, type, side, volume, prices, levels."""
    sc.no_extras(order)
    kind = hc.check_place_shape_any_tif(order)
    sc.no_quote_size(order, "cTrader sizes orders in units only")
    if kind not in _ORDER_TYPES:
        raise InvalidArgument("order.order_type", f"{kind.value} orders are not built here")
    name = sc.symbol(order) or ""
    if not _SYMBOL.fullmatch(name):
        raise InvalidArgument("order.symbol", "must be a cTrader symbol name")
    assert order.side is not None  # check_place_shape
    body: dict[str, Any] = {
        "symbolName": name, "orderType": _ORDER_TYPES[kind], "tradeSide": _SIDES[order.side],
        "volume": _volume(order.quantity),
    }  # fmt: skip
    if order.price is not None:
        body["limitPrice"] = _price(order.price, "order.price")
    if order.stop_price is not None:
        body["stopPrice"] = _price(order.stop_price, "order.stop_price")
    if order.time_in_force is not None:
        body["timeInForce"] = _tif(order.time_in_force, kind)
    body |= _protective(order, relative=True)
    if order.client_order_id:
        if not _CLIENT_ORDER_ID.fullmatch(order.client_order_id):
            raise InvalidArgument("order.client_order_id", "must be 1-50 printable ASCII")
        body["clientOrderId"] = order.client_order_id
    return body


def _tif(tif: TimeInForce, kind: OrderType) -> int:
    allowed = (TimeInForce.IOC, TimeInForce.FOK) if kind is OrderType.MARKET else (TimeInForce.GTC,
               TimeInForce.IOC, TimeInForce.FOK)  # fmt: skip
    if tif not in allowed:
        raise InvalidArgument("order.time_in_force", f"is not accepted for {kind.value} orders")
    return _TIFS[tif]


def _amend(order: OrderSpec) -> dict[str, Any]:
    """A pending order's new volume, prices and/or levels (ProtoOAAmendOrderReq)."""
    sc.no_extras(order)
    body: dict[str, Any] = {}
    if order.quantity is not None:
        body["volume"] = _volume(order.quantity)
    if order.price is not None:
        body["limitPrice"] = _price(order.price, "order.price")
    if order.stop_price is not None:
        body["stopPrice"] = _price(order.stop_price, "order.stop_price")
    body |= _protective(order, relative=True)
    if not body:
        raise InvalidArgument("order.price", "or quantity, stop_price, stop_loss, take_profit "
                              "is required")  # fmt: skip
    return body


def _levels(order: OrderSpec) -> dict[str, Any]:
    """A position's new stop loss and/or take profit (prices only)."""
    sc.no_extras(order)
    levels = _protective(order, relative=False)
    if not levels:
        raise InvalidArgument("order.stop_loss", "or order.take_profit is required")
    return levels


def _protective(order: OrderSpec, *, relative: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, level in (("StopLoss", order.stop_loss), ("TakeProfit", order.take_profit)):
        if level is not None:
            key, value = _level(level, name, relative=relative)
            out[key] = value
    return out


def _level(level: ProtectiveLevel, name: str, *, relative: bool) -> tuple[str, int | float]:
    field = "order.stop_loss" if name == "StopLoss" else "order.take_profit"
    if (level.price is None) == (level.distance is None):
        raise InvalidArgument(field, "must have exactly one of price or distance")
    if level.price is not None:
        return name[0].lower() + name[1:], _price(level.price, field)
    if not relative:
        raise InvalidArgument(field, "a cTrader position takes prices only")
    return "relative" + name, _scaled(level.distance, _PRICE_SCALE, field, "0.00001")


def _volume(quantity: Decimal | None) -> int:
    """Units as cTrader's volume (0.01 of a unit): quantity x 100, exactly."""
    return _scaled(quantity, _VOLUME_SCALE, "order.quantity", "0.01 of a unit")


def _scaled(value: Decimal | None, scale: Decimal, field: str, step: str) -> int:
    scaled = Decimal(sc.positive_decimal(value, field)) * scale
    if scaled != scaled.to_integral_value() or scaled >= 2**63:
        raise InvalidArgument(field, f"must be a multiple of {step} (cTrader sends integers)")
    return int(scaled)


def _price(value: Decimal | None, field: str) -> int | float:
    """A positive decimal as the JSON number (a proto double) that writes it exactly."""
    text = sc.positive_decimal(value, field)
    number: int | float = int(text) if "." not in text else float(text)
    if Decimal(repr(number)) != Decimal(text):
        raise InvalidArgument(field, "has more digits than a cTrader price carries")
    return number


_RT = frozenset({Scope.READ, Scope.TRADE})
SPEC = VenueSpec(
    venue=Venue.CTRADER,
    label="cTrader",
    urls=live_and_practice("wss://live.ctraderapi.com:5036", "wss://demo.ctraderapi.com:5036"),
    endpoints=Endpoints(patterns=(
        (methods("POST"), re.compile(rf"/ProtoOA(?:{'|'.join(MESSAGES)})Req")),
    )),
    # The consent's scopes (``accounts`` / ``trading``) and the permissionScope names.
    scope_vocabulary=vocabulary(read=("accounts", "view"), combined={"trading": _RT, "trade": _RT}),
    algorithms=frozenset({KeyAlgorithm.OAUTH_CONSENT}),
    scheme=StaticHeaders(headers=(), fixed=()),
    mapping=messages,
    proxy_only=True,
    single_permission_tier=True,
    protective_orders=True,
    session=SESSION,
    size_unit=SizeUnit.BASE_UNITS,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
