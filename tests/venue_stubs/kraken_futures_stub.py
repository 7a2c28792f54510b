"""A loopback Kraken Futures REST v3 private API that checks ``Authent`` and nonces.

Verification follows Kraken's documentation (docs.kraken.com/api/docs/guides/futures-rest):
``Authent`` must equal ``base64(HMAC_SHA512(base64decode(secret), SHA256(postData + nonce +
endpointPath)))`` where ``postData`` is the URL-encoded query string (GET) or form body (POST)
exactly as received and ``endpointPath`` is the path without ``/derivatives``. This stub is
stricter than Kraken on one point: it *requires* the ``Nonce`` header and requires it to be
strictly greater than the last accepted one for the key (Kraken makes it optional and tolerates
brief reordering) — the vault promises always to send one.

Answers are Kraken-shaped: ``{"result": "success", "serverTime": ...}`` plus the endpoint's
fields, or ``{"result": "error", "error": "authenticationError"}`` (``nonceBelowThreshold`` /
``nonceDuplicate`` for a stale nonce, as Kraken names them). Every path outside the private v3
trading set (withdrawal, transfer, ...) answers 404: the vault must never reach them.

Usage::

    with KrakenFuturesStub({"pub-key": "base64-secret"}) as stub:
        stub.nonces["pub-key"]   # last accepted nonce
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

V3 = "/derivatives/api/v3/"
KNOWN = {
    ("POST", "sendorder"), ("POST", "editorder"), ("POST", "cancelorder"),
    ("POST", "orders/status"), ("GET", "openorders"), ("GET", "accounts"),
}  # fmt: skip


def futures_authent(secret_b64: str, post_data: str, nonce: str, path: str) -> str:
    digest = hashlib.sha256((post_data + nonce + path.removeprefix("/derivatives")).encode())
    mac = hmac.new(base64.b64decode(secret_b64), digest.digest(), hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


class KrakenFuturesStub(LoopbackVenueStub):
    """Kraken Futures private v3 endpoints on loopback (keys: API key -> base64 secret)."""

    def __init__(self, keys: Mapping[str, str], *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.nonces: dict[str, int] = {}
        self._ids = itertools.count(1)

    def _answer(self, **fields: Any) -> dict[str, Any]:
        stamp = dt.datetime.fromtimestamp(self.clock() / 1000, dt.UTC)
        return {"result": fields.pop("result", "success"),
                "serverTime": stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", **fields}  # fmt: skip

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        name = request.path.removeprefix(V3)
        if not request.path.startswith(V3) or (request.method, name) not in KNOWN:
            return 404, self._answer(result="error", error="notFound")
        api_key = request.headers.get("apikey", "")
        secret = self.keys.get(api_key)
        nonce = request.headers.get("nonce", "")
        post_data = request.query if request.method == "GET" else request.body.decode("latin-1")
        if secret is None or not nonce.isdigit():
            return 401, self._answer(result="error", error="authenticationError")
        expected = futures_authent(secret, post_data, nonce, request.path)
        if not hmac.compare_digest(expected, request.headers.get("authent", "")):
            return 401, self._answer(result="error", error="authenticationError")
        last = self.nonces.get(api_key, 0)
        if int(nonce) <= last:
            reason = "nonceDuplicate" if int(nonce) == last else "nonceBelowThreshold"
            return 200, self._answer(result="error", error=reason)
        self.nonces[api_key] = int(nonce)
        return 200, self._result(name, dict(parse_qsl(post_data, keep_blank_values=True)))

    def _result(self, name: str, params: dict[str, str]) -> dict[str, Any]:
        if name == "sendorder":
            order_id = f"0000stub-{next(self._ids):04d}-4000-8000-000000000000"
            return self._answer(sendStatus={
                "order_id": order_id, "status": "placed", "cliOrdId": params.get("cliOrdId"),
                "receivedTime": self._answer()["serverTime"]})  # fmt: skip
        if name == "editorder":
            return self._answer(editStatus={"status": "edited",
                                            "orderId": params.get("orderId")})  # fmt: skip
        if name == "cancelorder":
            return self._answer(cancelStatus={"status": "cancelled",
                                              "order_id": params.get("order_id")})  # fmt: skip
        if name == "orders/status":
            return self._answer(orders=[])
        if name == "openorders":
            return self._answer(openOrders=[])
        return self._answer(accounts={"flex": {"type": "multiCollateralMarginAccount"}})
