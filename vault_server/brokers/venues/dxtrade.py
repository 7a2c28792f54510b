"""DXtrade (Devexperts) REST API: a password session held by the vault; proxy only.

DXtrade has no request signature a retail user can get: the vault logs in with the account's
username, domain and password and sends ``Authorization: DXAPI <sessionToken>`` on every call
(``dxtrade_session.py``). The token carries the whole login's rights, so the venue is
``proxy_only`` and ``single_permission_tier``; there is no permission query and no withdrawal or
transfer call in the trading API (reference [21]; ``/accounts/{a}/transfers`` only lists).

Each broker hosts DXtrade on its own domain, so the base URL (scheme, host and the ``/dxsca-web``
path prefix) comes from configuration (``signing.venue_base_urls.dxtrade``). Devexperts' public
demo, ``https://demo.dx.trade/dxsca-web``, is the PAPER/TESTNET default (the base used by
third-party clients and SDKs; UNVERIFIED as a default for any broker's demo accounts); LIVE has
no default and is refused until configured.

Material: ``username`` (the DXtrade login), ``server`` (its domain, e.g. ``default``), ``secret``
(the password) and ``account_id`` (the account code ``clearing:account``, e.g.
``default:dealtest``, sent as it is in the path).

=================  ===============================================  ===========================
operation          request                                          body
=================  ===============================================  ===========================
place              ``POST /accounts/{a}/orders``                    order, or IF-THEN group
amend              ``PUT /accounts/{a}/orders`` + If-Match          order, or IF-THEN group
cancel             ``DELETE /accounts/{a}/orders/{code}`` + If-Match  -
query order        ``GET /accounts/{a}/orders/history?with-...``    -
open orders        ``GET /accounts/{a}/orders``                     -
account            ``GET /accounts/{a}/metrics``                    -
positions          ``GET /accounts/{a}/positions``                  -
close position     ``POST /accounts/{a}/orders``                    MARKET, CLOSE, positionCode
amend position     ``PUT /accounts/{a}/orders`` + If-Match          the SL/TP order (existing)
                   ``POST /accounts/{a}/orders``                    a new SL/TP order
=================  ===============================================  ===========================

Orders (spec "Single Order Request"): ``{"orderCode", "type", "instrument", "quantity",
"positionEffect", "side", "limitPrice" | "stopPrice", "tif", "expireDate"}``. ``orderCode`` is
the caller's ``client_order_id`` (required: DXtrade refuses a second order with the same code
on an account, which is what makes a resend safe). ``type`` is MARKET, LIMIT or STOP (the
vault's ``stop_loss`` order type, triggered at ``stop_price``); ``tif`` GTC (the default), DAY,
GTD (with extra ``expireDate``), IOC or FOK (MARKET: GTC, IOC, FOK).

Size: ``quantity`` is "the quantity of the order in units (not in lots)" - units of the
instrument (EUR/USD: euros) - so DXtrade's unit is ``SizeUnit.BASE_UNITS``. It is sent as a JSON
number, exactly: a size or price that a JSON number cannot carry exactly is refused.

Stop loss / take profit on a new order: an IF-THEN group (spec "Order Group Request") - the entry
first, then a STOP (stop loss) and/or LIMIT (take profit) order on the opposite side with
``positionEffect`` CLOSE, no quantity (it takes the position's) and GTC, named
``<client_order_id>-sl`` and ``-tp``. Only absolute prices: DXtrade has no distance here.

Positions: ``position_id`` is DXtrade's ``positionCode``; ``side`` is the position's side (BUY
for a long); the orders the vault sends take the opposite side. Close: a MARKET order with
``positionEffect`` CLOSE and the ``positionCode``, the whole position unless ``quantity`` is
given. Stop loss / take profit of a position are orders linked to it: amend the existing one by
its order code (``venue_order_id``, e.g. ``<client_order_id>-sl``) with PUT, or add one with a
new ``client_order_id`` by POST; one level per request.

PUT and DELETE are accepted by DXtrade only as conditional requests: extra ``ifMatch`` carries
the ``ETag`` of the caller's last open-orders query and is sent as ``If-Match`` (a stale one is
refused with 412, nothing is changed). A modify is the whole order again, without ``type``: an
entry placed with stop loss / take profit is amended with the same legs (the IF-THEN group is
sent again), since a single-order modify would make the group a single order.

Sources: Devexperts' DX REST API spec, https://demo-xt.dx.trade/dxweb/specs/DX_REST_API.html
and its copy published for a rebranded platform,
https://sway-technologies.gitbook.io/sway-charts-api-documentation/rest-api-specification
("Single Order Request", "Order Group Request", "Order Leg", "Position", "PUT Modify Order",
"DELETE Cancel Order", "Conditional Requests & Updates", "Errors"). UNVERIFIED here: that
``positionCode`` equals the opening order's id (third-party clients use it so; the vault takes
``position_id`` from the caller and never assumes it), the IOC/FOK values for MARKET orders, and
the order-history query parameters (``with-order-id``/``with-client-id``, from a third-party
SDK).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec
from vault_server.brokers.venues.dxtrade_session import SESSION
from vault_server.core.errors import InvalidArgument, OperationNotSupported

DEMO_URL = "https://demo.dx.trade/dxsca-web"
_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_ACCOUNT = rf"{_PART}:{_PART}"
_CODE = r"[A-Za-z0-9_:-]{1,64}"
_ACCOUNT_ID = re.compile(_ACCOUNT)
_ORDER_CODE = re.compile(_CODE)
_INSTRUMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9./_#+&-]{0,39}")
_POSITION_CODE = re.compile(r"[A-Za-z0-9_:.-]{1,64}")
_ORDER_ID = re.compile(r"[0-9]{1,20}")
_ETAG = re.compile(r"[\x21-\x7e]{1,128}")
_RESERVED_CODES = frozenset({"group", "history"})  # /orders/group and /orders/history exist
_KINDS = {OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP_LOSS: "STOP"}
_TIFS = {None: "GTC", TimeInForce.GTC: "GTC", TimeInForce.DAY: "DAY", TimeInForce.GTD: "GTD",
         TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}  # fmt: skip
_MARKET_TIFS = frozenset({"GTC", "IOC", "FOK"})
_OPPOSITE = {Side.BUY: "SELL", Side.SELL: "BUY"}
_IF_MATCH: Mapping[str, sc.ExtraRule] = {"ifMatch": lambda v: _ETAG.fullmatch(v) is not None}
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {"expireDate": hc.is_rfc3339_utc}
_AMEND_EXTRAS: Mapping[str, sc.ExtraRule] = {**_PLACE_EXTRAS, **_IF_MATCH}
RESERVED = frozenset({"orderCode", "type", "instrument", "quantity", "positionEffect",
                      "positionCode", "side", "limitPrice", "stopPrice", "tif", "account",
                      "orders", "contingencyType"})  # fmt: skip


@dataclass(frozen=True)
class DxCall(Call):
    """A call that may be conditional: ``if_match`` is sent as ``If-Match`` (PUT, DELETE)."""

    if_match: str | None = None


@dataclass(frozen=True)
class JsonScheme:
    """No signature (the session adds ``Authorization``): JSON body, ``Accept``, ``If-Match``.

    ``expire_at_ms`` is the vault's own freshness window (``now + recv_window``).
    """

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        headers: list[tuple[str, str]] = [("Accept", "application/json")]
        body = b""
        if call.json is not None:
            body = hc.compact_json(call.json)
            headers.append(("Content-Type", "application/json"))
        if_match = getattr(call, "if_match", None)
        if if_match is not None:
            headers.append(("If-Match", if_match))
        url = base + call.path
        if call.params:
            url += "?" + sc.percent_encode(call.params)
        expire = sc.now_ms(ctx) + sc.recv_window_ms(ctx)
        return PreparedRequest(call.method, url, tuple(headers), body, expire_at_ms=expire)


def account_code(credential: VenueCredential) -> str:
    account = credential.account_id
    if not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account):
        raise InvalidArgument(
            "credential.account_id", "must be a DXtrade account code such as default:dealtest"
        )
    return account


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    acct = "/accounts/" + account_code(credential)
    op = order.operation
    sc.no_quote_size(order, "DXtrade sizes orders in units of the instrument only")
    if op not in (Operation.PLACE_ORDER, Operation.AMEND_ORDER, Operation.AMEND_POSITION) and (
        order.stop_loss is not None or order.take_profit is not None
    ):
        raise InvalidArgument("order.stop_loss", f"is not used by {op.value}")
    if op not in (Operation.CLOSE_POSITION, Operation.AMEND_POSITION) and order.position_id:
        raise InvalidArgument("order.position_id", f"is not used by {op.value}")
    if op is Operation.PLACE_ORDER:
        extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
        body = _with_legs(order, _code(order, new=True), extras, replace=False)
        return DxCall("POST", acct + "/orders", json=body)
    if op is Operation.AMEND_ORDER:
        extras = dict(sc.checked_extras(order.extras, _AMEND_EXTRAS, RESERVED))
        if_match = _if_match(extras)
        body = _with_legs(order, _code(order, new=False), extras, replace=True)
        return DxCall("PUT", acct + "/orders", json=body, if_match=if_match)
    if op is Operation.CANCEL_ORDER:
        if_match = _if_match(dict(sc.checked_extras(order.extras, _IF_MATCH, RESERVED)))
        return DxCall("DELETE", f"{acct}/orders/{_code(order, new=False)}", if_match=if_match)
    if op is Operation.CLOSE_POSITION:
        return DxCall("POST", acct + "/orders", json=_close(order))
    if op is Operation.AMEND_POSITION:
        return _amend_position(order, acct)
    sc.no_extras(order)
    if op is Operation.QUERY_ORDER:
        return DxCall("GET", acct + "/orders/history", params=_history_filter(order))
    if op is Operation.QUERY_OPEN_ORDERS:
        return DxCall("GET", acct + "/orders")
    if op is Operation.QUERY_POSITIONS:
        return DxCall("GET", acct + "/positions")
    if op is Operation.QUERY_ACCOUNT:
        return DxCall("GET", acct + "/metrics")
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


# --- fields ---------------------------------------------------------------------------------------
def _code(order: OrderSpec, *, new: bool) -> str:
    """A new order's code (the client order id), or the code of the order a request targets."""
    if new:
        value, field = order.client_order_id, "order.client_order_id"
    elif order.venue_order_id:
        value, field = order.venue_order_id, "order.venue_order_id"
    else:
        value = order.client_order_id
        field = "order.client_order_id" if value else "order.venue_order_id"
    if not value:
        raise InvalidArgument(field, "is required: DXtrade names every order by its order code")
    if not _ORDER_CODE.fullmatch(value) or value.lower() in _RESERVED_CODES:
        raise InvalidArgument(field, "must be a DXtrade order code: 1-64 of A-Z a-z 0-9 _ : -")
    return value


