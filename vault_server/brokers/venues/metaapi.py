"""MetaTrader 4/5 through MetaApi (``mt-client-api-v1.<region>.agiliumtrade.ai``): proxy only.

MetaApi runs the MetaTrader terminal in its cloud and holds the MT password; the vault holds the
user's MetaApi API token and, on the order path, only ever sends a short-lived token it minted
from it, narrowed to this one account and the client API (``metaapi_session.py``:
``Lifecycle.DERIVED_TOKEN``, algorithm ``KeyAlgorithm.BEARER``). ``single_permission_tier``: the
held broad token can manage accounts (MetaApi tokens are narrowable, but what the vault holds is
the broad one), and every minted token may trade. Withdrawals: MetaTrader has none.

Material: ``secret`` = the MetaApi API token, ``account_id`` = the MetaApi account id (not the MT
login), ``server`` = the account's MetaApi region (``new-york``, ``london``, ``singapore``,
``vint-hill`` ...). Client REST docs (https://metaapi.cloud/docs/client/restApi/api/trade/ and
``.../readTradingTerminalState/readPositions/``): each URL "is valid for new-york region only",
example host ``https://mt-client-api-v1.new-york.agiliumtrade.ai``; the SDK builds
``https://mt-client-api-v1.{region}.{domain}`` (``lib/clients/domain.client.ts``, domain
``agiliumtrade.ai`` in its tests). So :data:`SPEC` ``urls`` name the new-york host and the scheme
puts the credential's region in its place (not when a base URL override is configured).
MetaApi has no separate practice host: a demo account is a demo MT account, so every
environment uses the same hosts.

=================  ==================================================  ==========================
operation          request (all under ``/users/current/accounts/{a}``)  body
=================  ==================================================  ==========================
place              ``POST /trade``                                     ``ORDER_TYPE_BUY|SELL``,
                                                                       ``..._LIMIT``, ``..._STOP``
amend order        ``POST /trade``                                     ``ORDER_MODIFY``
cancel             ``POST /trade``                                     ``ORDER_CANCEL``
amend position     ``POST /trade``                                     ``POSITION_MODIFY``
close position     ``POST /trade``                                     ``POSITION_CLOSE_ID`` or
                                                                       ``POSITION_PARTIAL``
query positions    ``GET /positions``                                  -
open orders        ``GET /orders``; one: ``GET /orders/{id}``           -
account            ``GET /accountInformation``                         -
=================  ==================================================  ==========================

Trade fields (https://metaapi.cloud/docs/client/models/metatraderTrade/): ``actionType``,
``symbol``, ``volume`` (LOTS, a JSON number), ``openPrice`` (limit/stop price), ``stopLoss`` /
``takeProfit`` (numbers) with ``stopLossUnits`` / ``takeProfitUnits`` ``ABSOLUTE_PRICE``
(default) or ``RELATIVE_PRICE`` for a ``ProtectiveLevel.distance`` (relative to the current
price for market orders and the open price for pending ones, ``stopPriceBase`` defaults; the sign
convention of a relative stop is UNVERIFIED: the distance is sent positive), ``orderId``,
``positionId``, ``clientId`` (with ``comment``, at most 26 characters together), ``magic``,
``slippage`` (points). Pending orders are GTC unless ``expiration.type`` says
``ORDER_TIME_DAY`` (UNVERIFIED names, from the SDK's ``ExpirationOptions``). A trade answer is
200 ``{numericCode, stringCode, message, orderId?, positionId?}`` whatever the terminal decided
(``TRADE_RETCODE_DONE`` ...): the caller reads ``stringCode``.

Blocked: everything else, above all the account-management (provisioning) API
``mt-provisioning-api-v1...`` whose ``/users/current/accounts/{id}`` paths create, read and
delete accounts carrying MT passwords - never an origin of this venue, and the bare account path
is not on the list. The orders, order-by-id and account-information paths follow the client REST
docs' naming; only trade and positions were read on their pages (others UNVERIFIED).
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
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec
from vault_server.brokers.venues.metaapi_session import SESSION, account_id
from vault_server.core.errors import InvalidArgument, OperationNotSupported

DEFAULT_REGION = "new-york"
_REGION = re.compile(r"[a-z]{2,16}(?:-[a-z]{2,16}){0,2}")
_TICKET = re.compile(r"[0-9]{1,20}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,26}")
_ACCT = r"/users/current/accounts/[0-9A-Za-z-]{8,64}"
_KINDS = {(OrderType.MARKET, Side.BUY): "ORDER_TYPE_BUY",
          (OrderType.MARKET, Side.SELL): "ORDER_TYPE_SELL",
          (OrderType.LIMIT, Side.BUY): "ORDER_TYPE_BUY_LIMIT",
          (OrderType.LIMIT, Side.SELL): "ORDER_TYPE_SELL_LIMIT",
          (OrderType.STOP_LOSS, Side.BUY): "ORDER_TYPE_BUY_STOP",
          (OrderType.STOP_LOSS, Side.SELL): "ORDER_TYPE_SELL_STOP"}  # fmt: skip
_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "slippage": sc.matches(r"[0-9]{1,6}"),
    "magic": sc.matches(r"[0-9]{1,18}"),
    "comment": sc.matches(r"[A-Za-z0-9 _.:#-]{1,26}"),
}
RESERVED = frozenset({"actionType", "symbol", "volume", "openPrice", "stopLoss", "takeProfit",
                      "stopLossUnits", "takeProfitUnits", "orderId", "positionId", "clientId",
                      "expiration", "stopLimitPrice"})  # fmt: skip


def client_api_url(region: str) -> str:
    """The client (trading) API host of a MetaApi region."""
    return f"https://mt-client-api-v1.{region}.agiliumtrade.ai"


def region(credential: VenueCredential) -> str:
    """The account's MetaApi region (``credential.server``), lower-case words and hyphens."""
    value = credential.server
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise InvalidArgument("credential.server", "must be the MetaApi region, e.g. new-york")
    return value


