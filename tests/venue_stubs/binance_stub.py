"""A loopback Binance (Spot + USD-M + the one /sapi permission query) that checks signatures.

It verifies requests the way Binance documents it (reference §1.2): the signed payload is the
query string plus the body with no separator and ``signature`` as the last parameter; HMAC
signatures are hex, Ed25519 / RSA ones are percent-encoded base64. Timing follows the official
pseudo-code ``timestamp < serverTime + 1000 && serverTime - timestamp <= recvWindow`` with an
injectable server clock, and ``recvWindow`` above 60000 is refused.

Errors are Binance-shaped: ``{"code": -1022, "msg": ...}`` (-2014 / -2015 with HTTP 401 for a
missing / unknown key, -1102 missing parameter, -1131 bad recvWindow, -1021 timestamp outside
the window, -1022 bad signature; HTTP 400).

Usage::

    with BinanceStub({"my-key": "hmac-secret", "ed-key": ed25519_public_key}) as stub:
        stub.permissions["my-key"] = {"enableWithdrawals": True}   # overrides the defaults
        stub.clock = lambda: 1_700_000_000_000                        # server time in ms
        httpx.post(stub.base_url + "/api/v3/order?...")
        stub.requests[-1].status, stub.requests[-1].reply

``LoopbackVenueStub`` (the threaded server, request log and clock) is shared by the Kraken and
Bybit stubs in this package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

Clock = Callable[[], int]


@dataclass
class ReceivedRequest:
    """One request as the stub saw it (raw query and body) and what it answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int = 0
    reply: Any = None


class LoopbackVenueStub:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (port 0), run as a context manager.

    Subclasses implement :meth:`handle`; calls are serialised, so nonce and replay bookkeeping
    needs no further locking. ``clock`` returns the server time in epoch milliseconds.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or (lambda: int(time.time() * 1000))
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Misbehaviour a test switches on (issue 19 section 7), after the answer is decided:
        # request headers echoed back (in ``X-Echo-*`` headers and an ``echo`` body field, in
        # several encodings), a body padded with filler to ``pad_to`` bytes, and a body dripped
        # out ``drip_bytes`` at a time every ``drip_interval_s``.
        self.echo_headers: tuple[str, ...] = ()
        self.pad_to = 0
        self.drip_interval_s = 0.0
        self.drip_bytes = 1

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stub is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        raise NotImplementedError

    def serve(self, request: ReceivedRequest) -> tuple[int, bytes]:
        with self._lock:
            status, reply = self.handle(request)
            request.status, request.reply = status, reply
            self.requests.append(request)
        if self.echo_headers and isinstance(reply, dict):
            reply = {**reply, "echo": {n: echo_forms(request.headers.get(n, ""))
                                       for n in self.echo_headers}}  # fmt: skip
        body = json.dumps(reply)
        while JSON_U in body:  # every character as a JSON \\uXXXX escape: decodes to the value
            head, _, tail = body.partition(JSON_U)
            value, quote_, rest = tail.partition('"')
            body = head + "".join(f"\\u{ord(c):04x}" for c in value) + quote_ + rest
        return status, body.encode("utf-8")

    def extra_headers(self, request: ReceivedRequest) -> list[tuple[str, str]]:
        """``X-Echo-<name>`` (raw) and ``X-Echo-<name>-B64`` for every echoed request header."""
        out = []
        for name in self.echo_headers:
            value = request.headers.get(name, "")
            out += [(f"X-Echo-{name}", value),
                    (f"X-Echo-{name}-B64", base64.b64encode(value.encode()).decode())]  # fmt: skip
        return out

    def body_chunks(self, payload: bytes) -> Iterator[bytes]:
        """The body as written: padded, then whole or dripped."""
        if self.pad_to > len(payload):
            filler = self.pad_to - len(payload)
            payload += b" " * min(filler, 1 << 16)
            filler -= min(filler, 1 << 16)
            yield from self._drip(payload)
            while filler > 0:
                step = min(filler, 1 << 16)
                filler -= step
                yield b" " * step
            return
        yield from self._drip(payload)

    def _drip(self, payload: bytes) -> Iterator[bytes]:
        if not self.drip_interval_s:
            yield payload
            return
        for at in range(0, len(payload), self.drip_bytes):
            yield payload[at : at + self.drip_bytes]
            time.sleep(self.drip_interval_s)

    def body_length(self, payload: bytes) -> int:
        return max(len(payload), self.pad_to)


JSON_U = "@@json-u@@"


def echo_forms(value: str) -> dict[str, str]:
    """A request header value the way a careless venue might echo it."""
    raw = value.encode()
    user, _, secret = value.partition(" ")
    return {
        "raw": value,
        "url": quote(value, safe=""),
        "b64": base64.b64encode(raw).decode(),
        "b64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "basic": base64.b64encode(f"user:{secret or user}".encode()).decode(),
        "hex": raw.hex(),
        "json_u": JSON_U + value,  # replaced in the serialized body (single backslashes)
        "nested": json.dumps({"authorization": value}),
    }


