"""IG REST trading API (``api.ig.com/gateway/deal``, demo ``demo-api.ig.com``): proxy only.

IG has no request signing: the vault logs in with the account's username and password and
sends the session's OAuth tokens on every call (``ig_session``: ``POST /session`` v3,
``Authorization: Bearer`` + ``IG-ACCOUNT-ID``, rotating refresh). The tokens carry the whole
account, so the venue is ``proxy_only`` and ``single_permission_tier``; IG has no permission API
and no withdrawal in REST (https://labs.ig.com/rest-trading-api-guide). ``credential.api_key``
is the application's ``X-IG-API-KEY``, ``credential.username``/``secret`` the login,
``credential.account_id`` the account (``IG-ACCOUNT-ID``, required).

==================  =====================================================  =======  ==========
operation           request                                                Version  answer
==================  =====================================================  =======  ==========
place               ``POST /positions/otc``                                2        dealReference
amend position      ``PUT /positions/otc/{dealId}``                        2        dealReference
close position      ``POST /positions/otc`` + ``_method: DELETE``          1        dealReference
query order         ``GET /confirms/{dealReference}``                      1        dealId, status
query positions     ``GET /positions``                                     2        positions
open orders         ``GET /workingorders``                                 2        workingOrders
account             ``GET /accounts``                                      1        accounts
==================  =====================================================  =======  ==========

Sources: https://labs.ig.com/reference/positions-otc.html (create v2, close v1: fields and
constraints), https://labs.ig.com/rest-trading-api-reference/service-detail?id=692
(``/workingorders`` v2), the reference's index of versions (``/positions`` GET v2,
``/positions/otc/{dealId}`` PUT v2, ``/confirms/{dealReference}`` GET v1, ``/accounts`` GET v1)
and https://labs.ig.com/rest-trading-api-guide; the update and confirm field lists were read
from IG's own sample clients and community SDKs, not from their reference pages (UNVERIFIED).
A close is ``DELETE /positions/otc`` with a body; many HTTP stacks drop a DELETE body, so IG
accepts ``POST`` with the header ``_method: DELETE`` instead (what IG's sample clients and the
``trading_ig`` library send; not on the reference page: UNVERIFIED). The vault always sends the
POST form.

Place (``POST /positions/otc`` v2): ``epic`` (``[A-Za-z0-9._]{6,30}``), ``expiry`` (extra,
default ``-``), ``direction`` BUY/SELL, ``size``, ``orderType`` MARKET (no ``level``) or LIMIT
(``level`` = price; a limit *deal*, filled or rejected at once, not a resting order),
``timeInForce`` EXECUTE_AND_ELIMINATE (IOC) or FILL_OR_KILL (FOK), ``currencyCode`` (extra;
for FX CFD epics ``CS.D.<BASE><QUOTE>.CFD.IP`` the quote currency by default: UNVERIFIED that
IG always deals those in the quote currency), ``forceOpen`` true (IG requires it with a stop or
limit; it also keeps every order its own position), ``guaranteedStop`` false, one of
``stopLevel``/``stopDistance`` (stop loss) and of ``limitLevel``/``limitDistance`` (take
profit), ``dealReference`` = the client order id (``[A-Za-z0-9_-]{1,30}``). Numbers are JSON
numbers with at most 15 significant digits and 12 decimals (IG: "precision is not more than 12
decimal places").

Amend position (``PUT /positions/otc/{dealId}`` v2): ``stopLevel`` and ``limitLevel`` as prices,
``trailingStop`` false. IG sets *both* levels from the body, so a level left out would be removed
(UNVERIFIED reading of the reference): the vault requires both and refuses distances.

Close (v1): ``dealId`` (the position id), ``direction`` = ``order.side``, the direction of the
closing deal (SELL closes a BUY position), ``size`` = ``order.quantity`` (IG needs the size:
the whole position's size closes it, less closes part of it), ``orderType`` MARKET.

Size unit: CONTRACTS. IG's ``size`` is the deal size in the instrument's own contract terms
(per point for spread bets, contracts/lots for CFDs: see the market's ``lotSize`` and
``contractSize``); the vault passes it through unchanged.

Not built: working orders (``POST /workingorders/otc``), so amend/cancel order are refused;
trailing and guaranteed stops; quote orders; v2 sessions and the encrypted password
(``ig_session``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    ProtectiveLevel,
    Side,
    SigningContext,
    SizeUnit,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.lifecycle import with_headers
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, live_and_practice
from vault_server.brokers.venues.ig_session import SESSION, account_id
from vault_server.core.errors import InvalidArgument, OperationNotSupported

if TYPE_CHECKING:
    from vault_server.brokers.schemes import Scheme

_DEAL_ID = r"[A-Za-z0-9_-]{1,30}"
_DEAL_REF = re.compile(r"[A-Za-z0-9_-]{1,30}")
_EPIC = re.compile(r"[A-Za-z0-9._]{6,30}")
_FX_CFD = re.compile(r"CS\.D\.[A-Z]{3}(?P<quote>[A-Z]{3})\.CFD\.IP")
_TIFS = {None: None, TimeInForce.IOC: "EXECUTE_AND_ELIMINATE", TimeInForce.FOK: "FILL_OR_KILL"}
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "currencyCode": sc.matches(r"[A-Z]{3}"),
    "expiry": sc.matches(r"(?:\d{2}-)?[A-Z]{3}-\d{2}|-|DFB"),
}
RESERVED = frozenset({"epic", "direction", "size", "orderType", "level", "timeInForce",
                      "forceOpen", "guaranteedStop", "stopLevel", "stopDistance", "limitLevel",
                      "limitDistance", "dealReference", "trailingStop", "quoteId"})  # fmt: skip
# (method, path) -> the Version header IG serves that shape under.
_VERSIONS = (
    ("POST", re.compile(r"/positions/otc"), "2"),
    ("DELETE", re.compile(r"/positions/otc"), "1"),
    ("PUT", re.compile(rf"/positions/otc/{_DEAL_ID}"), "2"),
    ("GET", re.compile(r"/positions|/workingorders"), "2"),
    ("GET", re.compile(rf"/confirms/{_DEAL_ID}|/accounts"), "1"),
)


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    """The IG call for ``order`` (see the module table); anything else is refused."""
    account_id(credential)  # IG-ACCOUNT-ID is required on every call: say so before sending
    op = order.operation
    if op not in (Operation.PLACE_ORDER, Operation.AMEND_POSITION):
        _no_protection(order)
    if op is Operation.PLACE_ORDER:
        return Call("POST", "/positions/otc", json=_position(order))
    if op is Operation.AMEND_POSITION:
        return Call("PUT", f"/positions/otc/{_deal_id(order)}", json=_levels(order))
    if op is Operation.CLOSE_POSITION:
        return Call("DELETE", "/positions/otc", json=_close(order))
    sc.no_extras(order)
    if op is Operation.QUERY_POSITIONS:
        return Call("GET", "/positions")
    if op is Operation.QUERY_ORDER:
        return Call("GET", f"/confirms/{_reference(order)}")
    if op is Operation.QUERY_OPEN_ORDERS:
        return Call("GET", "/workingorders")
    if op is Operation.QUERY_ACCOUNT:
        return Call("GET", "/accounts")
    raise OperationNotSupported(
        "IG working orders are not built: only deals and positions",
        metadata={"venue": Venue.IG.value, "operation": op.value},
    )


def _position(order: OrderSpec) -> dict[str, Any]:
    """The ``POST /positions/otc`` v2 body: a market or limit deal, with its stop and limit."""
    kind = hc.check_place_shape_any_tif(order)
    if kind not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidArgument("order.order_type", f"{kind.value} deals are not built for IG")
    sc.no_quote_size(order, "IG sizes deals in contracts only")
    if order.time_in_force not in _TIFS:
        raise InvalidArgument("order.time_in_force", "IG deals take IOC or FOK only")
    extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
    epic = sc.symbol(order)
    if epic is None or not _EPIC.fullmatch(epic):
        raise InvalidArgument("order.symbol", "must be an IG epic such as CS.D.EURUSD.CFD.IP")
    body: dict[str, Any] = {
        "epic": epic, "expiry": extras.get("expiry", "-"),
        "direction": "BUY" if order.side is Side.BUY else "SELL",
        "size": _number(order.quantity, "order.quantity"), "orderType": kind.name,
    }  # fmt: skip
    if kind is OrderType.LIMIT:
        body["level"] = _number(order.price, "order.price")
    if (tif := _TIFS[order.time_in_force]) is not None:
        body["timeInForce"] = tif
    body |= {"currencyCode": _currency(epic, extras), "forceOpen": True, "guaranteedStop": False}
    body |= _protective(order.stop_loss, "stop", "order.stop_loss")
    body |= _protective(order.take_profit, "limit", "order.take_profit")
    if order.client_order_id:
        body["dealReference"] = _reference_value(order.client_order_id, "order.client_order_id")
    return body


def _levels(order: OrderSpec) -> dict[str, Any]:
    """The ``PUT /positions/otc/{dealId}`` v2 body: both levels, as prices (IG replaces both)."""
    sc.no_extras(order)
    stop, limit = order.stop_loss, order.take_profit
    if stop is None or limit is None:
        raise InvalidArgument(
            "order.take_profit" if stop is not None else "order.stop_loss",
            "IG replaces both levels of a position: give stop_loss and take_profit",
        )
    for level, field in ((stop, "order.stop_loss"), (limit, "order.take_profit")):
        if level.distance is not None or level.price is None:
            raise InvalidArgument(field, "IG amends a position's levels as prices only")
    return {"stopLevel": _number(stop.price, "order.stop_loss.price"),
            "limitLevel": _number(limit.price, "order.take_profit.price"),
            "trailingStop": False}  # fmt: skip


def _close(order: OrderSpec) -> dict[str, Any]:
    """The close body: the deal, the closing direction and the size, at market. ``side`` is the
    position's side (as for every venue): the closing deal goes the other way."""
    sc.no_extras(order)
    if order.side is None:
        raise InvalidArgument("order.side", "IG needs the position's side (BUY for a long)")
    if order.price is not None or order.order_type not in (None, OrderType.MARKET):
        raise InvalidArgument("order.order_type", "IG positions are closed at market here")
    if order.time_in_force is not None:
        raise InvalidArgument("order.time_in_force", "is not used to close an IG position")
    return {"dealId": _deal_id(order), "direction": "SELL" if order.side is Side.BUY else "BUY",
            "size": _number(order.quantity, "order.quantity"), "orderType": "MARKET"}  # fmt: skip