def trades(order: OrderSpec, credential: VenueCredential) -> Call:
    """The request for ``order`` on the account ``credential.account_id`` names."""
    acct = f"/users/current/accounts/{account_id(credential)}"
    op = order.operation
    if op is Operation.PLACE_ORDER:
        return Call("POST", acct + "/trade", json=_place(order))
    if op is Operation.AMEND_ORDER:
        return Call("POST", acct + "/trade", json=_amend_order(order))
    sc.no_extras(order)
    if op is Operation.AMEND_POSITION:
        body = {"actionType": "POSITION_MODIFY", "positionId": _ticket(order.position_id,
                "order.position_id"), **_protection(order, required=True)}  # fmt: skip
        return Call("POST", acct + "/trade", json=body)
    if op in (Operation.CLOSE_POSITION, Operation.CANCEL_ORDER):
        return Call("POST", acct + "/trade", json=_close_or_cancel(order))
    _no_protection(order)
    if op is Operation.QUERY_POSITIONS:
        return Call("GET", acct + "/positions")
    if op is Operation.QUERY_OPEN_ORDERS:
        return Call("GET", acct + "/orders")
    if op is Operation.QUERY_ORDER:
        return Call("GET", f"{acct}/orders/{_ticket(order.venue_order_id, 'order.venue_order_id')}")
    if op is Operation.QUERY_ACCOUNT:
        return Call("GET", acct + "/accountInformation")
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec) -> dict[str, Any]:
    kind = sc.check_place_shape(order)
    sc.no_quote_size(order, "MetaTrader sizes orders in lots only")
    action = _KINDS.get((kind, order.side)) if order.side is not None else None
    if action is None:
        raise InvalidArgument("order.order_type", f"{kind.value} orders are not built for MetaApi")
    name = sc.symbol(order)
    body: dict[str, Any] = {"actionType": action, "symbol": name,
                            "volume": _number(order.quantity, "order.quantity")}  # fmt: skip
    open_price = order.price if kind is OrderType.LIMIT else order.stop_price
    if open_price is not None:
        body["openPrice"] = _number(open_price, "order.price")
    body |= _protection(order, required=False)
    tif = order.time_in_force
    if tif is TimeInForce.DAY:
        body["expiration"] = {"type": "ORDER_TIME_DAY"}
    elif tif not in (None, TimeInForce.GTC):
        raise InvalidArgument("order.time_in_force", "MetaApi pending orders are GTC or DAY")
    body |= _extras(order)
    return body


def _amend_order(order: OrderSpec) -> dict[str, Any]:
    if order.quantity is not None or order.quote_quantity is not None:
        raise InvalidArgument("order.quantity", "a MetaTrader pending order's volume is fixed")
    body: dict[str, Any] = {"actionType": "ORDER_MODIFY",
                            "orderId": _ticket(order.venue_order_id, "order.venue_order_id"),
                            "openPrice": _number(order.price, "order.price")}  # fmt: skip
    sc.no_extras(order)
    return body | _protection(order, required=False)


