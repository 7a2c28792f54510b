"""Match-Trader Platform API (per-broker platform host; sandbox ``mtr-demo-prod``): proxy only.

Match-Trader has no request signature: a password login yields a ``co-auth`` session token and
a per-account ``tradingApiToken`` (``match_trader_session``), which the vault's session engine
attaches to every proxied request. The vault holds the **email** (``username``), the
**password** (``secret``), the **broker id** (``server``) and the **trading account id**
(``account_id``); the account's systemUuid is learnt at login. One permission tier, no
withdrawal call in the Platform API (https://app.theneo.io/match-trade/platform-api; the PDF
edition https://docs.match-trade.com/wp-content/uploads/2024/04/MTR-Match-TraderPlatformAPI.pdf
lists Open position, Close positions, Edit position, Get balance, Get opened positions, Get
active orders, Create/Edit/Cancel pending order). The documented sandbox host is
``https://mtr-demo-prod.match-trader.com`` (PAPER and TESTNET); every broker runs its own live
platform host, so LIVE has no default and needs ``signing.venue_base_urls.match_trader``.

Sizes are **lots** (``volume``). Protective levels are prices only (``slPrice``/``tpPrice``):
a distance is refused. The platform takes no client order id: ``client_order_id`` stays the
vault's own replay guard and is not sent.

================  ===============================================  =================================
operation         request (``/mtr-api/{systemUuid}`` prefix)       body
================  ===============================================  =================================
place market      ``POST /position/open``                          instrument, orderSide, volume,
                                                                   slPrice?, tpPrice?, isMobile
place limit       ``POST /pending-order/create``                   ... + type LIMIT, price
cancel order      ``POST /pending-order/cancel``                   id, instrument, orderSide,
                                                                   type
amend position    ``POST /position/edit``                          positionId, slPrice?, tpPrice?
close position    ``POST /position/close``                         positionId, instrument,
                                                                   orderSide, volume
positions         ``GET /open-positions``                          -
open orders       ``GET /active-orders``                           -
account           ``GET /balance``                                 -
================  ===============================================  =================================

UNVERIFIED (the official pages name these operations but their paths and fields were confirmed
only in third-party clients): the pending-order paths and bodies, ``/position/edit`` leaving an
omitted level unchanged, ``/position/close`` taking one object whose ``orderSide`` is the
position's side and whose ``volume`` is required (so a close needs ``symbol``, ``side`` and
``quantity``: the position's whole volume closes it whole), and ``isMobile``. Amending or
querying a single order is refused (no such call found).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
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
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec
from vault_server.brokers.venues.match_trader_session import SESSION, SYSTEM_PLACEHOLDER
from vault_server.core.errors import InvalidArgument, OperationNotSupported

SANDBOX = "https://mtr-demo-prod.match-trader.com"
_PREFIX = f"/mtr-api/{SYSTEM_PLACEHOLDER}"
_SYSTEM = rf"(?:{SYSTEM_PLACEHOLDER}|[0-9a-fA-F]{{8}}(?:-[0-9a-fA-F]{{4}}){{3}}-[0-9a-fA-F]{{12}})"
_INSTRUMENT = re.compile(r"[A-Za-z0-9._#-]{1,32}")
_SIDES = {Side.BUY: "BUY", Side.SELL: "SELL"}
_MAX_DIGITS = 15  # a JSON number of at most 15 significant digits is exact as a double


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    """The Platform API call for ``order`` (the systemUuid is filled in by the session)."""
    op = order.operation
    sc.no_extras(order)
    if op is not Operation.PLACE_ORDER and op is not Operation.AMEND_POSITION:
        _no_levels(order)
    if op is Operation.PLACE_ORDER:
        return _place(order)
    if op is Operation.CANCEL_ORDER:
        return _cancel(order)
    if op is Operation.AMEND_POSITION:
        return _amend_position(order)
    if op is Operation.CLOSE_POSITION:
        return _close_position(order)
    queries = {Operation.QUERY_POSITIONS: "/open-positions",
               Operation.QUERY_OPEN_ORDERS: "/active-orders",
               Operation.QUERY_ACCOUNT: "/balance"}  # fmt: skip
    if op in queries:
        return Call("GET", _PREFIX + queries[op])
    raise OperationNotSupported("Match-Trader has no such call", metadata={"operation": op.value})


def _place(order: OrderSpec) -> Call:
    """A market order opens a position; a limit order is a pending order (GTC only)."""
    kind = sc.check_place_shape(order)
    sc.no_quote_size(order, "Match-Trader sizes orders in lots only")
    if order.position_id is not None:
        raise InvalidArgument("order.position_id", "must not be set on a new order")
    body: dict[str, Any] = {"instrument": _instrument(order), "orderSide": _side(order),
                            "volume": _number(order.quantity, "order.quantity")}  # fmt: skip
    if kind is OrderType.MARKET:
        body = _with_levels(body, order) | {"isMobile": False}
        return Call("POST", _PREFIX + "/position/open", json=body)
    if kind is not OrderType.LIMIT:
        raise InvalidArgument(
            "order.order_type", f"{kind.value} orders are not built for Match-Trader"
        )
    if order.time_in_force not in (None, TimeInForce.GTC):
        raise InvalidArgument("order.time_in_force", "Match-Trader pending orders are GTC only")
    body |= {"type": "LIMIT", "price": _number(order.price, "order.price")}
    body = _with_levels(body, order) | {"isMobile": False}
    return Call("POST", _PREFIX + "/pending-order/create", json=body)


def _cancel(order: OrderSpec) -> Call:
    """Cancel a pending limit order: the platform wants its instrument and side too."""
    body = {"id": _id(order.venue_order_id, "order.venue_order_id"), "type": "LIMIT",
            "instrument": _instrument(order), "orderSide": _side(order)}  # fmt: skip
    return Call("POST", _PREFIX + "/pending-order/cancel", json=body)


def _amend_position(order: OrderSpec) -> Call:
    """Set a position's stop loss and/or take profit (an omitted level is left unchanged)."""
    if order.stop_loss is None and order.take_profit is None:
        raise InvalidArgument("order.stop_loss", "or order.take_profit is required")
    body = {"positionId": _id(order.position_id, "order.position_id")}
    return Call("POST", _PREFIX + "/position/edit", json=_with_levels(body, order))