def _protective(level: ProtectiveLevel | None, name: str, field: str) -> dict[str, Any]:
    """``{name}Level`` or ``{name}Distance`` for a stop loss / take profit (exactly one given)."""
    if level is None:
        return {}
    if (level.price is None) == (level.distance is None):
        raise InvalidArgument(field, "give exactly one of price and distance")
    if level.price is not None:
        return {f"{name}Level": _number(level.price, field + ".price")}
    return {f"{name}Distance": _number(level.distance, field + ".distance")}


def _no_protection(order: OrderSpec) -> None:
    """Protective levels belong to a new deal or an amend: elsewhere they would be dropped."""
    for value, field in ((order.stop_loss, "order.stop_loss"),
                         (order.take_profit, "order.take_profit")):  # fmt: skip
        if value is not None:
            raise InvalidArgument(field, f"is not used by {order.operation.value} at IG")


def _number(value: Decimal | None, field: str) -> int | float:
    """A positive decimal as the JSON number IG reads, refused if a float would alter it."""
    text = sc.positive_decimal(value, field)
    exact = Decimal(text)
    digits, exponent = exact.as_tuple().digits, exact.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if len(digits) > 15 or places > 12:
        raise InvalidArgument(field, "IG takes at most 15 significant digits and 12 decimals")
    return int(exact) if exact == exact.to_integral_value() else float(text)


