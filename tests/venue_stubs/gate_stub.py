"""A loopback Gate.io API v4 private API that checks signatures and timestamps.

Verification follows Gate's "APIv4 signed request requirements": ``SIGN`` must equal
``hex(HMAC_SHA512(secret, METHOD\\n/api/v4/path\\nquery\\nhex(SHA512(body))\\nTimestamp))`` over
the path, raw query and body exactly as received; ``Timestamp`` (epoch seconds) must be within
60 s of the server clock. A place past its ``X-Gate-Exptime`` (ms) is refused.

Errors are Gate-shaped: HTTP 401 ``{"label": "INVALID_SIGNATURE", "message": "..."}``
(``MISSING_REQUIRED_HEADER``, ``INVALID_KEY``, ``REQUEST_EXPIRED``), 400 ``INVALID_PARAM_VALUE``.
Placed orders are kept in ``stub.placed`` as ``(body, (amount, unit))``: what Gate's "Create an
order" says ``amount`` means (limit: base; market buy: quote; market sell: base).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

MAX_SKEW_S = 60


def gate_sign(secret: str, method: str, path: str, query: str, body: bytes, ts: str) -> str:
    payload = f"{method}\n{path}\n{query}\n{hashlib.sha512(body).hexdigest()}\n{ts}"
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()


def documented_amount(body: Mapping[str, Any]) -> tuple[Decimal, str]:
    amount = Decimal(str(body["amount"]))
    if body.get("type", "limit") == "market" and body["side"] == "buy":
        return amount, "quote"
    return amount, "base"


def _error(label: str, message: str) -> dict[str, str]:
    return {"label": label, "message": message}


class GateStub(LoopbackVenueStub):
    """Gate v4 spot endpoints on loopback. ``keys``: API key -> secret."""

    def __init__(self, keys: Mapping[str, str], *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self._ids = itertools.count(1_852_454_420)
        self.placed: list[tuple[dict[str, Any], tuple[Decimal, str]]] = []

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        headers = request.headers
        for name in ("key", "timestamp", "sign"):
            if not headers.get(name):
                return 401, _error("MISSING_REQUIRED_HEADER", f"missing header {name.upper()}")
        secret = self.keys.get(headers["key"])
        if secret is None:
            return 401, _error("INVALID_KEY", "Invalid key provided")
        ts, server = headers["timestamp"], self.clock()
        if not ts.isdigit() or abs(server // 1000 - int(ts)) > MAX_SKEW_S:
            return 401, _error("REQUEST_EXPIRED", "gap between request Timestamp and server")
        expected = gate_sign(secret, request.method, request.path, request.query, request.body, ts)
        if not hmac.compare_digest(expected, headers["sign"]):
            return 401, _error("INVALID_SIGNATURE", "Signature mismatch")
        exptime = headers.get("x-gate-exptime")
        if exptime is not None and (not exptime.isdigit() or server > int(exptime)):
            return 400, _error("REQUEST_EXPIRED", "request past X-Gate-Exptime")
        return self._route(request, server)

    def _route(self, request: ReceivedRequest, server: int) -> tuple[int, Any]:
        method, path = request.method, request.path.removeprefix("/api/v4/spot/")
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        if method == "GET" and path == "accounts":
            return 200, [{"currency": "USDT", "available": "0", "locked": "0"}]
        if method == "GET" and path in ("open_orders", "orders"):
            return 200, []
        if method == "POST" and path == "orders":
            body = json.loads(request.body)
            if body.get("type") == "market" and body.get("time_in_force") not in ("ioc", "fok"):
                return 400, _error("INVALID_PARAM_VALUE", "market orders need ioc or fok")
            self.placed.append((body, documented_amount(body)))
            order = body | {"id": str(next(self._ids)), "status": "open",
                            "create_time_ms": server}  # fmt: skip
            return 201, order
        if path.startswith("orders/") and method in ("GET", "DELETE", "PATCH"):
            if "currency_pair" not in params:
                return 400, _error("MISSING_REQUIRED_PARAM", "currency_pair")
            status = "cancelled" if method == "DELETE" else "open"
            return 200, {"id": path.removeprefix("orders/"), "status": status,
                         "currency_pair": params["currency_pair"]}  # fmt: skip
        return 404, _error("NOT_FOUND", "stub: unknown endpoint")
