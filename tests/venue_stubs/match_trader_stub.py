"""A loopback Match-Trader Platform API: password login, short sessions, a refresh budget.

Written from the Platform API docs (https://app.theneo.io/match-trade/platform-api; the PDF
https://docs.match-trade.com/wp-content/uploads/2024/04/MTR-Match-TraderPlatformAPI.pdf):

* ``POST /manager/co-login`` ``{"email", "password", "brokerId"}`` -> 200 ``{"email", "token",
  "accounts": [{"tradingAccountId", "tradingApiToken", "offer": {"system": {"uuid"}}, ...}]}``
  and ``Set-Cookie: co-auth=<token>``. A wrong login answers 401; after ``lock_after`` failures
  in a row the account is locked (403, even with the right password) - brokers lock accounts.
* ``POST /manager/refresh-token`` with the ``co-auth`` cookie -> a new token and a new
  tradingApiToken; the old pair stops working (single use). At most ``max_refreshes`` an hour
  per account (429 beyond). UNVERIFIED: 15 min lifetime, 4 refreshes an hour, path and shape.
* ``/mtr-api/{systemUuid}/...`` needs the cookie ``co-auth`` and the header ``Auth-trading-api``
  of one live session: otherwise 401 ``{"errorMessage": "Unauthorized"}`` (the "session
  expired" answer; its exact body is UNVERIFIED). Another systemUuid is 404. Bodies must be
  JSON objects with the documented fields and types (numbers for volume and prices), else 400.

No session cap is documented, so none is enforced. ``fail_with`` makes every answer that status
(the platform down).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from typing import Any

from tests.support.forex_flow import Account, VenueFlow
from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

SYSTEM_UUID = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"
_PATH = re.compile(r"/mtr-api/(?P<system>[^/]+)(?P<rest>/.*)")
_UNAUTHORIZED = (401, {"errorMessage": "Unauthorized"})


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


class MatchTraderStub(LoopbackVenueStub):
    """The Platform API's login, refresh and trading calls for one user ``account``."""

    def __init__(
        self,
        account: Account,
        *,
        clock: Clock | None = None,
        token_ttl_ms: int = 15 * 60_000,
        max_refreshes: int = 4,
        lock_after: int = 5,
    ) -> None:
        super().__init__(clock=clock)
        self.account = account
        self.token_ttl_ms, self.max_refreshes, self.lock_after = (
            token_ttl_ms,
            max_refreshes,
            lock_after,
        )
        self.logins = 0
        self.failed_logins = 0
        self.refreshes: list[int] = []  # when each refresh was granted
        self.locked = False
        self.fail_with: int | None = None
        self.issued_tokens: list[str] = []  # every token handed out (canary scans)
        # co-auth token -> (tradingApiToken, expires at ms)
        self.sessions: dict[str, tuple[str, int]] = {}
        self.positions: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(5001)
        self._set_cookie: str | None = None

    def expire_sessions(self) -> None:
        """Every session now answers 401 (as if its 15 minutes were over)."""
        self.sessions = {token: (trading, 0) for token, (trading, _) in self.sessions.items()}

    def extra_headers(self, request: ReceivedRequest) -> list[tuple[str, str]]:
        cookie, self._set_cookie = self._set_cookie, None
        extra = [("Set-Cookie", f"co-auth={cookie}; Path=/; HttpOnly; Secure")] if cookie else []
        return extra + super().extra_headers(request)

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        if self.fail_with is not None:
            return self.fail_with, {"errorMessage": "Service unavailable"}
        if (request.method, request.path) == ("POST", "/manager/co-login"):
            return self._login(request)
        if (request.method, request.path) == ("POST", "/manager/refresh-token"):
            return self._refresh(request)
        match = _PATH.fullmatch(request.path)
        if match is None:
            return 404, {"errorMessage": "Not found"}
        if self._session(request) is None:
            return _UNAUTHORIZED
        if match["system"] != SYSTEM_UUID:
            return 404, {"errorMessage": "Unknown system"}
        return self._trade(request.method, match["rest"], request.body)

    # --- session ---------------------------------------------------------------------------------
    def _login(self, request: ReceivedRequest) -> tuple[int, Any]:
        body = _json(request.body)
        if body is None or not all(
            isinstance(body.get(k), str) for k in ("email", "password", "brokerId")
        ):
            return 400, {"errorMessage": "email, password and brokerId are required"}
        if self.locked:
            return 403, {"errorMessage": "Account is locked"}
        wanted = (self.account.username, self.account.password, self.account.server)
        if (body["email"], body["password"], body["brokerId"]) != wanted:
            self.failed_logins += 1
            self.locked = self.failed_logins >= self.lock_after
            return 401, {"errorMessage": "Invalid credentials"}
        self.failed_logins = 0
        self.logins += 1
        return 200, self._new_session()

    def _refresh(self, request: ReceivedRequest) -> tuple[int, Any]:
        token = _cookie(request)
        if token is None or not self._live(token):
            return _UNAUTHORIZED
        now = self.clock()
        self.refreshes = [t for t in self.refreshes if now - t < 60 * 60_000]
        if len(self.refreshes) >= self.max_refreshes:
            return 429, {"errorMessage": "Too many token refresh requests"}
        self.refreshes.append(now)
        del self.sessions[token]  # single use: the old pair stops working
        return 200, self._new_session()

    def _new_session(self) -> dict[str, Any]:
        token, trading = "co-" + secrets.token_hex(16), "tat-" + secrets.token_hex(16)
        self.issued_tokens += [token, trading]
        self.sessions[token] = (trading, self.clock() + self.token_ttl_ms)
        self._set_cookie = token
        account = {"tradingAccountId": self.account.account_id, "tradingApiToken": trading,
                   "uuid": "acc-" + self.account.account_id, "branchUuid": "branch-1",
                   "offer": {"uuid": "offer-1", "name": "Demo", "demo": True,
                             "system": {"uuid": SYSTEM_UUID, "demo": True, "active": True}}}  # fmt: skip
        return {"email": self.account.username, "token": token, "accounts": [account]}

    def _live(self, token: str) -> bool:
        entry = self.sessions.get(token)
        return entry is not None and entry[1] > self.clock()

    def _session(self, request: ReceivedRequest) -> str | None:
        token = _cookie(request)
        if token is None or not self._live(token):
            return None
        if request.headers.get("auth-trading-api") != self.sessions[token][0]:
            return None
        return token

    # --- trading ---------------------------------------------------------------------------------
    def _trade(self, method: str, rest: str, raw: bytes) -> tuple[int, Any]:
        if method == "GET":
            if raw:
                return 400, {"errorMessage": "GET takes no body"}
            views = {"/open-positions": lambda: {"positions": list(self.positions.values())},
                     "/active-orders": lambda: {"orders": list(self.orders.values())},
                     "/balance": lambda: {"balance": "10000.00", "equity": "10000.00",
                                          "freeMargin": "10000.00", "currency": "USD"}}  # fmt: skip
            view = views.get(rest)
            return (200, view()) if view else (404, {"errorMessage": "Not found"})
        body = _json(raw)
        if method != "POST" or body is None:
            return 400, {"errorMessage": "Malformed request"}
        handlers = {"/position/open": self._open, "/position/edit": self._edit,
                    "/position/close": self._close, "/pending-order/create": self._pending,
                    "/pending-order/cancel": self._cancel}  # fmt: skip
        handler = handlers.get(rest)
        return handler(body) if handler else (404, {"errorMessage": "Not found"})

    def _open(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not _order_fields(body):
            return 400, {"errorMessage": "Invalid order"}
        position_id = str(next(self._ids))
        self.positions[position_id] = {
            "id": position_id, "symbol": body["instrument"], "side": body["orderSide"],
            "volume": body["volume"], "openPrice": 1.1,
            "stopLoss": body.get("slPrice"), "takeProfit": body.get("tpPrice"),
        }  # fmt: skip
        return 200, {"status": "OK", "nativeCode": None, "errorMessage": None,
                     "orderId": position_id}  # fmt: skip

    def _edit(self, body: dict[str, Any]) -> tuple[int, Any]:
        position = self.positions.get(str(body.get("positionId")))
        if position is None:
            return 400, {"status": "REJECTED", "errorMessage": "Position not found"}
        levels = {"slPrice": "stopLoss", "tpPrice": "takeProfit"}
        if not any(k in body for k in levels) or not all(
            _number(body[k]) for k in levels if k in body
        ):
            return 400, {"status": "REJECTED", "errorMessage": "Invalid SL/TP"}
        for key, field in levels.items():
            if key in body:  # an omitted level is left unchanged
                position[field] = body[key]
        return 200, {"status": "OK", "nativeCode": None, "errorMessage": None}

    def _close(self, body: dict[str, Any]) -> tuple[int, Any]:
        position = self.positions.get(str(body.get("positionId")))
        if position is None or not _number(body.get("volume")):
            return 400, {"status": "REJECTED", "errorMessage": "Invalid close request"}
        if (body.get("instrument"), body.get("orderSide")) != (
            position["symbol"],
            position["side"],
        ):
            return 400, {"status": "REJECTED", "errorMessage": "Position mismatch"}
        left = round(position["volume"] - body["volume"], 8)
        if left < 0:
            return 400, {"status": "REJECTED", "errorMessage": "Volume exceeds the position"}
        if left == 0:
            del self.positions[position["id"]]
        else:
            position["volume"] = left
        return 200, {"status": "OK", "nativeCode": None, "errorMessage": None}

    def _pending(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not _order_fields(body) or body.get("type") != "LIMIT" or not _number(body.get("price")):
            return 400, {"errorMessage": "Invalid pending order"}
        order_id = str(next(self._ids))
        self.orders[order_id] = {"id": order_id, "symbol": body["instrument"],
                                 "side": body["orderSide"], "type": "LIMIT",
                                 "volume": body["volume"], "activationPrice": body["price"],
                                 "stopLoss": body.get("slPrice"),
                                 "takeProfit": body.get("tpPrice")}  # fmt: skip
        return 200, {"status": "OK", "nativeCode": None, "errorMessage": None, "orderId": order_id}

    def _cancel(self, body: dict[str, Any]) -> tuple[int, Any]:
        order = self.orders.get(str(body.get("id")))
        if order is None or (body.get("instrument"), body.get("orderSide"), body.get("type")) != (
            order["symbol"], order["side"], order["type"]
        ):  # fmt: skip
            return 400, {"status": "REJECTED", "errorMessage": "Order not found"}
        del self.orders[order["id"]]
        return 200, {"status": "OK", "nativeCode": None, "errorMessage": None}


def _order_fields(body: dict[str, Any]) -> bool:
    return (
        isinstance(body.get("instrument"), str)
        and body.get("orderSide") in ("BUY", "SELL")
        and _number(body.get("volume"))
        and all(_number(body[k]) for k in ("slPrice", "tpPrice") if k in body)
    )


def _json(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _cookie(request: ReceivedRequest) -> str | None:
    for part in request.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "co-auth" and value:
            return value
    return None


def _position_id(stub: MatchTraderStub, body: bytes) -> str:
    """The id the place answer names (``orderId``), which the stub also keys the position by."""
    position_id = str(json.loads(body)["orderId"])
    assert position_id in stub.positions
    return position_id


FLOW = VenueFlow(
    venue="match_trader",
    broker=18,  # trading_pb2.BROKER_MATCH_TRADER
    stub=MatchTraderStub,
    material=lambda a: {
        "api_key": a.username,
        "username": a.username,
        "secret": a.password,
        "server": a.server,
        "account_id": a.account_id,
    },
    symbol="EURUSD",
    quantity="0.1",
    stop_loss="1.05",
    take_profit="1.2",
    amended_stop_loss="1.06",
    position_id=_position_id,
    wrong_password_locks_after=5,
)
