"""A loopback Bybit v5 that checks signatures and the timestamp / recv_window rule.

Verification follows the Bybit v5 guide (reference §5.2): the signature covers
``timestamp + api_key + recv_window + (raw query string | raw JSON body)``; HMAC keys sign to hex,
RSA keys to base64 (PKCS#1 v1.5, SHA-256). Timing rule:
``server_time - recv_window <= timestamp < server_time + 1000``, with an injectable server clock.

Errors are Bybit-shaped, HTTP 200 with ``{"retCode": 10004, "retMsg": "error sign!", ...}``
(10002 timestamp / recv_window, 10003 unknown key, 10004 bad signature).

Placed orders are kept in ``stub.placed`` as ``(body, (qty, unit))``: what Bybit's "Place
Order" documentation says it would trade (UTA account): spot market orders per ``marketUnit``,
whose default is the quote coin for buys ("Market Buy order by value by default") and the base
coin for sells; spot limit and linear/option orders in the base coin; inverse in contracts. A
``marketUnit`` on anything but a spot market order, or with another value, is refused (10001).

Usage::

    with BybitStub({"my-key": "hmac-secret", "rsa-key": rsa_public_key}) as stub:
        stub.permissions["my-key"] = {"permissions": {"Wallet": ["Withdraw"]}}  # query-api
        stub.clock = lambda: 1_658_384_314_791
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

BybitKey = str | rsa.RSAPublicKey
DEFAULT_PERMISSIONS: dict[str, Any] = {
    "ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"], "Wallet": [], "Options": [],
    "Derivatives": [], "CopyTrading": [], "BlockTrade": [], "Exchange": [], "NFT": [],
}  # fmt: skip


def documented_size(body: Mapping[str, Any]) -> tuple[Decimal, str] | None:
    """What Bybit trades for a create-order body, or None for a refused ``marketUnit``."""
    qty, unit = Decimal(str(body["qty"])), body.get("marketUnit")
    spot_market = body.get("category") == "spot" and body.get("orderType") == "Market"
    if unit is not None and (not spot_market or unit not in ("baseCoin", "quoteCoin")):
        return None
    if body.get("category") == "inverse":
        return qty, "contracts"
    if not spot_market:
        return qty, "base"
    unit = unit or ("quoteCoin" if body.get("side") == "Buy" else "baseCoin")
    return qty, "base" if unit == "baseCoin" else "quote"


def verify_bybit_signature(key: BybitKey, prehash: bytes, signature: str) -> bool:
    if isinstance(key, str):
        expected = hmac.new(key.encode(), prehash, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())
    try:
        key.verify(
            base64.b64decode(signature, validate=True), prehash, padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


class BybitStub(LoopbackVenueStub):
    """Bybit v5 on loopback.

    Args:
        keys: API key -> HMAC secret (str) or the RSA public key registered for it.
        clock: server time in epoch ms (default: the real clock); reassign ``stub.clock`` freely.
        permissions: API key -> fields merged into the ``/v5/user/query-api`` result (for
            example ``{"readOnly": 1}`` or ``{"permissions": {...}}``).
    """

    def __init__(
        self,
        keys: Mapping[str, BybitKey],
        *,
        clock: Clock | None = None,
        permissions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keys: dict[str, BybitKey] = dict(keys)
        self.permissions: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in (permissions or {}).items()
        }
        self._ids = itertools.count(1)
        self.placed: list[tuple[dict[str, Any], tuple[Decimal, str]]] = []

    def _reply(self, code: int, msg: str, result: Any = None) -> dict[str, Any]:
        return {"retCode": code, "retMsg": msg, "result": result if result is not None else {},
                "retExtInfo": {}, "time": self.clock()}  # fmt: skip

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        headers = request.headers
        api_key = headers.get("x-bapi-api-key", "")
        key = self.keys.get(api_key)
        if key is None:
            return 200, self._reply(10003, "API key is invalid.")
        timestamp = headers.get("x-bapi-timestamp", "")
        window = headers.get("x-bapi-recv-window", "5000")
        if not timestamp.isdigit() or not window.isdigit():
            return 200, self._reply(10001, "params error: timestamp or recv_window")
        server = self.clock()
        if not server - int(window) <= int(timestamp) < server + 1000:
            return 200, self._reply(
                10002, "invalid request, please check your server timestamp or recv_window param"
            )
        signed = request.query.encode("latin-1") if request.method == "GET" else request.body
        prehash = f"{timestamp}{api_key}{window}".encode() + signed
        if not verify_bybit_signature(key, prehash, headers.get("x-bapi-sign", "")):
            return 200, self._reply(10004, "error sign!")
        return self._route(request, api_key)

    def _route(self, request: ReceivedRequest, api_key: str) -> tuple[int, Any]:
        route = (request.method, request.path)
        if route == ("GET", "/v5/user/query-api"):
            result = {
                "id": "1", "note": "stub", "apiKey": api_key, "readOnly": 0, "secret": "",
                "permissions": DEFAULT_PERMISSIONS, "ips": ["*"], "type": 1, "deadlineDay": 88,
                "expiredAt": "2023-05-15T03:13:24Z", "createdAt": "2023-02-15T03:13:24Z",
                "unified": 0, "uta": 1, "userID": 1, "inviterID": 0, "vipLevel": "No VIP",
                "mktMakerLevel": "0", "affiliateID": 0,
            } | self.permissions.get(api_key, {})  # fmt: skip
            return 200, self._reply(0, "", result)
        if request.method == "POST" and request.path in (
            "/v5/order/create",
            "/v5/order/amend",
            "/v5/order/cancel",
        ):
            try:
                body = json.loads(request.body)
            except ValueError:
                return 200, self._reply(10001, "params error: body is not JSON")
            if request.path == "/v5/order/create":
                reading = documented_size(body)
                if reading is None:
                    return 200, self._reply(10001, "params error: marketUnit")
                self.placed.append((body, reading))
            order_id = body.get("orderId") or f"stub-{next(self._ids)}"
            return 200, self._reply(
                0, "OK", {"orderId": order_id, "orderLinkId": body.get("orderLinkId", "")}
            )
        if route == ("GET", "/v5/order/realtime"):
            return 200, self._reply(0, "OK", {"list": [], "nextPageCursor": "", "category": ""})
        if route == ("GET", "/v5/account/wallet-balance"):
            return 200, self._reply(0, "OK", {"list": []})
        return 404, self._reply(10001, "stub: unknown endpoint")