def _currency(epic: str, extras: Mapping[str, str]) -> str:
    if "currencyCode" in extras:
        return extras["currencyCode"]
    match = _FX_CFD.fullmatch(epic)
    if match is None:
        raise InvalidArgument("order.extras", "currencyCode is required for this epic")
    return match["quote"]


def _deal_id(order: OrderSpec) -> str:
    value = order.position_id
    if not value or not re.fullmatch(_DEAL_ID, value):
        raise InvalidArgument("order.position_id", "must be the IG deal id of the position")
    return value


def _reference(order: OrderSpec) -> str:
    value = order.venue_order_id or order.client_order_id
    return _reference_value(value, "order.client_order_id")


def _reference_value(value: str | None, field: str) -> str:
    if not value or not _DEAL_REF.fullmatch(value):
        raise InvalidArgument(field, "must be an IG deal reference: 1-30 of A-Z a-z 0-9 _ -")
    return value


@dataclass(frozen=True)
class IgHeaders:
    """``StaticHeaders`` plus what IG wants per call: its ``Version``, and DELETE with a body
    sent as POST with ``_method: DELETE`` (IG's documented override)."""

    fixed: StaticHeaders

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        extra: tuple[tuple[str, str], ...] = (("Version", _version(call.method, call.path)),)
        if call.method == "DELETE":
            call = dataclasses.replace(call, method="POST")
            extra += (("_method", "DELETE"),)
        return with_headers(self.fixed.sign(call, base, credential, ctx), extra)


def _version(method: str, path: str) -> str:
    for verb, pattern, version in _VERSIONS:
        if verb == method and pattern.fullmatch(path):
            return version
    raise OperationNotSupported("no IG version is known for this call", metadata={"path": path})


_SCHEME: Scheme = IgHeaders(
    StaticHeaders(headers=(), fixed=(("Accept", "application/json; charset=UTF-8"),))
)
SPEC = VenueSpec(
    venue=Venue.IG,
    label="IG",
    urls=live_and_practice(
        "https://api.ig.com/gateway/deal", "https://demo-api.ig.com/gateway/deal"
    ),
    endpoints=Endpoints(
        allowed=frozenset({("POST", "/positions/otc"), ("DELETE", "/positions/otc"),
                           ("GET", "/positions"), ("GET", "/workingorders"),
                           ("GET", "/accounts")}),
        patterns=((methods("PUT"), re.compile(rf"/positions/otc/{_DEAL_ID}")),
                  (methods("GET"), re.compile(rf"/confirms/{_DEAL_ID}"))),
    ),
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.SESSION_LOGIN}),
    scheme=_SCHEME,
    mapping=orders,
    proxy_only=True,
    single_permission_tier=True,
    protective_orders=True,
    position_side=True,
    session=SESSION,
    size_unit=SizeUnit.CONTRACTS,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
