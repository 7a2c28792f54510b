"""A loopback Deribit v2 REST API that checks ``deri-hmac-sha256`` signatures, timestamps, nonces.

Verification follows Deribit's "Authentication" article (docs.deribit.com/articles/authentication,
"Deribit Signature Credentials (HTTP REST)"): the ``Authorization`` header is
``deri-hmac-sha256 id=ClientId,ts=Timestamp,sig=Signature,nonce=Nonce`` and ``sig`` must equal
``hex(HMAC_SHA256(secret, ts + "\\n" + nonce + "\\n" + METHOD + "\\n" + URI + "\\n" + body + "\\n"))``
where URI is the path and raw query exactly as received. The timestamp "is valid for 60 seconds
since generation": older ones are refused (and, stricter than the article, so are timestamps
more than 60 s ahead of the stub's clock). Nonces are "single usage": a nonce seen before for the
key is refused.

``public/auth`` with ``grant_type=client_signature`` (the vault's permission query) is checked
the same way over ``ts + "\\n" + nonce + "\\n" + data`` and answers the key's ``scope`` string
(``stub.scopes[client_id]``; set it to one holding ``wallet:read_write`` to model a key that can
withdraw, or to ``"connection mainaccount"``, the docs' own example answer, which names no access
scope). Any other grant type is refused: a ``client_credentials`` request would carry the secret.

Answers are JSON-RPC shaped: ``{"jsonrpc": "2.0", "result": ..., "usIn", "usOut", "usDiff",
"testnet"}`` or HTTP 400 ``{"jsonrpc": "2.0", "error": {"code", "message"}}``: 13004
``invalid_credentials`` (unknown key, bad signature, stale timestamp, reused nonce; the reason is
in ``error.data.reason``, the stub's choice), 13009 ``unauthorized`` (no or malformed
Authorization), 13021 ``forbidden`` for every fund-moving or key-management method (withdraw,
transfers, API keys, deposit addresses, sub-accounts: ``stub.refused`` records the attempt, the
vault must never reach them), -32601 ``Method not found`` for anything else.

Placed orders are kept in ``stub.placed`` as ``(method, params)``; ``contracts`` is the size.

Usage::

    with DeribitStub({"client-id": "client-secret"}) as stub:
        stub.scopes["client-id"] = "connection mainaccount trade:read_write wallet:read_write"
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

MAX_AGE_MS = 60_000
PRIVATE, AUTH = "/api/v2/private/", "/api/v2/public/auth"
DEFAULT_SCOPE = "account:read trade:read_write wallet:read block_trade:none connection mainaccount"
TRADING = frozenset({
    "buy", "sell", "edit", "cancel", "cancel_all_by_instrument", "get_order_state",
    "get_open_orders", "get_open_orders_by_instrument", "get_account_summary", "get_positions",
    "get_user_trades_by_instrument",
})  # fmt: skip
FUND_MOVING = re.compile(r"withdraw|transfer|api_key|deposit|address|subaccount|custody")
_AUTH = re.compile(r"deri-hmac-sha256\s+(.+)", re.IGNORECASE)


def deribit_sign(secret: str, timestamp: str, nonce: str, data: str) -> str:
    """``hex(HMAC_SHA256(secret, ts\\nnonce\\ndata))`` (data = RequestData for HTTP REST)."""
    message = f"{timestamp}\n{nonce}\n{data}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def request_data(method: str, uri: str, body: bytes) -> str:
    return f"{method.upper()}\n{uri}\n{body.decode('utf-8')}\n"


def parse_authorization(value: str) -> dict[str, str] | None:
    """The fields of a ``deri-hmac-sha256`` header (spaces after commas allowed, as documented)."""
    match = _AUTH.fullmatch(value.strip())
    if match is None:
        return None
    fields = dict(part.strip().partition("=")[::2] for part in match.group(1).split(","))
    return fields if {"id", "ts", "sig", "nonce"} <= fields.keys() else None


class DeribitStub(LoopbackVenueStub):
    """Deribit private REST methods and ``public/auth`` on loopback (client id -> secret)."""

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        clock: Clock | None = None,
        scopes: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.scopes: dict[str, str] = dict(scopes or {})
        self.nonces: dict[str, set[str]] = {}
        self.placed: list[tuple[str, dict[str, str]]] = []
        self.refused: list[str] = []
        self._ids = itertools.count(3_000_000_000)

    def _ok(self, result: Any) -> tuple[int, Any]:
        now_us = self.clock() * 1000
        return 200, {"jsonrpc": "2.0", "result": result, "usIn": now_us, "usOut": now_us + 150,
                     "usDiff": 150, "testnet": False}  # fmt: skip

    @staticmethod
    def _error(code: int, message: str, reason: str = "") -> tuple[int, Any]:
        error: dict[str, Any] = {"code": code, "message": message}
        if reason:
            error["data"] = {"reason": reason}
        return 400, {"jsonrpc": "2.0", "error": error, "testnet": False}

    def _check(self, client_id: str, ts: str, nonce: str, sig: str, data: str) -> str:
        """Why the signed fields are refused ("" when they are accepted; the nonce is then used)."""
        secret = self.keys.get(client_id)
        if secret is None:
            return "unknown client id"
        if not ts.isdigit() or not nonce:
            return "malformed timestamp or nonce"
        age = self.clock() - int(ts)
        if age > MAX_AGE_MS or age < -MAX_AGE_MS:
            return "stale timestamp"
        if not hmac.compare_digest(deribit_sign(secret, ts, nonce, data), sig):
            return "bad signature"
        seen = self.nonces.setdefault(client_id, set())
        if nonce in seen:
            return "reused nonce"
        seen.add(nonce)
        return ""

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        if request.path == AUTH:
            return self._auth(request)
        if not request.path.startswith(PRIVATE):
            return self._error(-32601, "Method not found")
        fields = parse_authorization(request.headers.get("authorization", ""))
        if fields is None:
            return self._error(13009, "unauthorized")
        uri = request.path + (f"?{request.query}" if request.query else "")
        data = request_data(request.method, uri, request.body)
        why = self._check(fields["id"], fields["ts"], fields["nonce"], fields["sig"], data)
        if why:
            return self._error(13004, "invalid_credentials", why)
        name = request.path.removeprefix(PRIVATE)
        if FUND_MOVING.search(name.lower()):
            self.refused.append(name)
            return self._error(13021, "forbidden", "stub: fund-moving method")
        if name not in TRADING:
            return self._error(-32601, "Method not found")
        return self._ok(self._result(name, dict(parse_qsl(request.query, keep_blank_values=True))))

    def _auth(self, request: ReceivedRequest) -> tuple[int, Any]:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        if params.get("grant_type") != "client_signature" or "client_secret" in params:
            return self._error(13004, "invalid_credentials", "stub: only client_signature")
        client_id = params.get("client_id", "")
        why = self._check(client_id, params.get("timestamp", ""), params.get("nonce", ""),
                          params.get("signature", ""), params.get("data", ""))  # fmt: skip
        if why:
            return self._error(13004, "invalid_credentials", why)
        token = f"{self.clock()}.stubtok{next(self._ids)}"
        return self._ok({"access_token": token, "expires_in": 900, "refresh_token": token + "r",
                         "scope": self.scopes.get(client_id, DEFAULT_SCOPE),
                         "enabled_features": [], "token_type": "bearer"})  # fmt: skip

    def _result(self, name: str, params: dict[str, str]) -> Any:
        if name in ("buy", "sell"):
            self.placed.append((name, params))
            order = {"order_id": f"ETH-{next(self._ids)}", "order_state": "open",
                     "instrument_name": params.get("instrument_name"), "direction": name,
                     "contracts": float(params.get("contracts", "0")),
                     "label": params.get("label", "")}  # fmt: skip
            return {"order": order, "trades": []}
        if name == "edit":
            return {"order": {"order_id": params.get("order_id"), "order_state": "open"},
                    "trades": []}  # fmt: skip
        if name in ("cancel", "get_order_state"):
            return {"order_id": params.get("order_id"), "order_state": "cancelled"}
        if name == "get_account_summary":
            return {"currency": params.get("currency"), "equity": 0.0, "balance": 0.0}
        if name == "cancel_all_by_instrument":
            return 0
        return []
