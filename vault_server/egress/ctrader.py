"""The cTrader Open API transport: one WebSocket per host carrying every account's messages.

cTrader speaks JSON messages ``{"clientMsgId", "payloadType", "payload"}`` over a persistent
connection (https://help.ctrader.com/open-api/sending-receiving-json/), authenticated once for the
platform application (``ProtoOAApplicationAuthReq`` 2100 -> 2101) and once per trading account
(``ProtoOAAccountAuthReq`` 2102 -> 2103); the server drops a connection that sends nothing for
about 10 s (FAQ), so a heartbeat (``ProtoHeartbeatEvent``, payloadType 51) is sent every
``heartbeat_s``. Spotware asks applications to keep few connections: this holds **one per host and
application** and multiplexes every account over it, correlating answers by ``clientMsgId``.

A proxied request arrives as a venue module built it (``brokers/venues/ctrader.py``): the URL path
names the message (``/ProtoOANewOrderReq``), the body is its payload without the account, and two
headers that never reach the wire carry the session: ``Authorization: Bearer <access token>`` and
``ctidTraderAccountId``. :meth:`CtraderConnections.send`:

1. opens (or reuses) the host's connection: application auth, heartbeat task, reader task;
2. authorises the account with the token, again whenever the token changes (logging the old one
   out first: the server answers ``ALREADY_LOGGED_IN`` otherwise) or after the server ended it
   (``ProtoOAAccountsTokenInvalidatedEvent`` 2147, ``ProtoOAAccountDisconnectEvent`` 2164);
3. resolves ``symbolName`` to the account's ``symbolId`` (``ProtoOASymbolsListReq``, cached per
   account and connection), fills a missing close ``volume`` from ``ProtoOAReconcileReq``;
4. sends the message with the account and waits for its answer: the execution event that ends
   it (a market order or a close: filled, rejected or cancelled; a pending order: accepted), the
   response, ``ProtoOAErrorRes`` or ``ProtoOAOrderErrorEvent``;
5. a MARKET order with absolute stop loss / take profit (which cTrader does not accept on market
   orders) is sent without them and, once filled, its position gets them with
   ``ProtoOAAmendPositionSLTPReq``; the answer carries both events (``protection``), and is
   **502** if the levels could not be set (the position is open without them: the caller must
   act), never a silent success.

Answers (``VenueResponse``, body ``{"payloadType", "payload"}`` of the final message): 200;
**401** when the venue refused the token (``CH_ACCESS_TOKEN_INVALID``, ``OA_AUTH_TOKEN_EXPIRED``,
``ACCOUNT_NOT_AUTHORIZED``) - the order was not sent or not processed; 404 for an unknown
position/order/symbol; 429 for rate limits; 503 for maintenance; 400 for other refusals.
Errors: ``VenueTimeout`` past ``timeout_s``; ``VenueUnavailable`` when the connection fails before
a trading message was written; ``OrderOutcomeUnknown`` when it drops after one was.

Nothing here logs a message: frames carry tokens and the client secret, so the WebSocket library
gets a logger that drops DEBUG records. A reconnect starts from nothing (every auth again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from vault_server.core.errors import (
    EndpointNotAllowed,
    OrderOutcomeUnknown,
    VenueTimeout,
    VenueUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.egress.relay import VenueResponse

__all__ = ["CtraderConnections"]

# The WebSocket library logs every frame at DEBUG; frames carry tokens.
_WIRE_LOG = logging.getLogger("vault_server.egress.ctrader.wire")
_WIRE_LOG.setLevel(logging.WARNING)

HEARTBEAT, ERROR_RES = 51, 2142
APP_AUTH, ACCOUNT_AUTH, ACCOUNT_LOGOUT = 2100, 2102, 2162
SYMBOLS, RECONCILE, EXECUTION, ORDER_ERROR = 2114, 2124, 2126, 2132
TOKEN_INVALIDATED, CLIENT_DISCONNECT, ACCOUNT_DISCONNECT = 2147, 2148, 2164
MESSAGES = {"ProtoOANewOrderReq": 2106, "ProtoOACancelOrderReq": 2108,
            "ProtoOAAmendOrderReq": 2109, "ProtoOAAmendPositionSLTPReq": 2110,
            "ProtoOAClosePositionReq": 2111, "ProtoOATraderReq": 2121,
            "ProtoOAReconcileReq": 2124, "ProtoOAOrderDetailsReq": 2181}  # fmt: skip
_TRADING = frozenset({2106, 2108, 2109, 2110, 2111})
_FILLS = frozenset({3, 5, 6, 7})  # FILLED, CANCELLED, EXPIRED, REJECTED
_REFUSED_EXECUTIONS = frozenset({7, 8})  # REJECTED, CANCEL_REJECTED
_TOKEN_REFUSED = frozenset({"CH_ACCESS_TOKEN_INVALID", "OA_AUTH_TOKEN_EXPIRED",
                            "ACCOUNT_NOT_AUTHORIZED"})  # fmt: skip
_STATUS = {"POSITION_NOT_FOUND": 404, "ORDER_NOT_FOUND": 404, "ENTITY_NOT_FOUND": 404,
           "SYMBOL_NOT_FOUND": 404, "CH_CTID_TRADER_ACCOUNT_NOT_FOUND": 404,
           "REQUEST_FREQUENCY_EXCEEDED": 429, "BLOCKED_PAYLOAD_TYPE": 429,
           "SERVER_IS_UNDER_MAINTENANCE": 503, "CH_SERVER_NOT_REACHABLE": 503,
           "ACCESS_DENIED": 403, "TRADING_NOT_ALLOWED": 403, "CHANNEL_IS_BLOCKED": 403,
           **dict.fromkeys(_TOKEN_REFUSED, 401)}  # fmt: skip
_JSON = (("Content-Type", "application/json"),)
Message = dict[str, Any]


class _Sendable(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def body(self) -> bytes: ...


class _Dropped(Exception):
    """The connection ended while a message waited for its answer."""


@dataclass
class _Waiter:
    done: Callable[[Message], bool]
    future: asyncio.Future[Message]
    seen: list[Message] = field(default_factory=list)

    def feed(self, message: Message) -> None:
        self.seen.append(message)
        if not self.future.done() and self.done(message):
            self.future.set_result(message)


class _Connection:
    """One authenticated WebSocket and the accounts authorised on it."""

    def __init__(self, ws: ClientConnection, heartbeat_s: float) -> None:
        self.ws = ws
        self.closed = False
        self._ids = itertools.count(1)
        self._waiters: dict[str, _Waiter] = {}
        self._orders: dict[int, _Waiter] = {}  # order ids learnt from an answer -> its waiter
        self.authorized: dict[
            int, str
        ] = {}  # account -> digest of the token it was authorised with
        self.symbols: dict[int, dict[str, int]] = {}
        self.account_locks: dict[int, asyncio.Lock] = {}
        self._reader = asyncio.create_task(self._read())
        self._beat = asyncio.create_task(self._heartbeat(heartbeat_s))

    async def request(
        self, payload_type: int, payload: Message, done: Callable[[Message], bool] | None = None
    ) -> tuple[Message, list[Message]]:
        """Send one message; the message that ``done`` accepts (default: the response or an error)
        and every message that answered it."""
        if self.closed:
            raise _Dropped
        cid = f"pv-{next(self._ids)}"
        waiter = _Waiter(
            done or _response_to(payload_type), asyncio.get_running_loop().create_future()
        )
        self._waiters[cid] = waiter
        try:
            frame = {"clientMsgId": cid, "payloadType": payload_type, "payload": payload}
            await self.ws.send(json.dumps(frame, separators=(",", ":")))
            return await waiter.future, waiter.seen
        except WebSocketException:
            raise _Dropped from None
        finally:
            self._waiters.pop(cid, None)
            for order_id in [k for k, w in self._orders.items() if w is waiter]:
                del self._orders[order_id]

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = _decode(raw)
                if message is not None:
                    self._route(message)
        except WebSocketException:
            pass
        finally:
            self._end()

    def _route(self, message: Message) -> None:
        kind, payload = message.get("payloadType"), message.get("payload") or {}
        if kind in (TOKEN_INVALIDATED, ACCOUNT_DISCONNECT):
            ids = payload.get("ctidTraderAccountIds") or [payload.get("ctidTraderAccountId")]
            for account in ids:
                self.authorized.pop(account, None)
                self.symbols.pop(account, None)
        if kind == CLIENT_DISCONNECT:
            self._end()
            return
        waiter = self._waiters.get(str(message.get("clientMsgId")))
        order_id = _order_id(payload)
        if waiter is None and kind in (EXECUTION, ORDER_ERROR) and order_id is not None:
            waiter = self._orders.get(order_id)
        if waiter is not None:
            if order_id is not None:
                self._orders[order_id] = waiter
            waiter.feed(message)

    async def _heartbeat(self, every_s: float) -> None:
        with contextlib.suppress(WebSocketException):
            while not self.closed:
                await asyncio.sleep(every_s)
                await self.ws.send('{"payloadType":51,"payload":{}}')

    def _end(self) -> None:
        if self.closed:
            return
        self.closed = True
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(_Dropped())
        self._beat.cancel()
        asyncio.get_running_loop().create_task(self.ws.close())

    async def close(self) -> None:
        self._end()
        await self.ws.close()
        for task in (self._reader, self._beat):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class CtraderConnections:
    """The ``ctrader`` transport (see the module doc). One instance per replica."""

    def __init__(self, *, heartbeat_s: float = 9.0, max_body: int = 1 << 20,
                 max_frame: int = 16 << 20) -> None:  # fmt: skip
        self._heartbeat_s = heartbeat_s
        self._max_body = max_body
        self._max_frame = max_frame
        self._connections: dict[tuple[str, str], _Connection] = {}
        self._opening: dict[tuple[str, str], asyncio.Lock] = {}

    async def send(
        self, request: _Sendable, *, client_id: str, client_secret: Secret,
        timeout_s: float | None,
    ) -> VenueResponse:  # fmt: skip
        """Send one proxied cTrader message for its account; its answer (see the module doc)."""
        url, payload_type, payload, token, account = _unpack(request)
        written = False
        try:
            async with asyncio.timeout(timeout_s):
                conn = await self._connection(url, client_id, client_secret)
                refused = await _authorize(conn, account, token)
                if refused is not None:
                    return refused
                payload, missing = await _resolve(conn, account, payload_type, payload)
                if missing is not None:
                    return missing
                written = payload_type in _TRADING
                return self._answer(*await _exchange(conn, account, payload_type, payload))
        except TimeoutError:
            raise VenueTimeout(
                "cTrader did not answer in time", metadata=_meta(payload_type)
            ) from None
        except (_Dropped, WebSocketException, OSError):
            if written:
                raise OrderOutcomeUnknown(
                    "the cTrader connection dropped after the order was sent: query the order "
                    "or position before retrying", metadata=_meta(payload_type),
                ) from None  # fmt: skip
            raise VenueUnavailable(
                "the cTrader connection failed", metadata=_meta(payload_type)
            ) from None

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            await conn.close()

    async def _connection(self, url: str, client_id: str, client_secret: Secret) -> _Connection:
        key = (url, client_id)
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(key)
            if conn is not None and not conn.closed:
                return conn
            ws = await connect(url, logger=_WIRE_LOG, max_size=self._max_frame, ping_interval=None,
                               compression=None, open_timeout=None)  # fmt: skip
            conn = _Connection(ws, self._heartbeat_s)
            try:
                answer, _ = await conn.request(
                    APP_AUTH,
                    {"clientId": client_id, "clientSecret": client_secret.reveal().decode()},
                )
            except BaseException:
                await conn.close()
                raise
            if answer.get("payloadType") != APP_AUTH + 1:
                await conn.close()
                raise VenueUnavailable("cTrader refused the platform application",
                                       metadata={"errorCode": _error_code(answer)})  # fmt: skip
            self._connections[key] = conn
            return conn

    def _answer(self, status: int, body: Message) -> VenueResponse:
        raw = json.dumps(body, separators=(",", ":")).encode()
        cut = len(raw) > self._max_body
        return VenueResponse(status, _JSON, raw[: self._max_body], body_truncated=cut)


async def _authorize(conn: _Connection, account: int, token: str) -> VenueResponse | None:
    """Authorise ``account`` with ``token`` on ``conn`` unless it already is (None: done)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    async with conn.account_locks.setdefault(account, asyncio.Lock()):
        held = conn.authorized.get(account)
        if held == digest:
            return None
        if held is not None:  # a renewed token: end the old authorisation first
            await conn.request(ACCOUNT_LOGOUT, {"ctidTraderAccountId": account})
            conn.authorized.pop(account, None)
        answer, _ = await conn.request(ACCOUNT_AUTH, {"ctidTraderAccountId": account,
                                                      "accessToken": token})  # fmt: skip
        if answer.get("payloadType") != ACCOUNT_AUTH + 1:
            return VenueResponse(_status(answer), _JSON, _body(answer))
        conn.authorized[account] = digest
        return None