def _handler_for(stub: LoopbackVenueStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            headers = {name.lower(): value for name, value in self.headers.items()}
            received = ReceivedRequest(self.command, path, query, headers, body)
            status, payload = stub.serve(received)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in stub.extra_headers(received):
                self.send_header(name, value)
            self.send_header("Content-Length", str(stub.body_length(payload)))
            self.end_headers()
            try:
                for chunk in stub.body_chunks(payload):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client stopped reading (a capped relay)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


# --- Binance -------------------------------------------------------------------------------------
BinanceKey = str | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

DEFAULT_RESTRICTIONS: dict[str, Any] = {
    "ipRestrict": False, "createTime": 1698645219000, "enableReading": True,
    "enableSpotAndMarginTrading": True, "enableFutures": True, "enableMargin": False,
    "enableVanillaOptions": False, "enablePortfolioMarginTrading": False,
    "enableWithdrawals": False, "enableInternalTransfer": False,
    "permitsUniversalTransfer": False, "enableFixApiTrade": False, "enableFixReadOnly": False,
}  # fmt: skip
PERMISSION_PATH = "/sapi/v1/account/apiRestrictions"
_ORDER_PATHS = frozenset({"/api/v3/order", "/fapi/v1/order", "/api/v3/order/amend/keepPriority"})


def _error(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


def _split_signature(query: str, body: str) -> tuple[str, str] | None:
    """(signed payload, signature) when ``signature`` is the last parameter sent."""
    head, _, last = (body or query).rpartition("&")
    if not last.startswith("signature=") or not head:
        return None
    return (query + head if body else head), last.removeprefix("signature=")


def verify_binance_signature(key: BinanceKey, payload: bytes, signature: str) -> bool:
    if isinstance(key, str):
        expected = hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())
    try:
        raw = base64.b64decode(unquote(signature), validate=True)
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(raw, payload)
        else:
            key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


class BinanceStub(LoopbackVenueStub):
    """Binance Spot / USD-M / apiRestrictions on loopback.

    Args:
        keys: API key -> HMAC secret (str) or the Ed25519 / RSA public key registered for it.
        clock: server time in epoch ms (default: the real clock); reassign ``stub.clock`` freely.
        permissions: API key -> ``apiRestrictions`` fields overriding ``DEFAULT_RESTRICTIONS``.
    """

    def __init__(
        self,
        keys: Mapping[str, BinanceKey],
        *,
        clock: Clock | None = None,
        permissions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keys: dict[str, BinanceKey] = dict(keys)
        self.permissions: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in (permissions or {}).items()
        }
        self._order_ids = itertools.count(1001)

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        api_key = request.headers.get("x-mbx-apikey", "")
        if not api_key:
            return 401, _error(-2014, "API-key format invalid.")
        key = self.keys.get(api_key)
        if key is None:
            return 401, _error(-2015, "Invalid API-key, IP, or permissions for action.")
        located = _split_signature(request.query, request.body.decode("latin-1"))
        if located is None:
            return 400, _error(-1102, "Mandatory parameter 'signature' was not sent.")
        payload, signature = located
        if not verify_binance_signature(key, payload.encode("latin-1"), signature):
            return 400, _error(-1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload, keep_blank_values=True))
        timestamp, window = params.get("timestamp", ""), params.get("recvWindow", "5000")
        if not timestamp.isdigit() or not window.isdigit():
            return 400, _error(-1102, "Mandatory parameter 'timestamp' was not sent.")
        if int(window) > 60000:
            return 400, _error(-1131, "recvWindow must be less than 60000")
        server = self.clock()
        if not (int(timestamp) < server + 1000 and server - int(timestamp) <= int(window)):
            return 400, _error(-1021, "Timestamp for this request is outside of the recvWindow.")
        return self._route(request, api_key, params, server)

    def _route(
        self, request: ReceivedRequest, api_key: str, params: dict[str, str], server: int
    ) -> tuple[int, Any]:
        method, path = request.method, request.path
        if (method, path) == ("GET", PERMISSION_PATH):
            return 200, DEFAULT_RESTRICTIONS | self.permissions.get(api_key, {})
        if path in _ORDER_PATHS and method in ("POST", "PUT", "DELETE"):
            status = {"POST": "NEW", "PUT": "NEW", "DELETE": "CANCELED"}[method]
            order_id = int(params.get("orderId") or next(self._order_ids))
            return 200, {
                "symbol": params.get("symbol"), "orderId": order_id,
                "clientOrderId": params.get("newClientOrderId", f"stub-{order_id}"),
                "transactTime": server, "status": status, "side": params.get("side"),
                "type": params.get("type"), "origQty": params.get("quantity"),
            }  # fmt: skip
        if method == "GET" and path in ("/api/v3/order", "/fapi/v1/order"):
            return 200, {"symbol": params.get("symbol"), "orderId": params.get("orderId")}
        if method == "GET" and path in ("/api/v3/openOrders", "/fapi/v1/openOrders"):
            return 200, []
        if method == "GET" and path in ("/api/v3/account", "/fapi/v3/account"):
            return 200, {"balances": [], "assets": [], "updateTime": server}
        return 404, _error(-1000, "stub: unknown endpoint")
