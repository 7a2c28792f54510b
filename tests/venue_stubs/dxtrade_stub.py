"""A loopback DXtrade REST API (``/dxsca-web``): session login, orders, IF-THEN groups, positions.

It follows Devexperts' DX REST API spec (reference [21]) where the spec says something:

* ``POST /login`` ``{"username", "domain", "password"}`` -> ``{"sessionToken", "timeout"}``
  (``timeout`` in milliseconds); a wrong login is 401 ``{"errorCode": "3", "description":
  "Incorrect username or password"}``. Requests carry ``Authorization: DXAPI <token>``; each one
  extends the session, ``POST /ping`` too; an expired or unknown token gets 401.
* ``POST /accounts/{a}/orders`` takes a single order request or an order group (``IF-THEN``:
  the first order opens, the others close the position it opens, opposite side, no quantity,
  GTC); a repeated ``orderCode`` is 409 error 100; answers ``{"orderId", "updateOrderId"}`` or
  ``{"orderResponses": [...]}``.
* ``PUT /accounts/{a}/orders`` (the whole order again, without ``type``) and ``DELETE
  /accounts/{a}/orders/{code}`` are conditional: no ``If-Match`` is 403 error 99, a stale one
  412. A single-order modify of an IF-THEN parent makes it a single order (its legs go).
* ``GET .../orders`` (working orders, with an ``ETag``), ``.../orders/history``,
  ``.../positions``, ``.../metrics``; an account the login does not hold is 404 error 2.

The stub's own choices, where the spec is silent: MARKET orders fill at once at
``prices[instrument]`` (default 1.1) and open a position whose ``positionCode`` is the order id
(as third-party clients use it: UNVERIFIED); LIMIT/STOP entries never fill; after
``lock_after`` failed logins in a row the login is locked (403 error 4, even with the right
password); ``down`` answers 503 to everything; expired tokens get 401 error 1. ETags are the
account's version, quoted.

Usage::

    with DxtradeStub([Login("alice", "default", "pw", ["default:1001"])]) as stub:
        stub.base_url                      # http://127.0.0.1:<port>/dxsca-web
        stub.positions["63649"]["stopLoss"]   # as the venue holds it
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote

from pipsync.vault.v1 import trading_pb2

from tests.support.forex_flow import Account, VenueFlow
from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

PREFIX = "/dxsca-web"
_ACCOUNT = re.compile(r"/accounts/(?P<account>[^/]+)(?P<rest>/.*)")
_KINDS = frozenset({"MARKET", "LIMIT", "STOP"})
_TIFS = frozenset({"GTC", "DAY", "GTD", "IOC", "FOK"})
_FIELDS = frozenset({"orderCode", "type", "instrument", "quantity", "positionEffect",
                     "positionCode", "side", "limitPrice", "stopPrice", "priceOffset",
                     "priceLink", "tif", "expireDate", "account", "marginRate"})  # fmt: skip
_OPPOSITE = {"BUY": "SELL", "SELL": "BUY"}


@dataclass
class Login:
    username: str
    domain: str
    password: str
    accounts: list[str] = field(default_factory=list)


def _err(status: int, code: str, description: str) -> tuple[int, Any]:
    return status, {"errorCode": code, "description": description}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


class Reject(Exception):
    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.answer = _err(status, code, description)


class DxtradeStub(LoopbackVenueStub):
    """DXtrade's trading REST API for ``logins`` on loopback (see the module doc)."""

    def __init__(
        self, logins: Iterable[Login], *, clock: Clock | None = None, timeout_ms: int = 1_800_000,
        lock_after: int = 5,
    ) -> None:  # fmt: skip
        super().__init__(clock=clock)
        self.users = {(u.username, u.domain): u for u in logins}
        self.timeout_ms, self.lock_after = timeout_ms, lock_after
        self.logins = self.failed_logins = 0
        self.failures: dict[tuple[str, str], int] = {}
        self.locked: set[tuple[str, str]] = set()
        self.down = False
        self.sessions: dict[str, dict[str, Any]] = {}
        self.orders: list[dict[str, Any]] = []
        self.open_positions: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.issued_tokens: list[str] = []  # every token handed out (canary scans)
        self.prices: dict[str, Decimal] = {}
        self._ids = itertools.count(63649)
        self._etags: dict[int, str] = {}

    @property
    def base_url(self) -> str:
        return super().base_url + PREFIX

    # --- what the shared flow tests read ----------------------------------------------------
    @property
    def positions(self) -> dict[str, dict[str, Any]]:
        """Open positions with the prices of their working stop loss / take profit orders."""
        out = {}
        for code, pos in self.open_positions.items():
            out[code] = {"symbol": pos["symbol"], "side": pos["side"],
                         "quantity": _text(pos["quantity"]),
                         "stopLoss": self._protection(code, "STOP"),
                         "takeProfit": self._protection(code, "LIMIT")}  # fmt: skip
        return out

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def position_of(self, order_id: int | str) -> str:
        order = next(o for o in self.orders if str(o["orderId"]) == str(order_id))
        return str(order["positionCode"])

    def _protection(self, position: str, kind: str) -> str | None:
        for o in self.orders:
            if (o["status"] == "WORKING" and o["positionCode"] == position
                    and o["positionEffect"] == "CLOSE" and o["type"] == kind):  # fmt: skip
                return _text(o["stopPrice"] if kind == "STOP" else o["limitPrice"])
        return None

    # --- dispatch ---------------------------------------------------------------------------
    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        if self.down:
            return _err(503, "0", "Service unavailable")
        if not request.path.startswith(PREFIX + "/"):
            return _err(404, "2", "Entity not found at server")
        path, method = request.path[len(PREFIX) :], request.method
        try:
            if (method, path) == ("POST", "/login"):
                return self._login(request.body)
            token = self._session(request)
            if (method, path) == ("POST", "/ping"):
                return 200, {"sessionToken": token, "timeout": self.timeout_ms}
            if (method, path) == ("POST", "/logout"):
                self.sessions.pop(token, None)
                return 200, {}
            match = _ACCOUNT.fullmatch(path)
            account = unquote(match["account"]) if match else ""
            if match is None or account not in self.sessions[token]["accounts"]:
                return _err(404, "2", "Entity not found at server")
            return self._account(request, method, account, match["rest"])
        except Reject as reject:
            return reject.answer

    def extra_headers(self, request: ReceivedRequest) -> list[tuple[str, str]]:
        etag = self._etags.pop(id(request), None)
        return super().extra_headers(request) + ([("ETag", etag)] if etag else [])

    def _login(self, body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body)
            key = (data["username"], data["domain"])
            password = data["password"]
        except (ValueError, KeyError, TypeError):
            return _err(400, "33", "Incorrect request")
        if key in self.locked:
            self.failed_logins += 1
            return _err(403, "4", "User is locked")
        user = self.users.get(key)
        if user is None or not secrets.compare_digest(password.encode(), user.password.encode()):
            self.failed_logins += 1
            self.failures[key] = self.failures.get(key, 0) + 1
            if self.failures[key] >= self.lock_after:
                self.locked.add(key)
            return _err(401, "3", "Incorrect username or password")
        self.failures[key] = 0
        self.logins += 1
        token = secrets.token_urlsafe(24)
        self.issued_tokens.append(token)
        self.sessions[token] = {"accounts": set(user.accounts), "expires": 0}
        self._touch(token)
        return 200, {"sessionToken": token, "timeout": self.timeout_ms}

    def _session(self, request: ReceivedRequest) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        session = self.sessions.get(token) if scheme == "DXAPI" else None
        if session is None or session["expires"] <= self.clock():
            self.sessions.pop(token, None)
            raise Reject(401, "1", "Client is not authorized in the system")
        self._touch(token)
        return token

    def _touch(self, token: str) -> None:
        self.sessions[token]["expires"] = self.clock() + self.timeout_ms

    def _account(
        self, request: ReceivedRequest, method: str, account: str, rest: str
    ) -> tuple[int, Any]:
        etag = f'"{self.versions.get(account, 0)}"'
        if (method, rest) == ("GET", "/orders"):
            self._etags[id(request)] = etag
            mine = [self._view(o) for o in self.orders
                    if o["account"] == account and o["status"] == "WORKING"]  # fmt: skip
            return 200, {"orders": mine}
        if (method, rest) == ("GET", "/orders/history"):
            query = dict(parse_qsl(request.query))
            found = [self._view(o) for o in self.orders if o["account"] == account and (
                o["clientOrderId"] == query.get("with-client-id")
                or str(o["orderId"]) == query.get("with-order-id"))]  # fmt: skip
            return 200, {"orders": found}
        if (method, rest) == ("GET", "/positions"):
            self._etags[id(request)] = etag
            return 200, {"positions": [
                {"account": account, "version": self.versions.get(account, 0),
                 "positionCode": code, "symbol": p["symbol"], "quantity": float(p["quantity"]),
                 "side": p["side"], "openPrice": float(p["openPrice"])}
                for code, p in self.open_positions.items() if p["account"] == account]}  # fmt: skip
        if (method, rest) == ("GET", "/metrics"):
            return 200, {"metrics": [{"account": account, "balance": 100000.0,
                                      "equity": 100000.0, "openPositionsCount":
                                      sum(p["account"] == account
                                          for p in self.open_positions.values())}]}  # fmt: skip
        if method in ("PUT", "DELETE"):
            if "if-match" not in request.headers:
                raise Reject(403, "99", "Conditional request header is missing")
            if request.headers["if-match"] != etag:
                raise Reject(412, "98", "Precondition failed")
        if (method, rest) == ("POST", "/orders"):
            return self._place(account, self._json(request))
        if (method, rest) == ("PUT", "/orders"):
            answer = self._modify(account, self._json(request))
            self._etags[id(request)] = f'"{self.versions.get(account, 0)}"'
            return answer
        if method == "DELETE" and rest.startswith("/orders/"):
            order = self._find(account, unquote(rest[len("/orders/") :]))
            self._cancel(order)
            self._bump(account)
            return 200, {"orderId": order["orderId"], "updateOrderId": next(self._ids)}
        return _err(405, "0", "Method not allowed")

    # --- orders -----------------------------------------------------------------------------
    @staticmethod
    def _json(request: ReceivedRequest) -> Any:
        if request.headers.get("content-type") != "application/json":
            raise Reject(415, "0", "Unsupported media type")
        try:
            return json.loads(request.body, parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            raise Reject(400, "33", "Incorrect request (not JSON)") from None

    def _place(self, account: str, body: Any) -> tuple[int, Any]:
        if isinstance(body, dict) and "contingencyType" in body:
            return self._place_group(account, body)
        order = self._checked(account, body, group_leg=False)
        self._accept(order)
        return 200, {"orderId": order["orderId"], "updateOrderId": order["orderId"]}

    def _place_group(self, account: str, body: dict[str, Any]) -> tuple[int, Any]:
        members = body.get("orders")
        if body["contingencyType"].upper() != "IF-THEN" or set(body) != {
            "orders",
            "contingencyType",
        }:
            raise Reject(400, "33", "Incorrect request (stub: IF-THEN groups only)")
        if not isinstance(members, list) or len(members) < 2:
            raise Reject(400, "33", "Incorrect request (a group needs orders)")
        parent = self._checked(account, members[0], group_leg=False)
        legs = [self._checked(account, m, group_leg=True) for m in members[1:]]
        codes = [parent["clientOrderId"], *(leg["clientOrderId"] for leg in legs)]
        if parent["positionEffect"] != "OPEN" or len(set(codes)) != len(codes):
            raise Reject(400, "33", "Incorrect request (IF order must open, codes unique)")
        for leg in legs:
            if (leg["side"] != _OPPOSITE[parent["side"]] or leg["tif"] != "GTC"
                    or leg["instrument"] != parent["instrument"]):  # fmt: skip
                raise Reject(400, "33", "Incorrect request (THEN orders: opposite side, GTC)")
            leg["parent"] = parent["clientOrderId"]
        self._accept(parent, legs)
        return 200, {"orderResponses": [{"orderId": o["orderId"], "updateOrderId": o["orderId"]}
                                        for o in (parent, *legs)]}  # fmt: skip

    def _checked(self, account: str, req: Any, *, group_leg: bool) -> dict[str, Any]:
        """A validated new order (not yet stored)."""
        if not isinstance(req, dict) or not set(req) <= _FIELDS:
            raise Reject(400, "33", "Incorrect request (unknown field)")
        code, kind, side = req.get("orderCode"), req.get("type"), req.get("side")
        effect, tif, instrument = req.get("positionEffect"), req.get("tif"), req.get("instrument")
        if not isinstance(code, str) or not 0 < len(code) <= 64:
            raise Reject(400, "101", "Client-originated identifier is not valid")
        if any(o["account"] == account and o["clientOrderId"] == code for o in self.orders):
            raise Reject(409, "100", f"Order with this id already exists ({code})")
        if (kind not in _KINDS or side not in _OPPOSITE or effect not in ("OPEN", "CLOSE")
                or tif not in _TIFS or not isinstance(instrument, str)):  # fmt: skip
            raise Reject(400, "33", "Incorrect request (type, side, positionEffect, tif)")
        for name in ("quantity", "limitPrice", "stopPrice"):
            if name in req and (not isinstance(req[name], Decimal) or req[name] < 0):
                raise Reject(400, "33", f"Incorrect request ({name} must be a number)")
        if ("limitPrice" in req) != (kind == "LIMIT") or ("stopPrice" in req) != (kind == "STOP"):
            raise Reject(400, "33", "Incorrect request (price does not fit the order type)")
        if (tif == "GTD") != ("expireDate" in req):
            raise Reject(400, "33", "Incorrect request (expireDate is for GTD)")
        quantity = req.get("quantity") or None
        position = req.get("positionCode")
        if effect == "OPEN" and (quantity is None or position is not None):
            raise Reject(400, "33", "Incorrect request (an opening order needs a quantity)")
        if effect == "CLOSE" and not group_leg:
            pos = self.open_positions.get(position) if isinstance(position, str) else None
            if pos is None or pos["account"] != account:
                raise Reject(404, "2", "Entity not found at server (position)")
            if side != _OPPOSITE[pos["side"]] or instrument != pos["symbol"]:
                raise Reject(409, "30", "Closing order does not match the position")
            if kind != "MARKET" and quantity is not None:
                raise Reject(
                    400, "33", "Incorrect request (a linked closing order has no quantity)"
                )
            if quantity is not None and quantity > pos["quantity"]:
                raise Reject(409, "31", "Quantity exceeds the position")
        if group_leg and (effect != "CLOSE" or position is not None or quantity is not None):
            raise Reject(400, "33", "Incorrect request (THEN orders close, no quantity)")
        return {"account": account, "orderId": next(self._ids), "clientOrderId": code,
                "type": kind, "instrument": instrument, "side": side, "positionEffect": effect,
                "positionCode": position, "quantity": quantity, "tif": tif,
                "limitPrice": req.get("limitPrice"), "stopPrice": req.get("stopPrice"),
                "expireDate": req.get("expireDate"), "status": "WORKING", "parent": None}  # fmt: skip

    def _accept(self, order: dict[str, Any], legs: list[dict[str, Any]] | None = None) -> None:
        legs = legs or []
        self.orders += [order, *legs]
        if order["type"] == "MARKET":
            self._fill(order)
            for leg in legs:
                leg["positionCode"] = order["positionCode"]
        self._bump(order["account"])

    def _fill(self, order: dict[str, Any]) -> None:
        order["status"] = "COMPLETED"
        price = self.prices.get(order["instrument"], Decimal("1.1"))
        if order["positionEffect"] == "OPEN":
            code = str(order["orderId"])
            order["positionCode"] = code
            self.open_positions[code] = {"account": order["account"], "side": order["side"],
                                         "symbol": order["instrument"], "openPrice": price,
                                         "quantity": order["quantity"]}  # fmt: skip
            return
        pos = self.open_positions[order["positionCode"]]
        pos["quantity"] -= order["quantity"] or pos["quantity"]
        if pos["quantity"] <= 0:
            del self.open_positions[order["positionCode"]]
            for other in self.orders:
                if other["positionCode"] == order["positionCode"] and other["status"] == "WORKING":
                    other["status"] = "CANCELED"

    def _find(self, account: str, code: str) -> dict[str, Any]:
        for o in self.orders:
            if o["account"] == account and code in (o["clientOrderId"], str(o["orderId"])):
                if o["status"] != "WORKING":
                    raise Reject(409, "32", "Order is in a final state")
                return o
        raise Reject(404, "2", "Entity not found at server")

    def _cancel(self, order: dict[str, Any]) -> None:
        order["status"] = "CANCELED"
        for o in self.orders:
            if o["parent"] == order["clientOrderId"] and o["positionCode"] is None:
                o["status"] = "CANCELED"

    def _modify(self, account: str, body: Any) -> tuple[int, Any]:
        grouped = isinstance(body, dict) and "contingencyType" in body
        requests = body.get("orders") if grouped else [body]
        if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
            raise Reject(400, "33", "Incorrect request")
        targets = [self._find(account, str(r.get("orderCode"))) for r in requests]
        parent = targets[0]
        legs = [o for o in self.orders if o["parent"] == parent["clientOrderId"]
                and o["status"] == "WORKING"]  # fmt: skip
        if grouped and [t["clientOrderId"] for t in targets[1:]] != [
            o["clientOrderId"] for o in legs
        ]:
            raise Reject(409, "34", "Orders cannot be added to or removed from a group here")
        for req, order in zip(requests, targets, strict=True):
            self._replace(order, req)
        if not grouped:
            for leg in legs:  # a single-order modify turns the group into a single order
                leg["status"] = "CANCELED"
        self._bump(account)
        answers = [{"orderId": o["orderId"], "updateOrderId": next(self._ids)} for o in targets]
        return 200, ({"orderResponses": answers} if grouped else answers[0])

    @staticmethod
    def _replace(order: dict[str, Any], req: dict[str, Any]) -> None:
        if "type" in req or not set(req) <= _FIELDS:
            raise Reject(400, "33", "Incorrect request (type must be omitted in a replace)")
        for name in ("instrument", "side", "positionEffect"):
            if req.get(name) != order[name]:
                raise Reject(409, "35", f"{name} cannot be changed")
        if req.get("positionCode") not in (None, order["positionCode"]):
            raise Reject(409, "35", "positionCode cannot be changed")
        if order["positionEffect"] == "OPEN":
            if not isinstance(req.get("quantity"), Decimal):
                raise Reject(400, "33", "Incorrect request (the whole order is required)")
            order["quantity"] = req["quantity"]
        price = "limitPrice" if order["type"] == "LIMIT" else "stopPrice"
        if order["type"] != "MARKET":
            if not isinstance(req.get(price), Decimal):
                raise Reject(400, "33", f"Incorrect request ({price} is required)")
            order[price] = req[price]
        order["tif"] = req.get("tif", order["tif"])

    def _bump(self, account: str) -> None:
        self.versions[account] = self.versions.get(account, 0) + 1

    def _view(self, o: dict[str, Any]) -> dict[str, Any]:
        price = o["limitPrice"] if o["type"] == "LIMIT" else o["stopPrice"]
        leg = {"instrument": o["instrument"], "positionEffect": o["positionEffect"],
               "positionCode": o["positionCode"], "price": None if price is None else float(price),
               "legRatio": 1.0, "quantity": None if o["quantity"] is None else float(o["quantity"])}  # fmt: skip
        links = [{"linkType": "CHILD", "linkedOrder": str(c["orderId"]),
                  "linkedClientOrderId": c["clientOrderId"]}
                 for c in self.orders if c["parent"] == o["clientOrderId"]]  # fmt: skip
        if o["parent"]:
            links.append({"linkType": "PARENT", "linkedClientOrderId": o["parent"]})
        return {"account": o["account"], "version": self.versions.get(o["account"], 0),
                "orderId": o["orderId"], "orderCode": str(o["orderId"]),
                "clientOrderId": o["clientOrderId"], "type": o["type"], "instrument": o["instrument"],
                "status": o["status"], "finalStatus": o["status"] != "WORKING", "side": o["side"],
                "tif": o["tif"], "legCount": 1, "legs": [leg], "links": links}  # fmt: skip


# --- the shared session-venue tests' view of DXtrade ----------------------------------------------
def account_code(account: Account) -> str:
    """The DXtrade account code (``clearing:account``) of a flow account."""
    return f"default:{account.account_id}"


def _position_id(stub: DxtradeStub, body: bytes) -> str:
    answer = json.loads(body)
    first = answer["orderResponses"][0] if "orderResponses" in answer else answer
    return stub.position_of(first["orderId"])


def _amend(stub: DxtradeStub, position: str) -> dict[str, Any]:
    """DXtrade keeps a position's stop loss as its own order: modify that one (the leg the
    vault named ``<client order id>-sl`` when it placed the order), one level, with the ETag of
    the account's working orders."""
    account = next(iter(stub.versions), "")
    return {"venue_order_id": "fx-open-1-sl", "take_profit": None,
            "extras": {"ifMatch": f'"{stub.versions.get(account, 0)}"'}}  # fmt: skip


FLOW = VenueFlow(
    venue="dxtrade",
    broker=trading_pb2.BROKER_DXTRADE,
    stub=lambda account: DxtradeStub(
        [Login(account.username, account.server, account.password, [account_code(account)])],
        lock_after=5,
    ),
    material=lambda account: {"username": account.username, "server": account.server,
                              "secret": account.password, "account_id": account_code(account)},
    symbol="EUR/USD",
    quantity="10000",
    stop_loss="1.08",
    take_profit="1.12",
    amended_stop_loss="1.09",
    position_id=_position_id,
    wrong_password_locks_after=5,
    amend=_amend,
)  # fmt: skip