def _close_or_cancel(order: OrderSpec) -> dict[str, Any]:
    _no_protection(order)
    if order.operation is Operation.CANCEL_ORDER:
        return {"actionType": "ORDER_CANCEL",
                "orderId": _ticket(order.venue_order_id, "order.venue_order_id")}  # fmt: skip
    position = _ticket(order.position_id, "order.position_id")
    if order.quantity is None:
        return {"actionType": "POSITION_CLOSE_ID", "positionId": position}
    return {"actionType": "POSITION_PARTIAL", "positionId": position,
            "volume": _number(order.quantity, "order.quantity")}  # fmt: skip


def _protection(order: OrderSpec, *, required: bool) -> dict[str, Any]:
    """``stopLoss`` / ``takeProfit`` (+ ``*Units`` for a distance): never silently dropped."""
    out: dict[str, Any] = {}
    for name, level in (("stopLoss", order.stop_loss), ("takeProfit", order.take_profit)):
        if level is not None:
            out |= _level(name, level)
    if required and not out:
        raise InvalidArgument("order.stop_loss", "or order.take_profit is required")
    return out


def _level(name: str, level: ProtectiveLevel) -> dict[str, Any]:
    field = "order.stop_loss" if name == "stopLoss" else "order.take_profit"
    if (level.price is None) == (level.distance is None):
        raise InvalidArgument(field, "needs exactly one of price or distance")
    if level.price is not None:
        return {name: _number(level.price, field + ".price")}
    return {name: _number(level.distance, field + ".distance"), name + "Units": "RELATIVE_PRICE"}


def _no_protection(order: OrderSpec) -> None:
    if order.stop_loss is not None or order.take_profit is not None:
        raise InvalidArgument("order.stop_loss", f"is not accepted for {order.operation.value}")


def _extras(order: OrderSpec) -> dict[str, Any]:
    extras = dict(sc.checked_extras(order.extras, _EXTRAS, RESERVED))
    out: dict[str, Any] = {name: int(extras[name]) for name in ("slippage", "magic")
                           if name in extras}  # fmt: skip
    client_id = order.client_order_id or ""
    if client_id and not _CLIENT_ID.fullmatch(client_id):
        raise InvalidArgument("order.client_order_id", "must be 1-26 of A-Z a-z 0-9 _ . : -")
    comment = extras.get("comment", "")
    if len(client_id) + len(comment) > 26:
        raise InvalidArgument("order.client_order_id", "and comment: 26 characters at most")
    if comment:
        out["comment"] = comment
    if client_id:
        out["clientId"] = client_id
    return out


def _ticket(value: str | None, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required for this operation")
    if not _TICKET.fullmatch(value):
        raise InvalidArgument(field, "must be a MetaTrader ticket number (digits)")
    return value


def _number(value: Decimal | None, field: str) -> float:
    """A positive decimal as the JSON number MetaApi takes, refused if a float would change it."""
    text = sc.positive_decimal(value, field)
    number = float(text)
    if sc.format_decimal(Decimal(repr(number))) != text:
        raise InvalidArgument(field, "has more digits than a JSON number carries exactly")
    return number


@dataclass(frozen=True)
class RegionalHeaders:
    """``StaticHeaders`` against the credential's regional host (the default base only)."""

    inner: StaticHeaders

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        regional = client_api_url(region(credential))
        if base == client_api_url(DEFAULT_REGION):
            base = regional
        return self.inner.sign(call, base, credential, ctx)


SPEC = VenueSpec(
    # Each account trades on its region's host: egress allows exactly these (never the
    # provisioning API, which manages accounts and their MetaTrader passwords).
    origin_pattern=re.compile(r"https://mt-client-api-v1\.[a-z]+(?:-[a-z]+)*\.agiliumtrade\.ai"),
    venue=Venue.METAAPI,
    label="MetaApi (MetaTrader 4/5)",
    urls=dict.fromkeys(Environment, client_api_url(DEFAULT_REGION)),
    endpoints=Endpoints(patterns=(
        (methods("POST"), re.compile(rf"{_ACCT}/trade")),
        (methods("GET"), re.compile(rf"{_ACCT}/(?:positions|orders|accountInformation)")),
        (methods("GET"), re.compile(rf"{_ACCT}/orders/[0-9]{{1,20}}")),
    ), blocked_words=("provisioning", "deploy", "replicas", "expert-advisors")),
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.BEARER}),
    scheme=RegionalHeaders(StaticHeaders(headers=(), fixed=(("Accept", "application/json"),))),
    mapping=trades,
    proxy_only=True,
    single_permission_tier=True,
    protective_orders=True,
    session=SESSION,
    size_unit=SizeUnit.LOTS,
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
