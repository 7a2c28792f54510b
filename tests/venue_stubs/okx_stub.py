"""A loopback OKX v5 REST private API that checks signatures, passphrases and timestamps.

Verification follows OKX's documentation (reference §6.1): ``OK-ACCESS-SIGN`` must equal
``base64(HMAC_SHA256(secret, timestamp + METHOD + requestPath + body))`` where requestPath
carries the query string exactly as received and body is the exact bytes received. The
timestamp (ISO-8601 UTC with milliseconds) must be within 30 s of the server clock, the
passphrase must match the one registered for the key, and ``x-simulated-trading: 1`` must be
sent exactly for demo-trading keys.

Errors are OKX-shaped, HTTP 401 with ``{"code": "50113", "msg": "Invalid Sign", "data": []}``
(50101 environment mismatch, 50102 timestamp expired, 50103-50107 missing header, 50105 wrong
passphrase, 50111 unknown key, 50112 malformed timestamp, 50113 bad signature). OKX does not
publish the answer to a request past its ``expTime`` header; this stub answers HTTP 200
``{"code": "1", "msg": "stub: request past expTime", "data": []}`` (its own choice).

Placed orders are kept in ``stub.placed`` as ``(body, (size, unit))``: the size OKX's "Place
order" documentation says it would trade, defaults included (``sz`` in base currency for limit
orders; SPOT market orders per ``tgtCcy``, default ``quote_ccy`` for buys and ``base_ccy`` for
sells; MARGIN market buys quote, sells base; FUTURES/SWAP/OPTION contracts). A ``tgtCcy`` that is
not ``base_ccy``/``quote_ccy`` is refused (51000 "Parameter tgtCcy error").

Usage::

    with OkxStub({"key": OkxKey("secret", "passphrase", simulated=True)}) as stub:
        stub.permissions["key"] = "read_only,withdraw,trade"   # GET /api/v5/account/config
        stub.clock = lambda: 1_607_418_537_715                  # server time, epoch ms
        stub.requests[-1].status, stub.requests[-1].reply
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

MAX_SKEW_MS = 30_000
DEFAULT_PERM = "read_only,trade"
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_REQUIRED_HEADERS = (("ok-access-key", "50103"), ("ok-access-passphrase", "50104"),
                     ("ok-access-sign", "50106"), ("ok-access-timestamp", "50107"))  # fmt: skip


@dataclass(frozen=True)
class OkxKey:
    secret: str
    passphrase: str
    simulated: bool = False  # a demo-trading key: requests must carry x-simulated-trading: 1


def _error(code: str, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": []}


def okx_sign(secret: str, timestamp: str, method: str, request_path: str, body: bytes) -> str:
    prehash = f"{timestamp}{method}{request_path}".encode() + body
    return base64.b64encode(hmac.new(secret.encode(), prehash, hashlib.sha256).digest()).decode()


def documented_size(body: Mapping[str, Any]) -> tuple[Decimal, str]:
    """What OKX trades for a place-order body: ``(sz, "base" | "quote" | "contracts")``."""
    size, market = Decimal(str(body["sz"])), body["ordType"] == "market"
    if str(body["instId"]).count("-") > 1:
        return size, "contracts"
    if not market:
        return size, "base"
    if body["tdMode"] in ("cash", "spot_isolated"):  # SPOT: tgtCcy, or its default
        default = "quote_ccy" if body["side"] == "buy" else "base_ccy"
        return size, "base" if body.get("tgtCcy", default) == "base_ccy" else "quote"
    return size, "quote" if body["side"] == "buy" else "base"  # MARGIN market orders


def parse_timestamp(text: str) -> int | None:
    if not _TS.fullmatch(text):
        return None
    moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class OkxStub(LoopbackVenueStub):
    """OKX v5 private endpoints on loopback.

    Args:
        keys: API key -> :class:`OkxKey` (secret, passphrase, demo flag).
        clock: server time in epoch ms (default: the real clock); reassign ``stub.clock`` freely.
        permissions: API key -> ``perm`` string of ``/api/v5/account/config``.
    """

    def __init__(
        self,
        keys: Mapping[str, OkxKey],
        *,
        clock: Clock | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.permissions: dict[str, str] = dict(permissions or {})
        self._ids = itertools.count(312269865356374016)
        self.placed: list[tuple[dict[str, Any], tuple[Decimal, str]]] = []

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        headers = request.headers
        for name, code in _REQUIRED_HEADERS:
            if not headers.get(name):
                return 401, _error(code, f'Request header "{name.upper()}" cannot be empty')
        api_key = headers["ok-access-key"]
        key = self.keys.get(api_key)
        if key is None:
            return 401, _error("50111", "Invalid OK-ACCESS-KEY")
        if (headers.get("x-simulated-trading") == "1") != key.simulated:
            return 401, _error("50101", "APIKey does not match current environment")
        if not hmac.compare_digest(headers["ok-access-passphrase"], key.passphrase):
            return 401, _error("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect')
        timestamp = headers["ok-access-timestamp"]
        sent_ms = parse_timestamp(timestamp)
        if sent_ms is None:
            return 401, _error("50112", "Invalid OK-ACCESS-TIMESTAMP")
        server = self.clock()
        if abs(server - sent_ms) > MAX_SKEW_MS:
            return 401, _error("50102", "Timestamp request expired")
        request_path = request.path + (f"?{request.query}" if request.query else "")
        expected = okx_sign(key.secret, timestamp, request.method, request_path, request.body)
        if not hmac.compare_digest(expected, headers["ok-access-sign"]):
            return 401, _error("50113", "Invalid Sign")
        exp_time = headers.get("exptime")
        if exp_time is not None and (not exp_time.isdigit() or server > int(exp_time)):
            return 200, _error("1", "stub: request past expTime")
        return self._route(request, api_key, server)

    def _route(self, request: ReceivedRequest, api_key: str, server: int) -> tuple[int, Any]:
        method, path = request.method, request.path.removeprefix("/api/v5")
        if method == "GET":
            params = dict(parse_qsl(request.query, keep_blank_values=True))
            data: dict[str, list[Any]] = {
                "/account/config": [{
                    "uid": "44705892343619584", "mainUid": "44705892343619584", "acctLv": "2",
                    "posMode": "net_mode", "perm": self.permissions.get(api_key, DEFAULT_PERM),
                    "ip": "", "label": "stub-key"}],
                "/account/balance": [{"totalEq": "0", "details": [], "uTime": str(server)}],
                "/trade/orders-pending": [],
                "/trade/order": [{"instId": params.get("instId"), "ordId": params.get("ordId"),
                                  "clOrdId": params.get("clOrdId", ""), "state": "live"}],
            }  # fmt: skip
            if path in data:
                return 200, {"code": "0", "msg": "", "data": data[path]}
            return 404, _error("50000", "stub: unknown endpoint")
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, _error("50002", "Invalid JSON")
        if path == "/trade/order":
            missing = [k for k in ("instId", "tdMode", "side", "ordType", "sz") if k not in body]
            if missing:
                return 200, _error("50014", f"Parameter {missing[0]} cannot be empty")
            if body.get("tgtCcy", "base_ccy") not in ("base_ccy", "quote_ccy"):
                return 200, _error("51000", "Parameter tgtCcy error")
            self.placed.append((body, documented_size(body)))
            ack = {"ordId": str(next(self._ids)), "clOrdId": body.get("clOrdId", ""), "tag": "",
                   "ts": str(server), "sCode": "0", "sMsg": "Order placed"}  # fmt: skip
            return 200, {"code": "0", "msg": "", "data": [ack]}
        if path in ("/trade/cancel-order", "/trade/amend-order"):
            ack = {"ordId": body.get("ordId", ""), "clOrdId": body.get("clOrdId", ""),
                   "ts": str(server), "sCode": "0", "sMsg": ""}  # fmt: skip
            return 200, {"code": "0", "msg": "", "data": [ack]}
        return 404, _error("50000", "stub: unknown endpoint")
