"""TradeLocker REST API (``{demo,live}.tradelocker.com/backend-api``): proxy only, password session.

The vault logs in with the user's email, password and server name and attaches the JWT session
to every proxied request (``tradelocker_session``): there is no signature, the tokens carry the
whole account, and there is no withdrawal call in the trading API and no permission query, so
the venue is ``proxy_only`` and ``single_permission_tier``. Base URLs (demo serves PAPER and
TESTNET): https://public-api.tradelocker.com/ ("Overview").

Material: ``username`` = login email, ``secret`` = password, ``server`` = TradeLocker server
name, ``account_id`` = the ``accountId`` in trading paths (digits, int32 in the OpenAPI),
``api_key`` = the account's ``accNum`` header value (see ``tradelocker_session``).

=====================  =============================================================  ==========
operation              request                                                        body
=====================  =============================================================  ==========
place                  ``POST /trade/accounts/{accountId}/orders``                    order
cancel                 ``DELETE /trade/orders/{orderId}``                             -
amend order            ``PATCH /trade/orders/{orderId}``                              changes
open orders            ``GET /trade/accounts/{accountId}/orders``                     -
account                ``GET /trade/accounts/{accountId}/state``                      -
positions              ``GET /trade/accounts/{accountId}/positions``                  -
close position         ``DELETE /trade/positions/{positionId}``                       {"qty"}
amend position SL/TP   ``PATCH /trade/positions/{positionId}``                        SL/TP
=====================  =============================================================  ==========

Order fields (https://public-api.tradelocker.com/reference/placeorder): ``qty, routeId, side,
validity, type, tradableInstrumentId`` are mandatory; ``qty`` counts **lots**; ``validity`` must be
``IOC`` for ``market`` and ``GTC`` for ``limit`` and ``stop`` (``stopPrice`` required); ``stopLoss``
with ``stopLossType`` (absolute, offset, trailingOffset), ``takeProfit`` with ``takeProfitType``
(absolute, offset); ``strategyId`` up to 31 characters. A protective ``price`` is sent
``absolute``, a ``distance`` ``offset``. Numbers are JSON numbers (the OpenAPI types them so);
a decimal a JSON number cannot carry exactly is refused, never rounded.

Close (https://public-api.tradelocker.com/reference/closeposition): ``qty`` 0 closes the whole
position, otherwise that many lots. Amend position and order (official client
``modify_position`` / ``modify_order`` and its tests: ``{"stopLoss", "takeProfit"}`` as prices;
``{"price", "qty"}``; ``types.ModificationParamsType`` also names the level types, so a pending
order's levels go with their types); UNVERIFIED: whether a position accepts ``offset`` levels,
so amending a position takes prices only. There is no single-order query (QUERY_ORDER is refused).

Instruments: TradeLocker trades numeric ``tradableInstrumentId`` over a numeric ``routeId`` (the
TRADE route of ``GET /trade/accounts/{accountId}/instruments``); the vault does not resolve names,
so ``order.symbol`` is ``"<tradableInstrumentId>:<routeId>"`` (e.g. ``"206:452"``), which an
order-policy symbol allow-list can name exactly.
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
    SizeUnit,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, live_and_practice
from vault_server.brokers.venues.tradelocker_session import SESSION
from vault_server.core.errors import InvalidArgument, OperationNotSupported

_ID = r"[0-9]{1,19}"
_ACCOUNT = re.compile(r"[0-9]{1,10}")
_VENUE_ID = re.compile(_ID)
_SYMBOL = re.compile(r"(?P<instrument>[0-9]{1,19}):(?P<route>[0-9]{1,19})")
_STRATEGY_ID = re.compile(r"[A-Za-z0-9_.:-]{1,31}")
# TradeLocker's order type and the validity it must carry (placeOrder).
_KINDS = {OrderType.MARKET: ("market", "IOC"), OrderType.LIMIT: ("limit", "GTC"),
          OrderType.STOP_LOSS: ("stop", "GTC")}  # fmt: skip
_TIFS = {"IOC": TimeInForce.IOC, "GTC": TimeInForce.GTC}


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    """The TradeLocker request for ``order`` (see the module table)."""
    acct = f"/trade/accounts/{_account(credential)}"
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return Call("POST", acct + "/orders", json=_place(order))
    if op is Operation.AMEND_ORDER:
        return Call("PATCH", f"/trade/orders/{_id(order.venue_order_id)}", json=_amend(order))
    if op is Operation.AMEND_POSITION:
        return Call("PATCH", _position_path(order), json=_levels(order))
    if order.stop_loss is not None or order.take_profit is not None:
        raise InvalidArgument("order.stop_loss", f"is not accepted for {op.value}")
    if op is Operation.CLOSE_POSITION:
        return Call("DELETE", _position_path(order), json=_close(order))
    sc.no_extras(order)
    if op is Operation.CANCEL_ORDER:
        return Call("DELETE", f"/trade/orders/{_id(order.venue_order_id)}")
    queries = {Operation.QUERY_OPEN_ORDERS: "/orders", Operation.QUERY_ACCOUNT: "/state",
               Operation.QUERY_POSITIONS: "/positions"}  # fmt: skip
    if op in queries:
        return Call("GET", acct + queries[op])
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _account(credential: VenueCredential) -> str:
    if not isinstance(credential.account_id, str) or not _ACCOUNT.fullmatch(credential.account_id):
        raise InvalidArgument("credential.account_id", "must be a TradeLocker accountId (digits)")
    return credential.account_id


def _id(value: str | None, field: str = "order.venue_order_id") -> str:
    if value is None or not _VENUE_ID.fullmatch(value):
        raise InvalidArgument(field, "must be a TradeLocker id (digits)")
    return value


def _position_path(order: OrderSpec) -> str:
    return f"/trade/positions/{_id(order.position_id, 'order.position_id')}"


def _place(order: OrderSpec) -> dict[str, Any]:
    """The placeOrder body: instrument, route, side, size in lots, type and validity, levels."""
    sc.no_extras(order)  # every TradeLocker field has its own OrderSpec slot
    kind = hc.check_place_shape_any_tif(order)
    sc.no_quote_size(order, "TradeLocker sizes orders in lots only")
    if kind not in _KINDS:
        raise InvalidArgument("order.order_type", f"{kind.value} orders are not built here")
    venue_type, validity = _KINDS[kind]
    if order.time_in_force not in (None, _TIFS[validity]):
        raise InvalidArgument("order.time_in_force", f"TradeLocker {venue_type} orders are "
                              f"{validity} only")  # fmt: skip
    match = _SYMBOL.fullmatch(sc.symbol(order) or "")
    if match is None:
        raise InvalidArgument("order.symbol", "must be <tradableInstrumentId>:<routeId>")
    assert order.side is not None  # check_place_shape
    body: dict[str, Any] = {
        "tradableInstrumentId": int(match["instrument"]), "routeId": int(match["route"]),
        "side": order.side.value, "qty": _number(order.quantity, "order.quantity"),
        "type": venue_type, "validity": validity,
    }  # fmt: skip
    if order.price is not None:
        body["price"] = _number(order.price, "order.price")
    if order.stop_price is not None:
        body["stopPrice"] = _number(order.stop_price, "order.stop_price")
    body |= _protective(order, distance_allowed=True)
    strategy = _strategy_id(order)
    if strategy is not None:
        body["strategyId"] = strategy
    return body


def _amend(order: OrderSpec) -> dict[str, Any]:
    """A pending order's new price and/or size and/or levels."""
    sc.no_extras(order)
    body: dict[str, Any] = {}
    if order.price is not None:
        body["price"] = _number(order.price, "order.price")
    if order.quantity is not None:
        body["qty"] = _number(order.quantity, "order.quantity")
    body |= _protective(order, distance_allowed=True)
    if not body:
        raise InvalidArgument("order.price", "or quantity, stop_loss, take_profit is required")
    return body