def _number(value: Decimal | None, field: str) -> int | float:
    """A positive decimal as the JSON number DXtrade reads, refused if not carried exactly."""
    exact = Decimal(sc.positive_decimal(value, field))
    if exact == exact.to_integral_value():
        return int(exact)
    approx = float(exact)
    if Decimal(repr(approx)) != exact:
        raise InvalidArgument(field, "has more digits than a JSON number carries exactly")
    return approx


def _instrument(order: OrderSpec) -> str:
    name = sc.symbol(order)
    if name is None or not _INSTRUMENT.fullmatch(name):
        raise InvalidArgument("order.symbol", "must be a DXtrade instrument such as EUR/USD")
    return name


def _side(order: OrderSpec) -> Side:
    if order.side is None:
        raise InvalidArgument("order.side", "is required for this operation")
    return order.side


def _level(level: ProtectiveLevel | None, field: str) -> int | float | None:
    if level is None:
        return None
    if level.distance is not None:
        raise InvalidArgument(field, "DXtrade protective orders take an absolute price only")
    return _number(level.price, field + ".price")


def _if_match(extras: dict[str, str]) -> str:
    value = extras.pop("ifMatch", None)
    if value is None:
        raise InvalidArgument(
            "order.extras",
            "ifMatch is required: DXtrade modifies and cancels only with If-Match (the ETag of "
            "the last open-orders query)",
        )
    return value