def _close_position(order: OrderSpec) -> Call:
    """Close ``quantity`` lots of a position (its whole volume closes it whole)."""
    if order.quantity is None:
        raise InvalidArgument(
            "order.quantity", "Match-Trader closes an explicit volume: give the lots to close"
        )
    body = {"positionId": _id(order.position_id, "order.position_id"),
            "instrument": _instrument(order), "orderSide": _side(order),
            "volume": _number(order.quantity, "order.quantity")}  # fmt: skip
    return Call("POST", _PREFIX + "/position/close", json=body)


def _with_levels(body: dict[str, Any], order: OrderSpec) -> dict[str, Any]:
    """``body`` with ``slPrice``/``tpPrice`` for the levels given (prices only)."""
    for name, level, field in (("slPrice", order.stop_loss, "order.stop_loss"),
                               ("tpPrice", order.take_profit, "order.take_profit")):  # fmt: skip
        if level is not None:
            body[name] = _level_price(level, field)
    return body


def _level_price(level: ProtectiveLevel, field: str) -> float:
    if level.distance is not None or level.price is None:
        raise InvalidArgument(field, "Match-Trader takes protective levels as prices only")
    return _number(level.price, field)


def _no_levels(order: OrderSpec) -> None:
    """Protective fields on an operation that cannot carry them are refused, never dropped."""
    for value, field in ((order.stop_loss, "order.stop_loss"),
                         (order.take_profit, "order.take_profit")):  # fmt: skip
        if value is not None:
            raise InvalidArgument(field, f"is not accepted for {order.operation.value}")


def _number(value: Decimal | None, field: str) -> float:
    """A positive decimal as a JSON number (the API's type): at most 15 significant digits, so
    the double's shortest form is the decimal itself (Decimal("0.1") is sent as 0.1)."""
    sc.positive_decimal(value, field)
    assert value is not None
    if len(value.normalize().as_tuple().digits) > _MAX_DIGITS:
        raise InvalidArgument(field, f"must have at most {_MAX_DIGITS} significant digits")
    return float(value)


def _instrument(order: OrderSpec) -> str:
    name = sc.symbol(order)
    if name is None or not _INSTRUMENT.fullmatch(name):
        raise InvalidArgument("order.symbol", "must be a Match-Trader instrument such as EURUSD")
    return name


def _side(order: OrderSpec) -> str:
    if order.side is None:
        raise InvalidArgument("order.side", f"is required for {order.operation.value}")
    return _SIDES[order.side]


def _id(value: str | None, field: str) -> str:
    checked = hc.path_id(value, field)
    assert checked is not None  # required=True
    return checked


SPEC = VenueSpec(
    venue=Venue.MATCH_TRADER,
    label="Match-Trader",
    urls={Environment.PAPER: SANDBOX, Environment.TESTNET: SANDBOX},
    missing_environment=(
        "Match-Trader has no shared live host: each broker runs its own platform "
        "(set signing.venue_base_urls.match_trader)"
    ),
    endpoints=Endpoints(patterns=(
        (methods("POST"), re.compile(rf"/mtr-api/{_SYSTEM}/(?:position/(?:open|edit|close)"
                                     r"|pending-order/(?:create|cancel))")),
        (methods("GET"),
         re.compile(rf"/mtr-api/{_SYSTEM}/(?:open-positions|active-orders|balance)")),
    )),
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.SESSION_LOGIN}),
    scheme=StaticHeaders(headers=(), fixed=(("Accept", "application/json"),)),
    mapping=orders,
    proxy_only=True,
    single_permission_tier=True,
    protective_orders=True,
    position_side=True,
    session=SESSION,
    size_unit=SizeUnit.LOTS,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
