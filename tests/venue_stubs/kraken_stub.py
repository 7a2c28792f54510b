"""A loopback Kraken Spot REST private API that checks signatures, nonces and order deadlines.

Verification follows Kraken's documentation (reference §3.1): ``API-Sign`` must equal
``base64(HMAC_SHA512(base64decode(secret), path || SHA256(nonce + postdata)))`` over the exact
body received, and the nonce must be strictly greater than the last accepted one for that key
(nonce window 0). A nonce is consumed only by an authenticated request, as at Kraken.
``deadline`` (AddOrder / AmendOrder) must not have passed on the server clock and may be at most
60 s ahead.

Errors are Kraken-shaped, HTTP 200 with ``{"error": ["EAPI:Invalid key"], "result": {}}``
(``EAPI:Invalid key``, ``EAPI:Invalid signature``, ``EAPI:Invalid nonce``). For an elapsed or
out-of-range deadline the stub answers ``EGeneral:Invalid arguments:deadline`` (its own choice:
the reference does not record Kraken's exact text).

Usage::

    with KrakenStub({"pub-key": "base64-secret"}) as stub:
        stub.permissions["pub-key"] = ["query-funds", "withdraw-funds"]  # GetApiKeyInfo
        stub.clock = lambda: 1_616_492_376_594
        stub.nonces["pub-key"]   # last accepted nonce
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

PRIVATE = "/0/private/"
DEFAULT_PERMISSIONS = ("query-funds", "query-open-trades", "query-closed-trades", "modify-trades",
                       "close-trades")  # fmt: skip


def _error(*errors: str) -> dict[str, Any]:
    return {"error": list(errors), "result": {}}


def kraken_signature(secret_b64: str, path: str, nonce: str, postdata: bytes) -> str:
    digest = hashlib.sha256(nonce.encode("ascii") + postdata).digest()
    mac = hmac.new(base64.b64decode(secret_b64), path.encode("ascii") + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


class KrakenStub(LoopbackVenueStub):
    """Kraken Spot private endpoints on loopback.

    Args:
        keys: API key -> base64 private key (the secret Kraken shows once).
        clock: server time in epoch ms (default: the real clock); reassign ``stub.clock`` freely.
        permissions: API key -> GetApiKeyInfo ``permissions`` list (default: trading, no funds).
    """

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        clock: Clock | None = None,
        permissions: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.permissions: dict[str, list[str]] = {
            k: list(v) for k, v in (permissions or {}).items()
        }
        self.nonces: dict[str, int] = {}
        self._ids = itertools.count(1)

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        if request.method != "POST" or not request.path.startswith(PRIVATE):
            return 404, _error("EGeneral:Unknown method")
        api_key = request.headers.get("api-key", "")
        secret = self.keys.get(api_key)
        if secret is None:
            return 200, _error("EAPI:Invalid key")
        params = dict(parse_qsl(request.body.decode("latin-1"), keep_blank_values=True))
        nonce = params.get("nonce", "")
        if not nonce.isdigit():
            return 200, _error("EAPI:Invalid nonce")
        expected = kraken_signature(secret, request.path, nonce, request.body)
        if not hmac.compare_digest(expected, request.headers.get("api-sign", "")):
            return 200, _error("EAPI:Invalid signature")
        if int(nonce) <= self.nonces.get(api_key, 0):
            return 200, _error("EAPI:Invalid nonce")
        self.nonces[api_key] = int(nonce)
        if "deadline" in params and not self._deadline_ok(params["deadline"]):
            return 200, _error("EGeneral:Invalid arguments:deadline")
        return 200, {"error": [], "result": self._result(request.path, api_key, params)}

    def _deadline_ok(self, text: str) -> bool:
        try:
            deadline = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return False
        deadline_ms = int(deadline.timestamp() * 1000)
        now = self.clock()
        return now < deadline_ms <= now + 60_000

    def _result(self, path: str, api_key: str, params: dict[str, str]) -> Any:
        method = path.removeprefix(PRIVATE)
        if method == "AddOrder":
            txid = f"OSTUB{next(self._ids):01d}-STUBS-{params.get('pair', '')[:6]}"
            order = f"{params.get('type')} {params.get('volume')} {params.get('pair')} @ " + (
                f"{params.get('ordertype')} {params.get('price', '')}".strip()
            )
            return {"descr": {"order": order}, "txid": [txid]}
        if method == "GetApiKeyInfo":
            return {
                "apiKeyName": "stub-key", "apiKey": api_key, "nonce": str(self.nonces[api_key]),
                "nonceWindow": 0,
                "permissions": self.permissions.get(api_key, list(DEFAULT_PERMISSIONS)),
                "iban": "AA00 STUB STUB STUB", "validUntil": "0", "queryFrom": "0",
                "queryTo": "0", "createdTime": "1772542900", "modifiedTime": "1772543095",
                "ipAllowlist": [], "lastUsed": str(self.clock() // 1000),
            }  # fmt: skip
        results: dict[str, Any] = {
            "CancelOrder": {"count": 1}, "AmendOrder": {"amend_id": "TSTUB-AMEND-000001"},
            "QueryOrders": {params.get("txid", ""): {"status": "open"}},
            "OpenOrders": {"open": {}}, "Balance": {"ZUSD": "0.0000"},
        }  # fmt: skip
        return results.get(method, {})