def _history_filter(order: OrderSpec) -> tuple[tuple[str, str], ...]:
    if order.venue_order_id:
        if not _ORDER_ID.fullmatch(order.venue_order_id):
            raise InvalidArgument("order.venue_order_id", "must be a DXtrade order id (digits)")
        return (("with-order-id", order.venue_order_id),)
    client_id = hc.path_id(order.client_order_id, "order.client_order_id", required=False)
    if client_id is None:
        raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")
    return (("with-client-id", client_id),)


def _position_code(order: OrderSpec) -> str:
    code = order.position_id
    if not code:
        raise InvalidArgument("order.position_id", "is required: the DXtrade positionCode")
    if not _POSITION_CODE.fullmatch(code):
        raise InvalidArgument("order.position_id", "must be 1-64 of A-Z a-z 0-9 _ : . -")
    return code


# --- orders ---------------------------------------------------------------------------------------
def _entry(order: OrderSpec, code: str, extras: dict[str, str], *, replace: bool) -> dict[str, Any]:
    kind = hc.check_place_shape_any_tif(order)
    if kind not in _KINDS or (replace and kind is OrderType.MARKET):
        shown = "limit or stop_loss" if replace else "market, limit or stop_loss"
        raise InvalidArgument("order.order_type", f"DXtrade builds {shown} orders here")
    tif = _TIFS.get(order.time_in_force)
    if tif is None or (kind is OrderType.MARKET and tif not in _MARKET_TIFS):
        raise InvalidArgument("order.time_in_force", "is not valid for this DXtrade order type")
    if ("expireDate" in extras) != (tif == "GTD"):
        raise InvalidArgument("order.extras", "expireDate is required exactly for GTD orders")
    body: dict[str, Any] = {"orderCode": code}
    if not replace:
        body["type"] = _KINDS[kind]  # "must be omitted in Replace requests"
    quantity = _number(order.quantity, "order.quantity")
    body |= {"instrument": _instrument(order), "quantity": quantity, "positionEffect": "OPEN",
             "side": _side(order).name}  # fmt: skip
    if kind is OrderType.LIMIT:
        body["limitPrice"] = _number(order.price, "order.price")
    elif kind is OrderType.STOP_LOSS:
        body["stopPrice"] = _number(order.stop_price, "order.stop_price")
    body["tif"] = tif
    if "expireDate" in extras:
        body["expireDate"] = extras["expireDate"]
    return body


