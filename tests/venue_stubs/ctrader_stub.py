"""A loopback cTrader Open API: the OAuth token endpoint and the JSON WebSocket, on one port.

Written from https://help.ctrader.com/open-api/ (account authentication, sending and receiving
JSON, FAQ) and the message definitions of ``spotware/openapi-proto-messages``. One websockets
server (its own event loop in a thread) answers:

* plain HTTP ``GET /apps/token`` (``process_request``): ``grant_type=authorization_code`` with
  ``code``, ``redirect_uri``, ``client_id``, ``client_secret``; ``grant_type=refresh_token`` with
  ``refresh_token``, ``client_id``, ``client_secret`` -> 200 ``{"accessToken", "tokenType":
  "bearer", "expiresIn": 2628000, "refreshToken", "errorCode": null, "description": null}``. A
  code is valid once and for 60 s (the stub clock); a refresh token once (a refresh also ends
  the access token it replaces, and pushes 2147 for it). Refusals (stub choices, UNVERIFIED):
  400 ``{"errorCode": "ACCESS_DENIED", ...}`` for a bad, used or expired code or refresh token,
  401 ``{"errorCode": "INVALID_CLIENT"}`` for a wrong client id / secret.
* WebSocket at ``/``: ``{"clientMsgId", "payloadType", "payload"}``; application auth first
  (``CH_CLIENT_NOT_AUTHENTICATED`` before it, ``CH_CLIENT_AUTH_FAILURE`` for wrong credentials,
  ``CH_CLIENT_ALREADY_AUTHENTICATED`` twice), account auth before any account message
  (``ACCOUNT_NOT_AUTHORIZED``; ``CH_ACCESS_TOKEN_INVALID`` for a bad/expired token;
  ``ALREADY_LOGGED_IN`` for an account already authorised on the connection), heartbeats
  (payloadType 51) tolerated and counted, ``max_connections`` (``CONNECTIONS_LIMIT_EXCEEDED``).
  Orders: symbolId, orderType (1 market, 2 limit, 3 stop), tradeSide (1/2), volume (0.01 of a
  unit, multiples of 100000 = 1000 units); absolute stopLoss/takeProfit refused on MARKET orders
  (``TRADING_BAD_STOPS``, as the proto says they are not supported there); relative levels in
  1/100000. Every answer and execution event carries the request's clientMsgId.
* A SCOPE_VIEW token may authorise and query but not trade (``ACCESS_DENIED``, UNVERIFIED).

Bookkeeping: ``logins`` (code exchanges that succeeded), ``refreshes``, ``failed_logins`` (refused
exchanges and refreshes), ``issued_tokens``, ``positions`` (str id -> dict with ``stopLoss`` /
``takeProfit``), ``requests`` (every HTTP request and every WebSocket message but heartbeats,
as ``ReceivedRequest(method="WS", path="/<message name>")``), ``heartbeats``, ``connections``
(opened so far). ``expire_sessions()`` ends every access token (pushing
``ProtoOAAccountsTokenInvalidatedEvent``); ``fail_with = 503`` answers every HTTP request and
handshake with that status and drops the open connections; ``drop_connections()`` only drops.

Consent: ``consent(account_id, scope=1) -> code`` mints a code as the user's consent would.
``FLOW.material`` needs a fresh code per call but gets only the ``Account``, so a running stub
registers itself under its ``Account`` (``_RUNNING``) and the material mints from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import WebSocketException
from websockets.http11 import Request, Response

from tests.support.forex_flow import Account, VenueFlow
from tests.venue_stubs.binance_stub import ReceivedRequest

REDIRECT_URI = "https://app.example.test/ctrader/callback"
EXPIRES_IN_S = 2_628_000
CODE_TTL_MS = 60_000
SYMBOLS = {"EURUSD": 1, "GBPUSD": 2, "USDJPY": 4, "XAUUSD": 41}
PRICE = 1.0845
NAMES = {2100: "ProtoOAApplicationAuthReq", 2102: "ProtoOAAccountAuthReq",
         2106: "ProtoOANewOrderReq", 2108: "ProtoOACancelOrderReq", 2109: "ProtoOAAmendOrderReq",
         2110: "ProtoOAAmendPositionSLTPReq", 2111: "ProtoOAClosePositionReq",
         2114: "ProtoOASymbolsListReq", 2121: "ProtoOATraderReq", 2124: "ProtoOAReconcileReq",
         2149: "ProtoOAGetAccountListByAccessTokenReq", 2162: "ProtoOAAccountLogoutReq",
         2181: "ProtoOAOrderDetailsReq"}  # fmt: skip
_TRADING = frozenset({2106, 2108, 2109, 2110, 2111})
_FIELDS = {2106: {"ctidTraderAccountId", "symbolId", "orderType", "tradeSide", "volume",
                  "limitPrice", "stopPrice", "timeInForce", "stopLoss", "takeProfit",
                  "relativeStopLoss", "relativeTakeProfit", "clientOrderId", "label", "comment"},
           2108: {"ctidTraderAccountId", "orderId"},
           2109: {"ctidTraderAccountId", "orderId", "volume", "limitPrice", "stopPrice",
                  "stopLoss", "takeProfit", "relativeStopLoss", "relativeTakeProfit"},
           2110: {"ctidTraderAccountId", "positionId", "stopLoss", "takeProfit"},
           2111: {"ctidTraderAccountId", "positionId", "volume"},
           2114: {"ctidTraderAccountId", "includeArchivedSymbols"},
           2121: {"ctidTraderAccountId"}, 2124: {"ctidTraderAccountId", "returnProtectionOrders"},
           2162: {"ctidTraderAccountId"}, 2181: {"ctidTraderAccountId", "orderId"}}  # fmt: skip
_RUNNING: dict[Account, CtraderStub] = {}
_QUIET = logging.getLogger("tests.ctrader_stub.wire")
_QUIET.setLevel(logging.WARNING)
Clock = Callable[[], int]
Msg = dict[str, Any]


def _num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Conn:
    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.app = False
        self.accounts: dict[int, str] = {}  # account -> token it was authorised with


class CtraderStub:
    """cTrader for one ``account`` (client id = ``account.api_key``, secret = its password)."""

    def __init__(self, account: Account, *, clock: Clock | None = None,
                 max_connections: int = 2) -> None:  # fmt: skip
        self.account = account
        self.account_id = int(account.account_id)
        self.client_id, self.client_secret = account.api_key, account.password
        self.clock: Clock = clock or (lambda: int(time.time() * 1000))
        self.max_connections = max_connections
        self.requests: list[ReceivedRequest] = []
        self.logins = self.refreshes = self.failed_logins = self.heartbeats = self.connections = 0
        self.issued_tokens: list[str] = []
        # A refresh answered this late (tests kill the vault in between); set when one started.
        self.refresh_delay_s = 0.0
        self.refresh_started = threading.Event()
        self.positions: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self._fail_with = 0
        self._codes: dict[str, tuple[int, int, int]] = {}  # code -> (account, scope, minted)
        self._access: dict[str, dict[str, Any]] = {}  # token -> {"account", "scope", "expires"}
        self._refresh: dict[str, tuple[int, int, str]] = {}  # token -> (account, scope, access)
        self._conns: set[_Conn] = set()
        self._ids = itertools.count(50_000_001)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> Self:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def start() -> None:
            self._server = await serve(self._session, "127.0.0.1", 0, process_request=self._http,
                                       logger=_QUIET, ping_interval=None, compression=None)  # fmt: skip
            self._port = next(iter(self._server.sockets)).getsockname()[1]
            started.set()

        def run() -> None:
            assert self._loop is not None
            self._loop.run_until_complete(start())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(5)
        _RUNNING[self.account] = self
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        _RUNNING.pop(self.account, None)
        if self._loop is None:
            return

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop.close()
        self._loop = None

    def _on_loop(self, make: Callable[[], Any]) -> None:
        """Run the coroutine ``make()`` on the stub's loop and wait for it."""
        if self._loop is None:
            return
        if threading.current_thread() is self._thread:  # an HTTP handler on the loop itself
            self._loop.create_task(make())
        else:
            asyncio.run_coroutine_threadsafe(make(), self._loop).result(5)

    # --- test controls ------------------------------------------------------------------------
    def consent(self, account_id: int | None = None, scope: int = 1) -> str:
        """The code a user's consent gives (scope 1 SCOPE_TRADE, 0 SCOPE_VIEW)."""
        code = "code-" + secrets.token_urlsafe(16)
        self._codes[code] = (account_id or self.account_id, scope, self.clock())
        return code

    @property
    def fail_with(self) -> int:
        return self._fail_with

    @fail_with.setter
    def fail_with(self, status: int) -> None:
        self._fail_with = status
        if status:
            self.drop_connections()

    def drop_connections(self) -> None:
        async def drop() -> None:  # a network drop: no closing handshake to wait for
            for conn in list(self._conns):
                conn.ws.transport.abort()

        self._on_loop(drop)

    def revoke_consent(self) -> None:
        """The user withdrew the consent: every refresh and access token stops working."""
        self._refresh.clear()
        self.expire_sessions()

    def expire_sessions(self) -> None:
        """Every access token ends now; connections using one get event 2147."""
        for token in list(self._access):
            self._end_access(token)

    def _end_access(self, token: str) -> None:
        held = self._access.pop(token, None)
        if held is None:
            return

        async def push() -> None:
            for conn in list(self._conns):
                ended = [a for a, t in conn.accounts.items() if t == token]
                for account in ended:
                    del conn.accounts[account]
                if ended:
                    await self._push(
                        conn,
                        2147,
                        {
                            "ctidTraderAccountIds": ended,
                            "reason": "Access Token is expired or recalled",
                        },
                    )

        self._on_loop(push)

    # --- HTTP: the token endpoint -------------------------------------------------------------
    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if self._fail_with or not upgrade:
            self.requests.append(ReceivedRequest("GET", parts.path, parts.query,
                                                 {k.lower(): v for k, v in request.headers.raw_items()},
                                                 b""))  # fmt: skip
        if self._fail_with:
            return _json_response(self._fail_with, {"errorCode": "SERVER_ERROR"})
        if upgrade:
            return None
        if parts.path != "/apps/token":
            return _json_response(404, {"errorCode": "NOT_FOUND"})
        status, reply = self._token(dict(parse_qsl(parts.query)))
        self.requests[-1].status, self.requests[-1].reply = status, reply
        return _json_response(status, reply)

    def _token(self, query: dict[str, str]) -> tuple[int, Msg]:
        if (query.get("client_id"), query.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            self.failed_logins += 1
            return 401, {"errorCode": "INVALID_CLIENT", "description": "Invalid client credentials"}
        grant = query.get("grant_type")
        if grant == "authorization_code":
            minted = self._codes.pop(query.get("code", ""), None)
            if (minted is None or query.get("redirect_uri") != REDIRECT_URI
                    or self.clock() - minted[2] > CODE_TTL_MS):  # fmt: skip
                self.failed_logins += 1
                return 400, {
                    "errorCode": "ACCESS_DENIED",
                    "description": "Invalid authorization code",
                }
            self.logins += 1
            return 200, self._pair(minted[0], minted[1])
        if grant == "refresh_token":
            held = self._refresh.pop(query.get("refresh_token", ""), None)
            if held is None:
                self.failed_logins += 1
                return 400, {"errorCode": "ACCESS_DENIED", "description": "Invalid refresh token"}
            self._end_access(held[2])
            self.refreshes += 1
            answer = self._pair(held[0], held[1])
            if self.refresh_delay_s:  # the answer is late: the old refresh token is spent
                self.refresh_started.set()
                time.sleep(self.refresh_delay_s)
            return 200, answer
        return 400, {"errorCode": "INVALID_REQUEST", "description": "Unsupported grant_type"}

    def _pair(self, account: int, scope: int) -> Msg:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._access[access] = {"account": account, "scope": scope,
                                "expires": self.clock() + EXPIRES_IN_S * 1000}  # fmt: skip
        self._refresh[refresh] = (account, scope, access)
        self.issued_tokens += [access, refresh]
        return {"accessToken": access, "tokenType": "bearer", "expiresIn": EXPIRES_IN_S,
                "refreshToken": refresh, "errorCode": None, "description": None}  # fmt: skip

    def _valid(self, token: object) -> dict[str, Any] | None:
        held = self._access.get(token) if isinstance(token, str) else None
        return held if held is not None and held["expires"] > self.clock() else None

    # --- WebSocket ----------------------------------------------------------------------------
    async def _session(self, ws: ServerConnection) -> None:
        conn = _Conn(ws)
        self.connections += 1
        self._conns.add(conn)
        try:
            async for raw in ws:
                await self._message(conn, raw)
        except WebSocketException:
            pass
        finally:
            self._conns.discard(conn)

    async def _message(self, conn: _Conn, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or not _int(msg.get("payloadType")):
            await self._send(conn, None, 50, {"errorCode": "INVALID_REQUEST"})
            return
        kind, cid, payload = msg["payloadType"], msg.get("clientMsgId"), msg.get("payload") or {}
        if kind == 51:
            self.heartbeats += 1
            return
        self.requests.append(ReceivedRequest("WS", "/" + NAMES.get(kind, str(kind)), "", {},
                                             raw.encode() if isinstance(raw, str) else raw))  # fmt: skip
        for kind_out, answer in self._answer(conn, kind, payload):
            await self._send(conn, cid, kind_out, answer)

    def _answer(self, conn: _Conn, kind: int, p: Msg) -> list[tuple[int, Msg]]:
        if kind == 2100:
            return [self._app_auth(conn, p)]
        if not conn.app:
            return [_error("CH_CLIENT_NOT_AUTHENTICATED")]
        if kind == 2149:
            held = self._valid(p.get("accessToken"))
            if held is None:
                return [_error("CH_ACCESS_TOKEN_INVALID")]
            return [(2150, {"accessToken": p["accessToken"], "permissionScope": held["scope"],
                            "ctidTraderAccount": [{"ctidTraderAccountId": held["account"],
                                                   "isLive": False, "traderLogin": 5001}]})]  # fmt: skip
        if kind not in _FIELDS and kind != 2102:
            return [_error("UNSUPPORTED_MESSAGE")]
        account = p.get("ctidTraderAccountId")
        if kind == 2102:
            return [self._account_auth(conn, account, p)]
        if not set(p) <= _FIELDS[kind] or not _int(account):
            return [_error("INVALID_REQUEST", account)]
        if kind == 2162:
            conn.accounts.pop(account, None)
            return [(2163, {"ctidTraderAccountId": account})]
        if account not in conn.accounts:
            return [_error("ACCOUNT_NOT_AUTHORIZED", account)]
        held = self._valid(conn.accounts[account])
        if held is None:
            return [_error("CH_ACCESS_TOKEN_INVALID", account)]
        if kind in _TRADING and held["scope"] != 1:
            return [_error("ACCESS_DENIED", account, "the access token has SCOPE_VIEW")]
        return self._account_message(kind, account, p)

    def _app_auth(self, conn: _Conn, p: Msg) -> tuple[int, Msg]:
        if conn.app:
            return _error("CH_CLIENT_ALREADY_AUTHENTICATED")
        if (p.get("clientId"), p.get("clientSecret")) != (self.client_id, self.client_secret):
            return _error("CH_CLIENT_AUTH_FAILURE")
        if sum(1 for c in self._conns if c.app) >= self.max_connections:
            return _error("CONNECTIONS_LIMIT_EXCEEDED")
        conn.app = True
        return 2101, {}

    def _account_auth(self, conn: _Conn, account: object, p: Msg) -> tuple[int, Msg]:
        if set(p) != {"ctidTraderAccountId", "accessToken"} or not _int(account):
            return _error("INVALID_REQUEST")
        assert isinstance(account, int)
        held = self._valid(p["accessToken"])
        if held is None:
            return _error("CH_ACCESS_TOKEN_INVALID", account)
        if held["account"] != account:
            return _error("CH_CTID_TRADER_ACCOUNT_NOT_FOUND", account)
        if account in conn.accounts:
            return _error("ALREADY_LOGGED_IN", account)
        conn.accounts[account] = p["accessToken"]
        return 2103, {"ctidTraderAccountId": account}

    # --- trading ------------------------------------------------------------------------------
    def _account_message(self, kind: int, account: int, p: Msg) -> list[tuple[int, Msg]]:
        if kind == 2114:
            return [
                (
                    2115,
                    {
                        "ctidTraderAccountId": account,
                        "symbol": [
                            {"symbolId": i, "symbolName": n, "enabled": True}
                            for n, i in SYMBOLS.items()
                        ],
                    },
                )
            ]
        if kind == 2121:
            return [
                (
                    2122,
                    {
                        "ctidTraderAccountId": account,
                        "trader": {
                            "ctidTraderAccountId": account,
                            "balance": 10_000_000,
                            "accessRights": 0,
                        },
                    },
                )
            ]
        if kind == 2124:
            return [
                (
                    2125,
                    {
                        "ctidTraderAccountId": account,
                        "position": [_position(q) for q in self.positions.values()],
                        "order": [o for o in self.orders.values() if o["orderStatus"] == 1],
                    },
                )
            ]
        if kind == 2181:
            order = self.orders.get(str(p.get("orderId")))
            if order is None:
                return [_error("ORDER_NOT_FOUND", account)]
            return [(2182, {"ctidTraderAccountId": account, "order": order})]
        if kind == 2106:
            return self._new_order(account, p)
        if kind == 2110:
            return self._amend_position(account, p)
        if kind == 2111:
            return self._close(account, p)
        order = self.orders.get(str(p.get("orderId")))
        if order is None or order["orderStatus"] != 1:
            return [
                (
                    2132,
                    {
                        "ctidTraderAccountId": account,
                        "errorCode": "ORDER_NOT_FOUND",
                        "orderId": p.get("orderId"),
                    },
                )
            ]
        if kind == 2108:
            order["orderStatus"] = 3
            return [_execution(account, 5, order=order)]
        order |= {k: v for k, v in p.items() if k not in ("ctidTraderAccountId", "orderId")}
        return [_execution(account, 4, order=order)]

    def _new_order(self, account: int, p: Msg) -> list[tuple[int, Msg]]:
        problem = _order_problem(p)
        if problem is not None:
            return [(2132, {"ctidTraderAccountId": account, "errorCode": problem[0],
                            "description": problem[1]})]  # fmt: skip
        order_id = next(self._ids)
        order = {"orderId": order_id, "orderType": p["orderType"], "orderStatus": 1,
                 "clientOrderId": p.get("clientOrderId"),
                 "tradeData": {"symbolId": p["symbolId"], "volume": p["volume"],
                               "tradeSide": p["tradeSide"]},
                 **{k: p[k] for k in ("limitPrice", "stopPrice", "stopLoss", "takeProfit") if k in p}}  # fmt: skip
        self.orders[str(order_id)] = order
        accepted = _execution(account, 2, order=order)
        if p["orderType"] != 1:
            return [accepted]
        position_id = next(self._ids)
        sign = 1 if p["tradeSide"] == 1 else -1
        position = {"positionId": position_id, "symbolId": p["symbolId"], "volume": p["volume"],
                    "tradeSide": p["tradeSide"], "price": PRICE, "stopLoss": None,
                    "takeProfit": None}  # fmt: skip
        if "relativeStopLoss" in p:
            position["stopLoss"] = round(PRICE - sign * p["relativeStopLoss"] / 100_000, 5)
        if "relativeTakeProfit" in p:
            position["takeProfit"] = round(PRICE + sign * p["relativeTakeProfit"] / 100_000, 5)
        self.positions[str(position_id)] = position
        order |= {"orderStatus": 2, "positionId": position_id, "executedVolume": p["volume"]}
        return [accepted, _execution(account, 3, order=order, position=_position(position))]

    def _amend_position(self, account: int, p: Msg) -> list[tuple[int, Msg]]:
        position = self.positions.get(str(p.get("positionId")))
        if position is None:
            return [
                (
                    2132,
                    {
                        "ctidTraderAccountId": account,
                        "errorCode": "POSITION_NOT_FOUND",
                        "positionId": p.get("positionId"),
                    },
                )
            ]
        levels = [p.get(k) for k in ("stopLoss", "takeProfit") if k in p]
        if not levels or not all(_num(v) and v > 0 for v in levels):
            return [(2132, {"ctidTraderAccountId": account, "errorCode": "TRADING_BAD_STOPS"})]
        position["stopLoss"], position["takeProfit"] = p.get("stopLoss"), p.get("takeProfit")
        return [_execution(account, 4, position=_position(position))]

    def _close(self, account: int, p: Msg) -> list[tuple[int, Msg]]:
        key = str(p.get("positionId"))
        position = self.positions.get(key)
        if position is None:
            return [(2132, {"ctidTraderAccountId": account, "errorCode": "POSITION_NOT_FOUND"})]
        volume = p.get("volume")
        if not _int(volume) or not 0 < volume <= position["volume"] or volume % 100_000:
            return [(2132, {"ctidTraderAccountId": account, "errorCode": "TRADING_BAD_VOLUME"})]
        order = {"orderId": next(self._ids), "orderType": 1, "orderStatus": 2,
                 "closingOrder": True, "positionId": position["positionId"],
                 "tradeData": {"symbolId": position["symbolId"], "volume": volume,
                               "tradeSide": 3 - position["tradeSide"]}}  # fmt: skip
        position["volume"] -= volume
        shown = _position(position)
        if position["volume"] == 0:
            del self.positions[key]
        return [_execution(account, 2, order=order), _execution(account, 3, order=order,
                                                                position=shown)]  # fmt: skip

    async def _send(self, conn: _Conn, cid: object, kind: int, payload: Msg) -> None:
        frame: Msg = {"payloadType": kind, "payload": payload}
        if isinstance(cid, str):
            frame["clientMsgId"] = cid
        with contextlib.suppress(WebSocketException):
            await conn.ws.send(json.dumps(frame))

    async def _push(self, conn: _Conn, kind: int, payload: Msg) -> None:
        await self._send(conn, None, kind, payload)


def _order_problem(p: Msg) -> tuple[str, str] | None:
    required = ("ctidTraderAccountId", "symbolId", "orderType", "tradeSide", "volume")
    if not all(_int(p.get(k)) for k in required):
        return "INVALID_REQUEST", "symbolId, orderType, tradeSide and volume are required"
    if p["symbolId"] not in SYMBOLS.values():
        return "SYMBOL_NOT_FOUND", "unknown symbolId"
    if p["orderType"] not in (1, 2, 3) or p["tradeSide"] not in (1, 2):
        return "INVALID_REQUEST", "invalid orderType or tradeSide"
    if p["volume"] <= 0 or p["volume"] % 100_000:
        return "TRADING_BAD_VOLUME", "volume must be a positive multiple of 100000"
    if p["orderType"] == 1 and ("stopLoss" in p or "takeProfit" in p):
        return "TRADING_BAD_STOPS", "absolute SL/TP are not supported for MARKET orders"
    if p["orderType"] == 2 and not _num(p.get("limitPrice")):
        return "TRADING_BAD_PRICES", "limitPrice is required for LIMIT orders"
    if p["orderType"] == 3 and not _num(p.get("stopPrice")):
        return "TRADING_BAD_PRICES", "stopPrice is required for STOP orders"
    for key in ("relativeStopLoss", "relativeTakeProfit"):
        if key in p and (not _int(p[key]) or p[key] <= 0):
            return "TRADING_BAD_STOPS", f"{key} must be a positive integer"
    return None


def _position(q: Msg) -> Msg:
    shown = {"positionId": q["positionId"], "positionStatus": 1 if q["volume"] else 2,
             "price": q["price"], "tradeData": {"symbolId": q["symbolId"], "volume": q["volume"],
                                                "tradeSide": q["tradeSide"]}}  # fmt: skip
    return shown | {k: q[k] for k in ("stopLoss", "takeProfit") if q[k] is not None}


def _execution(account: int, execution: int, **parts: Msg) -> tuple[int, Msg]:
    return 2126, {"ctidTraderAccountId": account, "executionType": execution, **parts}


def _error(code: str, account: object = None, description: str = "") -> tuple[int, Msg]:
    payload: Msg = {"errorCode": code, "description": description or code}
    if _int(account):
        payload["ctidTraderAccountId"] = account
    return 2142, payload


def _json_response(status: int, body: Msg) -> Response:
    raw = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(raw))),
                       ("Connection", "close")])  # fmt: skip
    return Response(status, HTTPStatus(status).phrase, headers, raw)


def _material(account: Account) -> dict[str, str]:
    """A fresh consent code from the running stub of ``account`` (an unknown code without)."""
    stub = _RUNNING.get(account)
    code = stub.consent() if stub is not None else "code-" + secrets.token_urlsafe(16)
    return {"api_key": account.account_id, "account_id": account.account_id,
            "authorization_code": code, "redirect_uri": REDIRECT_URI}  # fmt: skip


def _position_id(stub: CtraderStub, body: bytes) -> str:
    """The position the fill event of the place answer opened."""
    return str(json.loads(body)["payload"]["position"]["positionId"])


FLOW = VenueFlow(
    venue="ctrader",
    broker=16,  # trading_pb2.BROKER_CTRADER
    stub=CtraderStub,
    material=_material,
    symbol="EURUSD",
    quantity="1000",  # units (0.01 lot): volume 100000
    stop_loss="1.05",
    take_profit="1.2",
    amended_stop_loss="1.06",
    position_id=_position_id,
    # No password and no account lock at cTrader: a refused code needs a new consent.
    wrong_password_locks_after=1_000_000,
)
