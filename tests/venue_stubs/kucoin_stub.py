"""A loopback KuCoin private API (HF spot) that checks signatures, passphrases and timestamps.

Verification follows KuCoin's "Authentication": ``KC-API-SIGN`` must equal
``base64(HMAC_SHA256(secret, timestamp + METHOD + path[?query] + body))`` over what was
received; with ``KC-API-KEY-VERSION: 2`` the ``KC-API-PASSPHRASE`` must equal
``base64(HMAC_SHA256(secret, passphrase))`` (a plain passphrase is refused); the timestamp must be
within 5 s of the server clock. Errors are KuCoin-shaped (HTTP 401, ``{"code": "400005",
"msg": "Invalid KC-API-SIGN"}``; 400002 timestamp, 400003 key, 400004 passphrase).

Usage::

    with KucoinStub({"key": ("secret", "passphrase")}) as stub:
        stub.permissions["key"] = "General,Spot,Withdrawal"   # GET /api/v1/user/api-key
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Mapping
from typing import Any

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

MAX_SKEW_MS = 5_000
DEFAULT_PERMISSION = "General,Spot"


def b64_hmac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _error(code: str, msg: str) -> dict[str, str]:
    return {"code": code, "msg": msg}


def _ok(data: Any) -> dict[str, Any]:
    return {"code": "200000", "data": data}


class KucoinStub(LoopbackVenueStub):
    """``keys``: API key -> (secret, passphrase); ``permissions``: API key -> permission list."""

    def __init__(self, keys: Mapping[str, tuple[str, str]], *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.permissions: dict[str, str] = {}
        self._ids = itertools.count(0x5BD6E9286D99522A52E458DE)
        self.placed: list[dict[str, Any]] = []

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        headers = request.headers
        for name in ("kc-api-key", "kc-api-sign", "kc-api-timestamp", "kc-api-passphrase"):
            if not headers.get(name):
                return 401, _error("400001", f"Please check the header {name.upper()}")
        api_key = headers["kc-api-key"]
        if api_key not in self.keys:
            return 401, _error("400003", "KC-API-KEY not exists")
        secret, passphrase = self.keys[api_key]
        ts, server = headers["kc-api-timestamp"], self.clock()
        if not ts.isdigit() or abs(server - int(ts)) > MAX_SKEW_MS:
            return 401, _error("400002", "KC-API-TIMESTAMP Invalid")
        expected_phrase = passphrase
        if headers.get("kc-api-key-version") == "2":
            expected_phrase = b64_hmac(secret, passphrase.encode())
        if not hmac.compare_digest(headers["kc-api-passphrase"], expected_phrase):
            return 401, _error("400004", "KC-API-PASSPHRASE error")
        endpoint = request.path + (f"?{request.query}" if request.query else "")
        expected = b64_hmac(secret, f"{ts}{request.method}{endpoint}".encode() + request.body)
        if not hmac.compare_digest(headers["kc-api-sign"], expected):
            return 401, _error("400005", "Invalid KC-API-SIGN")
        return self._route(request, api_key)

    def _route(self, request: ReceivedRequest, api_key: str) -> tuple[int, Any]:
        method, path = request.method, request.path
        if method == "GET" and path == "/api/v1/user/api-key":
            return 200, _ok({"remark": "stub-key", "apiKey": api_key, "apiVersion": 3,
                             "permission": self.permissions.get(api_key, DEFAULT_PERMISSION),
                             "ipWhitelist": "", "createdAt": 1, "uid": 1, "isMaster": True})  # fmt: skip
        if method == "GET" and path == "/api/v1/accounts":
            return 200, _ok([])
        if method == "GET" and path.startswith("/api/v1/hf/orders/active"):
            return 200, _ok([])
        if method == "POST" and path == "/api/v1/hf/orders":
            body = json.loads(request.body)
            if ("size" in body) == ("funds" in body):
                return 400, _error("400100", "size or funds (exactly one) is required")
            self.placed.append(body)
            return 200, _ok({"orderId": f"{next(self._ids):x}",
                             "clientOid": body.get("clientOid", "")})  # fmt: skip
        if method == "POST" and path == "/api/v1/hf/orders/alter":
            return 200, _ok({"newOrderId": f"{next(self._ids):x}"})
        if path.startswith("/api/v1/hf/orders/") and method in ("GET", "DELETE"):
            return 200, _ok({"orderId": path.rsplit("/", 1)[1]})
        return 404, _error("404000", "stub: unknown endpoint")