def _protective(
    code: str, kind: str, price: int | float, instrument: str, side: str, *, replace: bool,
    position: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"orderCode": code}
    if not replace:
        body["type"] = kind
    body |= {"instrument": instrument, "positionEffect": "CLOSE"}
    if position is not None:
        body["positionCode"] = position
    body |= {"side": side, ("stopPrice" if kind == "STOP" else "limitPrice"): price, "tif": "GTC"}
    return body


def _with_legs(
    order: OrderSpec, code: str, extras: dict[str, str], *, replace: bool
) -> dict[str, Any]:
    """The entry alone, or the IF-THEN group of the entry and its stop loss / take profit."""
    entry = _entry(order, code, extras, replace=replace)
    stop = _level(order.stop_loss, "order.stop_loss")
    take = _level(order.take_profit, "order.take_profit")
    if stop is None and take is None:
        return entry
    if len(code) > 61:  # room for the legs' "-sl" / "-tp"
        field = "order.venue_order_id" if replace else "order.client_order_id"
        raise InvalidArgument(field, "must be at most 61 characters with stop loss / take profit")
    opposite = _OPPOSITE[_side(order)]
    legs = [
        _protective(f"{code}-{suffix}", kind, price, entry["instrument"], opposite, replace=replace)
        for suffix, kind, price in (("sl", "STOP", stop), ("tp", "LIMIT", take))
        if price is not None
    ]
    return {"orders": [entry, *legs], "contingencyType": "IF-THEN"}


