"""A loopback TradeLocker REST API: JWT login, rotating refresh, Bearer + accNum, orders, positions.

Written from https://public-api.tradelocker.com/ (Overview, Authentification, placeOrder,
closePosition) and the official client ``TradeLocker/tradelocker-python``
(``src/tradelocker/tradelocker_api.py``). Served under ``/backend-api`` like the real hosts.

* ``POST /auth/jwt/token`` ``{"email", "password", "server"}`` -> 201 ``{"accessToken",
  "refreshToken", "expireDate"}``; both tokens are HS256 JWTs with ``exp`` (the stub's clock).
  Wrong credentials -> 400 (the OpenAPI lists 201 and 400 only).
* ``POST /auth/jwt/refresh`` ``{"refreshToken"}`` -> 201 with a new pair; the refresh token sent
  is spent (single use: UNVERIFIED at TradeLocker, modelled as the vault assumes it).
* ``/trade/*``: ``Authorization: Bearer <access>`` (401 ``{"s": "error", "errmsg":
  "Unauthorized"}`` when missing, foreign, expired or ended by :meth:`expire_sessions`) and the
  ``accNum`` header (400 when missing, 403 when not the account's); ``{"s": "ok", "d": ...}``.
* placeOrder enforces the documented rules: ``qty, routeId, side, validity, type,
  tradableInstrumentId`` mandatory; ``IOC`` for market, ``GTC`` for limit / stop; ``price`` for
  limit, ``stopPrice`` for stop; ``stopLossType`` in absolute / offset / trailingOffset and
  ``takeProfitType`` in absolute / offset, each exactly with its level. A market order opens a
  position at once (its id differs from the order id, as at TradeLocker).
* closePosition: ``{"qty": 0}`` closes all of it, ``qty`` lots part of it.

Stub choices (UNVERIFIED at TradeLocker): the 401 body; unknown body fields are refused (400);
after ``lock_after`` bad logins in a row the account is locked (403 even with the password);
no session cap (none documented). ``down = True`` answers 503 to everything.
"""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

import jwt

from tests.support.forex_flow import Account, VenueFlow
from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

PREFIX = "/backend-api"
ACC_NUM = "1"
UNAUTHORIZED = {"s": "error", "errmsg": "Unauthorized"}
_PLACE = {"qty", "routeId", "side", "validity", "type", "tradableInstrumentId"}
_OPTIONAL = {"price", "stopPrice", "stopLoss", "stopLossType", "takeProfit", "takeProfitType",
             "strategyId"}  # fmt: skip
_VALIDITY = {"market": "IOC", "limit": "GTC", "stop": "GTC"}
_LEVEL_TYPES = {"stopLoss": {"absolute", "offset", "trailingOffset"},
                "takeProfit": {"absolute", "offset"}}  # fmt: skip
POSITION_COLUMNS = ("id", "tradableInstrumentId", "routeId", "side", "qty", "avgPrice",
                    "stopLoss", "takeProfit", "openDate")  # fmt: skip
ORDER_COLUMNS = ("id", "tradableInstrumentId", "routeId", "qty", "side", "type", "status",
                 "price", "stopPrice", "validity", "stopLoss", "stopLossType", "takeProfit",
                 "takeProfitType", "positionId")  # fmt: skip