async def _resolve(
    conn: _Connection, account: int, payload_type: int, payload: Message
) -> tuple[Message, VenueResponse | None]:
    """The payload with ``symbolName`` -> ``symbolId`` and a whole close's ``volume`` filled in."""
    if "symbolName" in payload:
        if account not in conn.symbols:
            answer, _ = await conn.request(SYMBOLS, {"ctidTraderAccountId": account})
            if answer.get("payloadType") != SYMBOLS + 1:
                return payload, VenueResponse(_status(answer), _JSON, _body(answer))
            listed = answer.get("payload", {}).get("symbol") or []
            conn.symbols[account] = {s["symbolName"]: s["symbolId"] for s in listed
                                     if "symbolName" in s and "symbolId" in s}  # fmt: skip
        name = payload["symbolName"]
        symbol_id = conn.symbols[account].get(name)
        if symbol_id is None:
            return payload, _refusal(404, "SYMBOL_NOT_FOUND", "no such symbol at this account")
        payload = {"symbolId": symbol_id, **{k: v for k, v in payload.items() if k != "symbolName"}}
    if payload_type == MESSAGES["ProtoOAClosePositionReq"] and "volume" not in payload:
        answer, _ = await conn.request(RECONCILE, {"ctidTraderAccountId": account})
        positions = answer.get("payload", {}).get("position") or []
        volume = next((p.get("tradeData", {}).get("volume") for p in positions
                       if p.get("positionId") == payload["positionId"]), None)  # fmt: skip
        if volume is None:
            return payload, _refusal(404, "POSITION_NOT_FOUND", "no such open position")
        payload = {**payload, "volume": volume}
    return payload, None


