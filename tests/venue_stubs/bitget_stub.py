"""A loopback Bitget v2 private REST API that checks signatures, passphrases and timestamps.

Verification follows Bitget's "Signature" documentation: ``ACCESS-SIGN`` must equal
``base64(HMAC_SHA256(secret, timestamp + METHOD + requestPath[?queryString] + body))`` where the
query string and body are exactly as received, the ``ACCESS-TIMESTAMP`` (epoch ms) must be within
30 s of the server clock, the passphrase must match the key's, and ``paptrading: 1`` must be sent
exactly for demo-trading keys.

Errors are Bitget-shaped (``{"code": "40009", "msg": "sign signature error", ...}``): 40001
missing header, 40005 timestamp expired (Bitget: "Invalid ACCESS-TIMESTAMP"), 40006 unknown key,
40009 bad signature, 40012 wrong passphrase, 40099 environment mismatch (the stub's choice).

Placed orders are kept in ``stub.placed`` as ``(body, (size, unit))``: what Bitget's "Place Order"
documentation says it trades (spot market buys: quote; other spot orders and futures: base).

Usage::

    with BitgetStub({"key": BitgetKey("secret", "passphrase")}) as stub:
        stub.authorities["key"] = ["stor", "stow", "wwow"]   # GET /api/v2/spot/account/info
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

MAX_SKEW_MS = 30_000
DEFAULT_AUTHORITIES = ("stor", "stow", "coor", "coow")
_REQUIRED = ("access-key", "access-sign", "access-timestamp", "access-passphrase")


@dataclass(frozen=True)
class BitgetKey:
    secret: str
    passphrase: str
    demo: bool = False  # a demo-trading key: requests must carry ``paptrading: 1``


def bitget_sign(secret: str, timestamp: str, method: str, request_path: str, body: bytes) -> str:
    prehash = f"{timestamp}{method}{request_path}".encode() + body
    return base64.b64encode(hmac.new(secret.encode(), prehash, hashlib.sha256).digest()).decode()


def documented_size(path: str, body: Mapping[str, Any]) -> tuple[Decimal, str]:
    size = Decimal(str(body["size"]))
    spot_market_buy = "/spot/" in path and body["orderType"] == "market" and body["side"] == "buy"
    return size, "quote" if spot_market_buy else "base"


def _error(code: str, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "requestTime": 0, "data": None}


class BitgetStub(LoopbackVenueStub):
    def __init__(
        self,
        keys: Mapping[str, BitgetKey],
        *,
        clock: Clock | None = None,
        authorities: Mapping[str, list[str]] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.authorities: dict[str, list[str]] = dict(authorities or {})
        self._ids = itertools.count(1_001_000_000)
        self.placed: list[tuple[dict[str, Any], tuple[Decimal, str]]] = []

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        headers = request.headers
        if any(not headers.get(name) for name in _REQUIRED):
            return 400, _error("40001", "ACCESS_KEY cannot be empty")
        api_key = headers["access-key"]
        key = self.keys.get(api_key)
        if key is None:
            return 400, _error("40006", "Invalid ACCESS_KEY")
        if (headers.get("paptrading") == "1") != key.demo:
            return 400, _error("40099", "stub: environment does not match the key")
        if not hmac.compare_digest(headers["access-passphrase"], key.passphrase):
            return 400, _error("40012", "apikey/password is incorrect")
        timestamp = headers["access-timestamp"]
        server = self.clock()
        if not timestamp.isdigit() or abs(server - int(timestamp)) > MAX_SKEW_MS:
            return 400, _error("40005", "Invalid ACCESS_TIMESTAMP")
        request_path = request.path + (f"?{request.query}" if request.query else "")
        expected = bitget_sign(key.secret, timestamp, request.method, request_path, request.body)
        if not hmac.compare_digest(expected, headers["access-sign"]):
            return 400, _error("40009", "sign signature error")
        return self._route(request, api_key, server)

    def _route(self, request: ReceivedRequest, api_key: str, server: int) -> tuple[int, Any]:
        path = request.path
        if request.method == "GET":
            if path == "/api/v2/spot/account/info":
                info = {"userId": "1234567890", "inviterId": "", "ips": "127.0.0.1",
                        "authorities": self.authorities.get(api_key, list(DEFAULT_AUTHORITIES)),
                        "parentId": 1234567890, "traderType": "not_trader",
                        "channelCode": "", "channel": "", "regisTime": "1246566789345"}  # fmt: skip
                return 200, {"code": "00000", "msg": "success", "requestTime": server, "data": info}
            if path.startswith("/api/v2/"):
                return 200, {"code": "00000", "msg": "success", "requestTime": server, "data": []}
            return 404, _error("40404", "Request URL NOT FOUND")
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, _error("40002", "stub: body is not JSON")
        if path.endswith("/place-order"):
            missing = [k for k in ("symbol", "side", "orderType", "size") if k not in body]
            if missing:
                return 400, _error("40019", f"Parameter {missing[0]} cannot be empty")
            self.placed.append((body, documented_size(path, body)))
        ack = {"orderId": str(next(self._ids)), "clientOid": body.get("clientOid", "")}
        return 200, {"code": "00000", "msg": "success", "requestTime": server, "data": ack}