def _error(status: int, message: str) -> tuple[int, Any]:
    return status, {"s": "error", "errmsg": message}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class TradeLockerStub(LoopbackVenueStub):
    """TradeLocker auth and trading endpoints for one ``account`` (see the module doc)."""

    def __init__(
        self, account: Account, *, clock: Clock | None = None, access_ttl_ms: int = 60 * 60_000,
        refresh_ttl_ms: int = 7 * 24 * 60 * 60_000, lock_after: int = 5,
    ) -> None:  # fmt: skip
        super().__init__(clock=clock)
        self.account = account
        self.acc_num = ACC_NUM
        self.access_ttl_ms, self.refresh_ttl_ms, self.lock_after = (
            access_ttl_ms, refresh_ttl_ms, lock_after
        )  # fmt: skip
        self.logins = self.failed_logins = self.refreshes = 0
        self.locked = self.down = False
        self.issued_tokens: list[str] = []  # every token handed out (canary scans)
        self.positions: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self._key = secrets.token_bytes(32)
        self._ids = itertools.count(7_000_001)
        self._failures_in_a_row = 0
        self._issued: set[str] = set()  # access tokens handed out
        self._ended: set[str] = set()  # access tokens ended by expire_sessions
        self._spent: set[str] = set()  # refresh tokens used once

    @property
    def base_url(self) -> str:
        return super().base_url + PREFIX

    def expire_sessions(self) -> None:
        """Every access token issued so far now answers 401 (refresh tokens stay good)."""
        with self._lock:
            self._ended |= self._issued

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        if self.down:
            return _error(503, "Service Unavailable")
        path = request.path.removeprefix(PREFIX)
        if not request.path.startswith(PREFIX + "/"):
            return _error(404, "Not Found")
        if request.method == "POST" and path in ("/auth/jwt/token", "/auth/jwt/refresh"):
            body = _json(request)
            if body is None:
                return _error(400, "Bad Request")
            return self._login(body) if path.endswith("token") else self._refresh(body)
        if not path.startswith("/trade/"):
            return _error(404, "Not Found")
        if not self._authorized(request):
            return 401, UNAUTHORIZED
        if "accnum" not in request.headers:
            return _error(400, "accNum header is required")
        if request.headers["accnum"] != self.acc_num:
            return _error(403, "Forbidden")
        return self._trade(request, path)

    # --- auth ---------------------------------------------------------------------------------
    def _login(self, body: dict[str, Any]) -> tuple[int, Any]:
        if set(body) != {"email", "password", "server"} or not all(
            isinstance(v, str) for v in body.values()
        ):
            return _error(400, "email, password and server are required")
        if self.locked:
            self.failed_logins += 1
            return _error(403, "Account is locked")
        a = self.account
        if (body["email"], body["password"], body["server"]) != (a.username, a.password, a.server):
            self.failed_logins += 1
            self._failures_in_a_row += 1
            self.locked = self._failures_in_a_row >= self.lock_after
            return _error(400, "Invalid credentials")
        self._failures_in_a_row = 0
        self.logins += 1
        return 201, self._pair()

    def _refresh(self, body: dict[str, Any]) -> tuple[int, Any]:
        token = body.get("refreshToken")
        if set(body) != {"refreshToken"} or not isinstance(token, str):
            return _error(400, "refreshToken is required")
        if token in self._spent or self._claims(token, "refresh") is None:
            return 401, UNAUTHORIZED
        self._spent.add(token)
        self.refreshes += 1
        return 201, self._pair()

    def _pair(self) -> dict[str, Any]:
        now = self.clock()
        access = self._jwt("access", now + self.access_ttl_ms)
        self._issued.add(access)
        return {"accessToken": access, "refreshToken": self._jwt("refresh", now + self.refresh_ttl_ms),
                "expireDate": now + self.access_ttl_ms}  # fmt: skip

    def _jwt(self, kind: str, exp_ms: int) -> str:
        claims = {"sub": f"{self.account.server}#{self.account.username}", "typ": kind,
                  "exp": exp_ms // 1000, "jti": secrets.token_hex(8)}  # fmt: skip
        token = jwt.encode(claims, self._key, algorithm="HS256")
        self.issued_tokens.append(token)
        return token

    def _claims(self, token: str, kind: str) -> dict[str, Any] | None:
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"],
                                options={"verify_exp": False})  # fmt: skip
        except jwt.InvalidTokenError:
            return None
        if claims.get("typ") != kind or claims["exp"] * 1000 <= self.clock():
            return None
        return claims

    def _authorized(self, request: ReceivedRequest) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return (
            scheme == "Bearer" and token not in self._ended and bool(self._claims(token, "access"))
        )

    # --- trading ------------------------------------------------------------------------------
    def _trade(self, request: ReceivedRequest, path: str) -> tuple[int, Any]:
        method, parts = request.method, path.strip("/").split("/")
        if parts[:2] == ["trade", "accounts"] and len(parts) == 4:
            if parts[2] != self.account.account_id:
                return _error(404, "Account not found")
            if (method, parts[3]) == ("POST", "orders"):
                body = _json(request)
                return self._place(body) if body is not None else _error(400, "Bad Request")
            if method == "GET" and parts[3] in ("orders", "positions", "state"):
                return 200, {"s": "ok", "d": self._query(parts[3])}
        if (
            len(parts) == 3
            and parts[1] in ("orders", "positions")
            and method in ("PATCH", "DELETE")
        ):
            body = _json(request) if request.body or method == "PATCH" else {}
            if body is None:
                return _error(400, "Bad Request")
            return self._change(parts[1], parts[2], method, body)
        return _error(404, "Not Found")

    def _place(self, body: dict[str, Any]) -> tuple[int, Any]:
        problem = _order_problem(body)
        if problem:
            return _error(400, problem)
        order_id = str(next(self._ids))
        order = {c: body.get(c) for c in ORDER_COLUMNS} | {"id": order_id, "status": "New"}
        if body["type"] == "market":
            position_id = str(next(self._ids))
            self.positions[position_id] = {
                **{c: body.get(c) for c in POSITION_COLUMNS}, "id": position_id,
                "avgPrice": 1.0845, "openDate": self.clock(),
            }  # fmt: skip
            order |= {"status": "Filled", "positionId": position_id}
        self.orders[order_id] = order
        return 200, {"s": "ok", "d": {"orderId": order_id}}

    def _change(self, kind: str, item: str, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        if kind == "orders":
            order = self.orders.get(item)
            if order is None or order["status"] != "New":
                return _error(404, "Order not found")
            if method == "DELETE":
                order["status"] = "Cancelled"
                return 200, {"s": "ok", "d": {}}
            allowed = {"price", "qty", *_LEVEL_TYPES, *(k + "Type" for k in _LEVEL_TYPES)}
            if not body or not set(body) <= allowed or _level_problem(body):
                return _error(400, "Invalid modification")
            order |= body
            return 200, {"s": "ok", "d": {}}
        position = self.positions.get(item)
        if position is None:
            return _error(404, "Position not found")
        if method == "PATCH":
            if (
                not body
                or not set(body) <= set(_LEVEL_TYPES)
                or not all(map(_number, body.values()))
            ):
                return _error(400, "Invalid modification")
            position |= body
            return 200, {"s": "ok", "d": {}}
        qty: Any = body.get("qty")
        if set(body) != {"qty"} or not _number(qty) or not 0 <= qty <= position["qty"]:
            return _error(400, "qty must be 0 (all) or at most the position's size")
        if qty in (0, position["qty"]):
            del self.positions[item]
        else:
            position["qty"] = round(position["qty"] - qty, 8)
        return 200, {"s": "ok", "d": {}}

    def _query(self, what: str) -> dict[str, Any]:
        if what == "state":
            return {"accountDetailsData": [100_000.0, 100_000.0, len(self.positions)]}
        if what == "positions":
            return {
                "positions": [[p[c] for c in POSITION_COLUMNS] for p in self.positions.values()]
            }
        pending = [o for o in self.orders.values() if o["status"] == "New"]
        return {"orders": [[o[c] for c in ORDER_COLUMNS] for o in pending]}


def _order_problem(body: dict[str, Any]) -> str | None:
    """Why placeOrder refuses ``body`` (None: it does not)."""
    if not _PLACE <= set(body) or not set(body) <= _PLACE | _OPTIONAL:
        return "qty, routeId, side, validity, type, tradableInstrumentId are mandatory"
    kind = body["type"]
    if kind not in _VALIDITY or body["side"] not in ("buy", "sell"):
        return "invalid type or side"
    if body["validity"] != _VALIDITY[kind]:
        return f"TIF must be {_VALIDITY[kind]} for {kind} orders"
    numbers = [body[k] for k in ("qty", "routeId", "tradableInstrumentId")]
    if not all(map(_number, numbers)) or body["qty"] <= 0:
        return "qty, routeId and tradableInstrumentId must be positive numbers"
    if kind == "limit" and not _number(body.get("price")):
        return "price is required for limit orders"
    if kind == "stop" and not _number(body.get("stopPrice")):
        return "stopPrice is required for stop orders"
    if "strategyId" in body and len(str(body["strategyId"])) > 31:
        return "strategyId is at most 31 characters"
    return _level_problem(body)


def _level_problem(body: dict[str, Any]) -> str | None:
    for name, types in _LEVEL_TYPES.items():
        if (name in body) != (name + "Type" in body):
            return f"{name} and {name}Type go together"
        if name in body and (not _number(body[name]) or body[name + "Type"] not in types):
            return f"invalid {name}"
    return None


def _json(request: ReceivedRequest) -> dict[str, Any] | None:
    if request.headers.get("content-type", "").split(";")[0] != "application/json":
        return None
    try:
        value = json.loads(request.body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _position_id(stub: TradeLockerStub, body: bytes) -> str:
    """The position the place answer's ``orderId`` opened (TradeLocker: ordersHistory)."""
    order_id = str(json.loads(body)["d"]["orderId"])
    return str(stub.orders[order_id]["positionId"])


FLOW = VenueFlow(
    venue="tradelocker",
    broker=17,  # trading_pb2.BROKER_TRADELOCKER
    stub=TradeLockerStub,
    material=lambda a: {
        "api_key": ACC_NUM,
        "username": a.username,
        "secret": a.password,
        "server": a.server,
        "account_id": a.account_id,
    },
    symbol="206:452",
    quantity="0.01",
    stop_loss="1.05",
    take_profit="1.2",
    amended_stop_loss="1.06",
    position_id=_position_id,
    wrong_password_locks_after=5,
)