def _close(order: OrderSpec) -> dict[str, Any]:
    sc.no_extras(order)
    if order.price is not None or order.stop_price is not None or order.time_in_force is not None:
        raise InvalidArgument("order.price", "a DXtrade close is a market order: no price or TIF")
    body: dict[str, Any] = {"orderCode": _code(order, new=True), "type": "MARKET",
                            "instrument": _instrument(order)}  # fmt: skip
    if order.quantity is not None:  # partly; without it the whole position closes
        body["quantity"] = _number(order.quantity, "order.quantity")
    body |= {"positionEffect": "CLOSE", "positionCode": _position_code(order),
             "side": _OPPOSITE[_side(order)], "tif": "GTC"}  # fmt: skip
    return body


def _amend_position(order: OrderSpec, acct: str) -> DxCall:
    position, instrument = _position_code(order), _instrument(order)
    opposite = _OPPOSITE[_side(order)]
    stop = _level(order.stop_loss, "order.stop_loss")
    take = _level(order.take_profit, "order.take_profit")
    if stop is not None and take is None:
        kind, price = "STOP", stop
    elif take is not None and stop is None:
        kind, price = "LIMIT", take
    else:
        raise InvalidArgument(
            "order.stop_loss", "exactly one of stop_loss or take_profit: one DXtrade order each"
        )
    if order.venue_order_id:  # the position's existing stop loss / take profit order
        if_match = _if_match(dict(sc.checked_extras(order.extras, _IF_MATCH, RESERVED)))
        body = _protective(_code(order, new=False), kind, price, instrument, opposite,
                           replace=True, position=position)  # fmt: skip
        return DxCall("PUT", acct + "/orders", json=body, if_match=if_match)
    sc.no_extras(order)
    body = _protective(_code(order, new=True), kind, price, instrument, opposite,
                       replace=False, position=position)  # fmt: skip
    return DxCall("POST", acct + "/orders", json=body)


_A = rf"/accounts/{_ACCOUNT}"
SPEC = VenueSpec(
    venue=Venue.DXTRADE,
    label="DXtrade",
    urls={Environment.PAPER: DEMO_URL, Environment.TESTNET: DEMO_URL},
    missing_environment=(
        "DXtrade is hosted by each broker on its own domain: set signing.venue_base_urls.dxtrade"
    ),
    endpoints=Endpoints(
        patterns=(
            (methods("POST", "PUT", "GET"), re.compile(rf"{_A}/orders")),
            (methods("DELETE"), re.compile(rf"{_A}/orders/(?!(?i:group|history)$){_CODE}")),
            (methods("GET"), re.compile(rf"{_A}/(?:orders/history|positions|metrics)")),
        ),
        blocked_words=("withdraw", "transfer", "deposit"),
    ),
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.SESSION_LOGIN}),
    scheme=JsonScheme(),
    mapping=orders,
    proxy_only=True,
    single_permission_tier=True,
    protective_orders=True,
    position_side=True,
    session=SESSION,
    size_unit=SizeUnit.BASE_UNITS,
)
ADAPTER = SpecAdapter(SPEC)
