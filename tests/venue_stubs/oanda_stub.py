"""A loopback OANDA v20 REST API that checks the bearer token and the account it may use.

Authentication follows OANDA's documentation (reference §8.1): ``Authorization: Bearer
<personal access token>``; the token grants every account registered for it and nothing else.
There is no signature and no freshness check at OANDA: a captured request can be replayed for as
long as the token lives, which is why the vault only ever proxies OANDA.

Answers follow v20 shapes: HTTP 401 ``{"errorMessage": "Insufficient authorization to perform
request."}`` for a bad token; 201 ``{"orderCreateTransaction": ..., "lastTransactionID": ...}``
for a new order; 200 ``{"orderCancelTransaction": ...}``; ``{"order": ...}``, ``{"orders": [...]}``
and ``{"account": ...}`` for queries; 400 ``{"errorCode": ..., "errorMessage": ...}`` for a bad
order body and 404 ``ORDER_DOESNT_EXIST``. A token used on an account it does not hold gets 403
(this stub's choice of status).

Usage::

    with OandaStub({"token-1": ["101-004-1234567-001"]}) as stub:
        stub.orders["6372"]          # orders by id; stub.requests records every request
        stub.trades["6373"]          # open and closed trades, with "stopLoss" / "takeProfit"
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

_PATH = re.compile(r"/v3/accounts/(?P<account>[^/]+)(?P<rest>/.*)")
_ORDER = re.compile(r"/orders/(?P<spec>[^/]+)(?P<cancel>/cancel)?")
_TRADE = re.compile(r"/trades/(?P<id>[0-9]+)/(?P<what>close|orders)")
_TIFS = {"MARKET": {"FOK", "IOC"}, "LIMIT": {"GTC", "GTD", "GFD", "FOK", "IOC"}}
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# The documented MARKET / LIMIT order request fields (order-df "MarketOrderRequest",
# "LimitOrderRequest").
_ORDER_FIELDS = frozenset({
    "type", "instrument", "units", "price", "priceBound", "timeInForce", "gtdTime",
    "positionFill", "triggerCondition", "clientExtensions", "takeProfitOnFill",
    "stopLossOnFill", "guaranteedStopLossOnFill", "trailingStopLossOnFill",
    "tradeClientExtensions",
})  # fmt: skip
_DETAIL_FIELDS = frozenset({"price", "distance", "timeInForce", "gtdTime", "clientExtensions",
                            "guaranteed"})  # fmt: skip
_TRADE_ORDER_FIELDS = frozenset({"takeProfit", "stopLoss", "trailingStopLoss",
                                 "guaranteedStopLoss"})  # fmt: skip


def _level(details: Any, *, distance_ok: bool) -> dict[str, str] | None:
    """A StopLossDetails / TakeProfitDetails as v20 reads it, or None when it is malformed."""
    if not isinstance(details, dict) or not set(details) <= _DETAIL_FIELDS:
        return None
    keys = {"price", "distance"} & set(details) if distance_ok else {"price"} & set(details)
    if "distance" in details and not distance_ok:
        return None
    if len(keys) != 1:
        return None
    [key] = keys
    value = details[key]
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value) or Decimal(value) <= 0:
        return None
    return {key: value}


def _trigger(level: dict[str, str] | None, open_price: Decimal, long: bool) -> Decimal | None:
    """The stop loss trigger price: its price, or open price -/+ distance."""
    if level is None:
        return None
    if "price" in level:
        return Decimal(level["price"])
    distance = Decimal(level["distance"])
    return open_price - distance if long else open_price + distance


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"errorCode": code, "errorMessage": message}


class OandaStub(LoopbackVenueStub):
    """OANDA v20 order and account endpoints on loopback.

    Args:
        tokens: personal access token -> the account ids it grants.
        clock: server time in epoch ms (only used for transaction times).
    """

    def __init__(
        self,
        tokens: Mapping[str, Iterable[str]],
        *,
        clock: Clock | None = None,
        fill_price: str = "1.10000",
    ) -> None:
        super().__init__(clock=clock)
        self.tokens = {token: set(accounts) for token, accounts in tokens.items()}
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: dict[str, dict[str, Any]] = {}
        self.fill_price = Decimal(fill_price)
        self._transactions = itertools.count(6368)

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return 401, {"errorMessage": "Insufficient authorization to perform request."}
        match = _PATH.fullmatch(request.path)
        if match is None:
            return 404, {"errorMessage": "stub: unknown endpoint"}
        account, rest = match["account"], match["rest"]
        if account not in self.tokens[token]:
            return 403, {"errorMessage": "The provided request was forbidden."}
        last = str(next(self._transactions))
        method = request.method
        if (method, rest) == ("GET", "/summary"):
            return 200, {"account": {"id": account, "currency": "USD", "balance": "100000.0000",
                                     "openTradeCount": 0,
                                     "pendingOrderCount": len(self._pending(account))},
                         "lastTransactionID": last}  # fmt: skip
        if (method, rest) == ("GET", "/pendingOrders"):
            return 200, {"orders": self._pending(account), "lastTransactionID": last}
        if (method, rest) == ("POST", "/orders"):
            return self._create(request.body, account, last)
        if (method, rest) == ("GET", "/openTrades"):
            trades = [self._shown(t) for t in self.trades.values()
                      if t["accountID"] == account and t["state"] == "OPEN"]  # fmt: skip
            return 200, {"trades": trades, "lastTransactionID": last}
        trade_match = _TRADE.fullmatch(rest)
        if trade_match is not None:
            if method != "PUT":
                return 405, {"errorMessage": "stub: method not allowed"}
            trade = self.trades.get(trade_match["id"])
            if trade is None or trade["accountID"] != account or trade["state"] != "OPEN":
                return _error(404, "NO_SUCH_TRADE", "The Trade specified does not exist")
            if trade_match["what"] == "close":
                return self._close(trade, request.body, last)
            return self._set_orders(trade, request.body, last)
        order_match = _ORDER.fullmatch(rest)
        if order_match is None:
            return 404, {"errorMessage": "stub: unknown endpoint"}
        order = self._find(order_match["spec"], account)
        if order is None:
            return _error(404, "ORDER_DOESNT_EXIST", "The Order specified does not exist")
        if method == "GET" and not order_match["cancel"]:
            return 200, {"order": order, "lastTransactionID": last}
        if method != "PUT":
            return 405, {"errorMessage": "stub: method not allowed"}
        order["state"] = "CANCELLED"
        cancel = {"id": last, "type": "ORDER_CANCEL", "orderID": order["id"],
                  "accountID": account, "reason": "CLIENT_REQUEST"}  # fmt: skip
        if order_match["cancel"]:
            return 200, {"orderCancelTransaction": cancel, "lastTransactionID": last}
        status, created = self._create(request.body, account, last, replaces=order["id"])
        if status != 201:
            return status, created
        return 201, {"orderCancelTransaction": cancel, **created}

    def _json(self, body: bytes) -> dict[str, Any] | None:
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def _close(self, trade: dict[str, Any], body: bytes, last: str) -> tuple[int, Any]:
        doc = self._json(body) if body else {}
        if doc is None or not set(doc) <= {"units"}:
            return _error(400, "INVALID_UNITS", "Invalid value specified for 'units'")
        units = doc.get("units", "ALL")
        open_units = abs(Decimal(trade["currentUnits"]))
        if units == "ALL":
            closing = open_units
        elif isinstance(units, str) and _DECIMAL.fullmatch(units) and Decimal(units) > 0:
            closing = Decimal(units)
        else:
            return _error(400, "INVALID_UNITS", "Invalid value specified for 'units'")
        if closing > open_units:
            return _error(400, "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE",
                          "The units specified exceed the Trade's open units")  # fmt: skip
        sign = Decimal(1) if Decimal(trade["currentUnits"]) > 0 else Decimal(-1)
        left = open_units - closing
        trade["currentUnits"] = str(sign * left)
        if left == 0:
            trade["state"] = "CLOSED"
        fill = {"id": last, "type": "ORDER_FILL", "accountID": trade["accountID"],
                "instrument": trade["instrument"], "units": str(-sign * closing),
                "price": str(self.fill_price)}  # fmt: skip
        fill["tradesClosed" if left == 0 else "tradeReduced"] = (
            [{"tradeID": trade["id"], "units": str(-sign * closing)}] if left == 0
            else {"tradeID": trade["id"], "units": str(-sign * closing)}
        )  # fmt: skip
        create = {"id": last, "type": "MARKET_ORDER", "reason": "TRADE_CLOSE",
                  "tradeClose": {"tradeID": trade["id"], "units": units}}  # fmt: skip
        return 200, {"orderCreateTransaction": create, "orderFillTransaction": fill,
                     "lastTransactionID": last}  # fmt: skip

    def _set_orders(self, trade: dict[str, Any], body: bytes, last: str) -> tuple[int, Any]:
        doc = self._json(body)
        if not doc or not set(doc) <= _TRADE_ORDER_FIELDS:
            return _error(400, "INVALID_ORDER", "Invalid value specified for the Trade's orders")
        changes: dict[str, dict[str, str] | None] = {}
        for key, state_key, distance_ok in (("stopLoss", "stopLoss", True),
                                            ("takeProfit", "takeProfit", False)):  # fmt: skip
            if key not in doc:
                continue
            level = None if doc[key] is None else _level(doc[key], distance_ok=distance_ok)
            if doc[key] is not None and level is None:
                return _error(400, "INVALID_ORDER", f"Invalid value specified for '{key}'")
            changes[state_key] = level
        if set(doc) - {"stopLoss", "takeProfit"}:
            return _error(400, "INVALID_ORDER", "stub: only stopLoss / takeProfit are kept")
        problem = self._wrong_side(trade, changes.get("stopLoss", trade["stopLoss"]),
                                   changes.get("takeProfit", trade["takeProfit"]))  # fmt: skip
        if problem is not None:
            return _error(400, problem, "The level is on the wrong side of the Trade's price")
        trade.update(changes)
        reply: dict[str, Any] = {"lastTransactionID": last}
        for key, level in changes.items():
            if level is not None:
                kind = "STOP_LOSS" if key == "stopLoss" else "TAKE_PROFIT"
                reply[f"{key}OrderTransaction"] = {"id": last, "type": f"{kind}_ORDER",
                                                   "tradeID": trade["id"], **level}  # fmt: skip
        return 200, reply

    def _wrong_side(
        self, trade: dict[str, Any], stop: dict[str, str] | None, take: dict[str, str] | None
    ) -> str | None:
        open_price = Decimal(trade["price"])
        long = Decimal(trade["initialUnits"]) > 0
        trigger = _trigger(stop, open_price, long)
        if trigger is not None and (trigger >= open_price) == long:
            return "STOP_LOSS_ON_FILL_LOSS"
        if take is not None and (Decimal(take["price"]) <= open_price) == long:
            return "TAKE_PROFIT_ON_FILL_LOSS"
        return None

    def _shown(self, trade: dict[str, Any]) -> dict[str, Any]:
        """A trade as ``openTrades`` lists it: dependent orders instead of the stored levels."""
        shown = {k: v for k, v in trade.items() if k not in ("stopLoss", "takeProfit")}
        for key, kind in (("stopLoss", "STOP_LOSS"), ("takeProfit", "TAKE_PROFIT")):
            if trade[key] is not None:
                shown[f"{key}Order"] = {"type": kind, "tradeID": trade["id"], "state": "PENDING",
                                        **trade[key]}  # fmt: skip
        return shown

    def _open_trade(
        self, spec: dict[str, Any], account: str, order_id: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A filled MARKET order's trade, or the reject reason for its SL/TP."""
        stop_spec, take_spec = spec.get("stopLossOnFill"), spec.get("takeProfitOnFill")
        stop = None if stop_spec is None else _level(stop_spec, distance_ok=True)
        take = None if take_spec is None else _level(take_spec, distance_ok=False)
        if (stop_spec is not None and stop is None) or (take_spec is not None and take is None):
            return None, "INVALID_ORDER"
        trade_id = str(next(self._transactions))
        trade = {"id": trade_id, "accountID": account, "instrument": spec["instrument"],
                 "price": str(self.fill_price), "initialUnits": spec["units"],
                 "currentUnits": spec["units"], "state": "OPEN", "openingOrderID": order_id,
                 "stopLoss": stop, "takeProfit": take}  # fmt: skip
        problem = self._wrong_side(trade, stop, take)
        if problem is not None:
            return None, problem
        return trade, None

    def _pending(self, account: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values()
                if o["accountID"] == account and o["state"] == "PENDING"]  # fmt: skip

    def _find(self, spec: str, account: str) -> dict[str, Any] | None:
        for order in self.orders.values():
            client_id = order.get("clientExtensions", {}).get("id")
            if order["accountID"] == account and (
                order["id"] == spec or (spec.startswith("@") and client_id == spec[1:])
            ):
                return order
        return None

    def _create(
        self, body: bytes, account: str, last: str, replaces: str | None = None
    ) -> tuple[int, Any]:
        try:
            spec = json.loads(body)["order"]
            units = Decimal(spec["units"])
            kind, tif, instrument = spec["type"], spec["timeInForce"], spec["instrument"]
        except (ValueError, KeyError, TypeError, InvalidOperation):
            return _error(400, "INVALID_ORDER", "Invalid value specified for 'order'")
        if kind not in _TIFS or tif not in _TIFS[kind] or units == 0 or "_" not in instrument:
            return _error(400, "INVALID_ORDER", "The order specification is not valid")
        if not set(spec) <= _ORDER_FIELDS:
            return _error(400, "INVALID_ORDER", "Invalid value specified for 'order'")
        if kind == "LIMIT" and "price" not in spec:
            return _error(400, "PRICE_MISSING", "The order specifies no price")
        order_id = str(next(self._transactions))
        trade = None
        if kind == "MARKET":
            trade, problem = self._open_trade(spec, account, order_id)
            if problem is not None:
                return _error(400, problem, "The order's stop loss / take profit is not valid")
        order = {**spec, "id": order_id, "accountID": account,
                 "state": "FILLED" if kind == "MARKET" else "PENDING"}  # fmt: skip
        if replaces is not None:
            order["replacesOrderID"] = replaces
        self.orders[order_id] = order
        transaction = {**spec, "id": order_id, "accountID": account, "type": f"{kind}_ORDER",
                       "reason": "REPLACEMENT" if replaces else "CLIENT_ORDER"}  # fmt: skip
        reply: dict[str, Any] = {"orderCreateTransaction": transaction,
                                 "relatedTransactionIDs": [order_id],
                                 "lastTransactionID": order_id}  # fmt: skip
        if trade is not None:
            self.trades[trade["id"]] = trade
            reply["orderFillTransaction"] = {
                "id": trade["id"], "type": "ORDER_FILL", "orderID": order_id,
                "accountID": account, "instrument": trade["instrument"], "units": spec["units"],
                "price": trade["price"],
                "tradeOpened": {"tradeID": trade["id"], "units": spec["units"]},
            }  # fmt: skip
            reply["relatedTransactionIDs"].append(trade["id"])
            reply["lastTransactionID"] = trade["id"]
        return 201, reply