async def _exchange(
    conn: _Connection, account: int, payload_type: int, payload: Message
) -> tuple[int, Message]:
    """Send the message (a MARKET order's absolute levels afterwards, on its position)."""
    levels: Message = {}
    if payload_type == 2106 and payload.get("orderType") == 1:
        levels = {k: payload[k] for k in ("stopLoss", "takeProfit") if k in payload}
        payload = {k: v for k, v in payload.items() if k not in levels}
    answer, _ = await conn.request(payload_type, {"ctidTraderAccountId": account, **payload},
                                   _finished(payload_type, payload))  # fmt: skip
    status, body = _status(answer), _body_of(answer)
    if not levels or status != 200:
        return status, body
    position = (answer.get("payload") or {}).get("position") or {}
    if "positionId" not in position:
        return 502, body | {"protectionError": "the fill named no position to protect"}
    amend = {"ctidTraderAccountId": account, "positionId": position["positionId"], **levels}
    protected, _ = await conn.request(2110, amend, _finished(2110, amend))
    body["protection"] = _body_of(protected)
    return (200 if _status(protected) == 200 else 502), body


def _finished(payload_type: int, payload: Message) -> Callable[[Message], bool]:
    """When a trading message is answered: its terminal execution event or an error."""
    market = payload_type == 2111 or (payload_type == 2106 and payload.get("orderType") == 1)

    def done(message: Message) -> bool:
        kind = message.get("payloadType")
        if kind in (ERROR_RES, ORDER_ERROR):
            return True
        if kind != EXECUTION:
            return payload_type not in _TRADING and kind == payload_type + 1
        execution = (message.get("payload") or {}).get("executionType")
        return execution in _FILLS if market else True

    return done