def _levels(order: OrderSpec) -> dict[str, Any]:
    """A position's new stop loss and/or take profit (prices)."""
    sc.no_extras(order)
    levels = _protective(order, distance_allowed=False)
    if not levels:
        raise InvalidArgument("order.stop_loss", "or order.take_profit is required")
    return levels


def _close(order: OrderSpec) -> dict[str, Any]:
    """``qty`` 0 closes the whole position; a quantity closes that many lots of it."""
    sc.no_extras(order)
    if order.quantity is None:
        return {"qty": 0}
    return {"qty": _number(order.quantity, "order.quantity")}


def _protective(order: OrderSpec, *, distance_allowed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, level in (("stopLoss", order.stop_loss), ("takeProfit", order.take_profit)):
        if level is None:
            continue
        value, kind = _level(level, name, distance_allowed=distance_allowed)
        out[name] = value
        if distance_allowed:
            out[name + "Type"] = kind
    return out


def _level(level: ProtectiveLevel, name: str, *, distance_allowed: bool) -> tuple[int | float, str]:
    field = "order.stop_loss" if name == "stopLoss" else "order.take_profit"
    if (level.price is None) == (level.distance is None):
        raise InvalidArgument(field, "must have exactly one of price or distance")
    if level.price is not None:
        return _number(level.price, field), "absolute"
    if not distance_allowed:
        raise InvalidArgument(field, "a TradeLocker position takes prices only")
    return _number(level.distance, field), "offset"


def _number(value: Decimal | None, field: str) -> int | float:
    """A positive decimal as the JSON number that writes it exactly (else refused)."""
    text = sc.positive_decimal(value, field)
    number: int | float = int(text) if "." not in text else float(text)
    if Decimal(repr(number)) != Decimal(text):
        raise InvalidArgument(field, "has more digits than TradeLocker's JSON numbers carry")
    return number


def _strategy_id(order: OrderSpec) -> str | None:
    if not order.client_order_id:
        return None
    if not _STRATEGY_ID.fullmatch(order.client_order_id):
        raise InvalidArgument("order.client_order_id", "must be 1-31 of A-Z a-z 0-9 _ . : -")
    return order.client_order_id


_ACCT = r"/trade/accounts/[0-9]{1,10}"
SPEC = VenueSpec(
    venue=Venue.TRADELOCKER,
    label="TradeLocker",
    urls=live_and_practice("https://live.tradelocker.com/backend-api",
                           "https://demo.tradelocker.com/backend-api"),
    endpoints=Endpoints(patterns=(
        (methods("POST", "GET"), re.compile(_ACCT + "/orders")),
        (methods("GET"), re.compile(_ACCT + "/(?:state|positions)")),
        (methods("DELETE", "PATCH"), re.compile(rf"/trade/(?:orders|positions)/{_ID}")),
    )),
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.SESSION_LOGIN}),
    scheme=StaticHeaders(headers=(), fixed=(("Accept", "application/json"),)),
    mapping=orders,
    proxy_only=True,
    single_permission_tier=True,
    protective_orders=True,
    session=SESSION,
    size_unit=SizeUnit.LOTS,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