def _response_to(payload_type: int) -> Callable[[Message], bool]:
    return lambda m: m.get("payloadType") in (payload_type + 1, ERROR_RES, ORDER_ERROR)


def _unpack(request: _Sendable) -> tuple[str, int, Message, str, int]:
    """The WebSocket URL, message type, payload, access token and account of a request."""
    parts = urlsplit(request.url)
    name = parts.path.rsplit("/", 1)[-1]
    if parts.scheme not in ("wss", "ws", "https", "http") or name not in MESSAGES or parts.query:
        raise EndpointNotAllowed("this cTrader message is not allowed")
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    headers = {k.lower(): v for k, v in request.headers}
    bearer, account = headers.get("authorization", ""), headers.get("ctidtraderaccountid", "")
    if not bearer.startswith("Bearer ") or not account.isdigit():
        raise EndpointNotAllowed("a cTrader message needs its session and account")
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        raise EndpointNotAllowed("a cTrader message body must be a JSON object") from None
    if not isinstance(payload, dict) or "ctidTraderAccountId" in payload:
        raise EndpointNotAllowed("a cTrader message body must be a JSON object")
    return f"{scheme}://{parts.netloc}/", MESSAGES[name], payload, bearer[7:], int(account)


def _decode(raw: str | bytes) -> Message | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _order_id(payload: Message) -> int | None:
    order = payload.get("order")
    value = order.get("orderId") if isinstance(order, dict) else payload.get("orderId")
    return value if isinstance(value, int) else None


def _error_code(message: Message) -> str:
    code = (message.get("payload") or {}).get("errorCode")
    return code[:64] if isinstance(code, str) and code.isascii() else ""


def _status(message: Message) -> int:
    kind = message.get("payloadType")
    if kind in (ERROR_RES, ORDER_ERROR):
        return _STATUS.get(_error_code(message), 400)
    if kind == EXECUTION:
        refused = (message.get("payload") or {}).get("executionType") in _REFUSED_EXECUTIONS
        return _STATUS.get(_error_code(message), 400) if refused else 200
    return 200


def _body_of(message: Message) -> Message:
    return {"payloadType": message.get("payloadType"), "payload": message.get("payload") or {}}


def _body(message: Message) -> bytes:
    return json.dumps(_body_of(message), separators=(",", ":")).encode()


def _refusal(status: int, code: str, description: str) -> VenueResponse:
    body = {"payloadType": ERROR_RES, "payload": {"errorCode": code, "description": description}}
    return VenueResponse(status, _JSON, json.dumps(body, separators=(",", ":")).encode())


def _meta(payload_type: int) -> dict[str, str]:
    return {"payloadType": str(payload_type)}
