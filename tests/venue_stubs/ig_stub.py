"""A loopback IG REST trading API (v3 OAuth sessions) written from IG's documentation.

What it enforces, as IG documents it (https://labs.ig.com/rest-trading-api-guide,
https://labs.ig.com/reference/session.html, https://labs.ig.com/reference/positions-otc.html,
https://labs.ig.com/rest-trading-api-reference/service-detail?id=688):

* ``X-IG-API-KEY`` on every request: missing -> 400 ``error.security.api-key-missing``, unknown
  -> 403 ``error.security.api-key-invalid``.
* ``POST /session`` ``Version: 3`` with ``{"identifier", "password"}``: wrong -> 401
  ``error.security.invalid-details``; after ``lock_after`` failures in a row the login is locked
  -> 401 ``error.security.too-many-failed-attempts`` (the count is this stub's: UNVERIFIED).
  Success -> ``{accountId, clientId, timezoneOffset, lightstreamerEndpoint, oauthToken:
  {access_token, refresh_token, scope, token_type, expires_in}}`` (``expires_in`` a string).
* Calls carry ``Authorization: Bearer <access>`` and ``IG-ACCOUNT-ID``: an unknown or expired
  token (the injectable clock) -> 401 ``error.security.oauth-token-invalid``.
* ``POST /session/refresh-token`` (v1) ``{"refresh_token"}``: a new access *and* refresh token;
  the refresh token is single use (a used or unknown one -> 401 ``oauth-token-invalid``: the
  status and code for a bad refresh token are this stub's choice, UNVERIFIED).
* Each endpoint answers only the ``Version`` the vault uses (another one -> 400
  ``invalid.input``: real IG would serve another body shape, which the vault cannot read).
* ``POST /positions/otc`` v2 checks the NotNull fields and the documented constraints (MARKET
  without ``level``, LIMIT with it, one of stopLevel/stopDistance and of limitLevel/
  limitDistance, ``forceOpen`` true with either, ``dealReference`` pattern); ``_method: DELETE``
  on that POST is a close (v1: ``dealId``, ``direction`` opposite the position, ``size`` at most
  the position's, MARKET). Validation errors are 400 ``validation.null-not-allowed.request.
  <field>`` / ``invalid.request.<field>`` shaped (the exact codes are UNVERIFIED).
* A ``dealReference`` used twice -> 400 (UNVERIFIED: the stub's guard against double orders).
* ``PUT /positions/otc/{dealId}`` v2 sets both levels from the body (a level left out is
  removed); ``GET /confirms/{dealReference}``, ``GET /positions``, ``GET /workingorders``,
  ``GET /accounts``.

Usage::

    with IgStub(username="u", password="p", api_key="k", account_id="ABC123") as stub:
        stub.positions          # dealId -> {"dealId", "dealReference", "stopLoss", ...}
        stub.expire_sessions()  # every token now answers oauth-token-invalid
        stub.down = True        # every request answers 500 system.error
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from pipsync.vault.v1 import trading_pb2

from tests.support.forex_flow import Account, VenueFlow
from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

_EXPIRED = "error.security.oauth-token-invalid"
_DEAL_REF = re.compile(r"[A-Za-z0-9_-]{1,30}")
_EPIC = re.compile(r"[A-Za-z0-9._]{6,30}")
_EXPIRY = re.compile(r"(?:\d{2}-)?[A-Z]{3}-\d{2}|-|DFB")
_VERSIONS = {("POST", "/session"): "3", ("POST", "/session/refresh-token"): "1",
             ("POST", "/positions/otc"): "2", ("DELETE", "/positions/otc"): "1",
             ("PUT", "/positions/otc/*"): "2", ("GET", "/positions"): "2",
             ("GET", "/workingorders"): "2", ("GET", "/confirms/*"): "1",
             ("GET", "/accounts"): "1"}  # fmt: skip
MARKET_LEVEL = Decimal("1.1")  # every market deal fills here
Reply = tuple[int, Any]


def _error(status: int, code: str) -> Reply:
    return status, {"errorCode": code}


class IgStub(LoopbackVenueStub):
    """One IG account (username, password, API key, account id) on loopback."""

    def __init__(
        self, *, username: str, password: str, api_key: str, account_id: str,
        clock: Clock | None = None, access_ttl_s: int = 60, lock_after: int = 5,
    ) -> None:  # fmt: skip
        super().__init__(clock=clock)
        self.username, self.password, self.api_key = username, password, api_key
        self.account_id = account_id
        self.access_ttl_s, self.lock_after = access_ttl_s, lock_after
        self.logins = self.failed_logins = self.refreshes = 0
        self.locked = self.down = False
        self.access: dict[str, int] = {}  # access token -> expiry (epoch ms)
        self.refresh_tokens: set[str] = set()
        self.issued_tokens: list[str] = []  # every token handed out (canary scans)
        # A refresh answered this late (tests kill the vault in between); set when one started.
        self.refresh_delay_s = 0.0
        self.refresh_started = threading.Event()
        self.positions: dict[str, dict[str, Any]] = {}
        self.confirms: dict[str, dict[str, Any]] = {}  # dealReference -> confirmation
        self._ids = itertools.count(1)
        self._failures_in_a_row = 0

    # --- test controls -------------------------------------------------------------------------
    def expire_sessions(self) -> None:
        """Every access and refresh token stops working (IG's weekend maintenance does this)."""
        self.access.clear()
        self.refresh_tokens.clear()

    def expire_access(self) -> None:
        """Every access token stops working (their 60 s are over); refresh tokens still do."""
        self.access.clear()

    def deal_id_for(self, reference: str) -> str:
        return str(self.confirms[reference]["dealId"])

    # --- dispatch ------------------------------------------------------------------------------
    def handle(self, request: ReceivedRequest) -> Reply:
        status, reply = self._answer(request)
        return status, _plain(reply)

    def _answer(self, request: ReceivedRequest) -> Reply:
        if self.down:
            return _error(500, "system.error")
        key = request.headers.get("x-ig-api-key")
        if not key:
            return _error(400, "error.security.api-key-missing")
        if key != self.api_key:
            return _error(403, "error.security.api-key-invalid")
        method = request.method
        if method == "POST" and request.headers.get("_method", "").upper() == "DELETE":
            method = "DELETE"
        route = re.sub(r"^/(positions/otc|confirms)/[^/]+$", r"/\1/*", request.path)
        wanted = _VERSIONS.get((method, route))
        if wanted is None:
            return _error(404, "invalid.url")
        if request.headers.get("version", "1") != wanted:
            return _error(400, "invalid.input")
        body = _json(request) if method in ("POST", "PUT", "DELETE") else {}
        if body is None:
            return _error(400, "invalid.input")
        if route == "/session":
            return self._login(body)
        if route == "/session/refresh-token":
            return self._refresh(body)
        refused = self._session_refused(request)
        if refused is not None:
            return refused
        return self._dealing(method, route, request.path, body)

    def _dealing(self, method: str, route: str, path: str, body: dict[str, Any]) -> Reply:
        if (method, route) == ("POST", "/positions/otc"):
            return self._open(body)
        if (method, route) == ("DELETE", "/positions/otc"):
            return self._close(body)
        if (method, route) == ("PUT", "/positions/otc/*"):
            return self._amend(path.rsplit("/", 1)[1], body)
        if route == "/confirms/*":
            found = self.confirms.get(path.rsplit("/", 1)[1])
            return (200, found) if found else _error(404, "error.confirms.deal-not-found")
        if route == "/positions":
            return 200, {"positions": [{"position": p, "market": {"epic": p["epic"]}}
                                       for p in self.positions.values()]}  # fmt: skip
        if route == "/workingorders":
            return 200, {"workingOrders": []}
        return 200, {"accounts": [{"accountId": self.account_id, "accountName": "CFD",
                                   "accountType": "CFD", "preferred": True, "currency": "USD",
                                   "status": "ENABLED"}]}  # fmt: skip

    # --- sessions ------------------------------------------------------------------------------
    def _login(self, body: dict[str, Any]) -> Reply:
        if not isinstance(body.get("identifier"), str) or not isinstance(body.get("password"), str):
            return _error(400, "validation.null-not-allowed.request")
        if self.locked:
            return _error(401, "error.security.too-many-failed-attempts")
        if body["identifier"] != self.username or body["password"] != self.password:
            self.failed_logins += 1
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= self.lock_after:
                self.locked = True
            return _error(401, "error.security.invalid-details")
        self._failures_in_a_row = 0
        self.logins += 1
        return 200, {"accountId": self.account_id, "clientId": "100017136", "timezoneOffset": 1,
                     "lightstreamerEndpoint": "https://demo-apd.marketdatasystems.com",
                     "oauthToken": self._issue()}  # fmt: skip

    def _refresh(self, body: dict[str, Any]) -> Reply:
        token = body.get("refresh_token")
        if not isinstance(token, str) or token not in self.refresh_tokens:
            return _error(401, _EXPIRED)
        self.refresh_tokens.discard(token)  # single use: the answer carries its successor
        self.refreshes += 1
        answer = self._issue()
        if self.refresh_delay_s:  # the answer is late: the old token is already spent
            self.refresh_started.set()
            time.sleep(self.refresh_delay_s)
        return 200, answer

    def _issue(self) -> dict[str, str]:
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        self.issued_tokens += [access, refresh]
        self.access[access] = self.clock() + self.access_ttl_s * 1000
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "scope": "profile",
                "token_type": "Bearer", "expires_in": str(self.access_ttl_s)}  # fmt: skip

    def _session_refused(self, request: ReceivedRequest) -> Reply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.access.get(token) if scheme == "Bearer" else None
        if expiry is None or self.clock() >= expiry:
            return _error(401, _EXPIRED)
        account = request.headers.get("ig-account-id")
        if not account:
            return _error(401, "error.security.account-token-missing")
        if account != self.account_id:
            return _error(401, "error.security.account-token-invalid")
        return None

    # --- dealing -------------------------------------------------------------------------------
    def _open(self, body: dict[str, Any]) -> Reply:
        problem = _open_problem(body)
        if problem is not None:
            return _error(400, problem)
        reference = body.get("dealReference") or f"REF{next(self._ids)}"
        if reference in self.confirms:
            return _error(400, "error.service.otc.duplicate-deal-reference")
        deal_id = f"DIAAAA{next(self._ids):08d}"
        level = body.get("level", MARKET_LEVEL)
        self.positions[deal_id] = {
            "dealId": deal_id, "dealReference": reference, "epic": body["epic"],
            "direction": body["direction"], "size": body["size"], "level": level,
            "currency": body["currencyCode"],
            "stopLoss": _level(body, "stop", level), "takeProfit": _level(body, "limit", level),
        }  # fmt: skip
        self._confirm(reference, deal_id, "OPEN", body)
        return 200, {"dealReference": reference}

    def _amend(self, deal_id: str, body: dict[str, Any]) -> Reply:
        position = self.positions.get(deal_id)
        if position is None:
            return _error(404, "error.service.otc.position-not-found")
        if body.get("trailingStop") not in (None, False):
            return _error(400, "invalid.request.trailingStop")
        for name in ("stopLevel", "limitLevel"):
            if name in body and not _positive(body[name]):
                return _error(400, f"invalid.request.{name}")
        position["stopLoss"] = _text(body.get("stopLevel"))  # IG replaces both levels
        position["takeProfit"] = _text(body.get("limitLevel"))
        reference = f"AMD{next(self._ids)}"
        self._confirm(reference, deal_id, "AMENDED", body)
        return 200, {"dealReference": reference}

    def _close(self, body: dict[str, Any]) -> Reply:
        position = self.positions.get(body.get("dealId", ""))
        if ("dealId" in body) == ("epic" in body):
            return _error(400, "invalid.request.dealId")
        if position is None:
            return _error(404, "error.service.otc.position-not-found")
        if body.get("orderType") != "MARKET" or "level" in body or "quoteId" in body:
            return _error(400, "invalid.request.orderType")
        if body.get("direction") not in ("BUY", "SELL"):
            return _error(400, "validation.null-not-allowed.request.direction")
        if body["direction"] == position["direction"]:
            return _error(400, "invalid.request.direction")  # UNVERIFIED: same side as the deal
        size = body.get("size")
        if not _positive(size) or Decimal(str(size)) > position["size"]:
            return _error(400, "invalid.request.size")
        position["size"] -= Decimal(str(size))
        if position["size"] == 0:
            del self.positions[position["dealId"]]
        reference = f"CLS{next(self._ids)}"
        self._confirm(reference, position["dealId"], "DELETED", body)
        return 200, {"dealReference": reference}

    def _confirm(self, reference: str, deal_id: str, status: str, body: dict[str, Any]) -> None:
        self.confirms[reference] = {
            "dealReference": reference, "dealId": deal_id, "dealStatus": "ACCEPTED",
            "status": status, "reason": "SUCCESS", "epic": body.get("epic"),
            "direction": body.get("direction"), "size": body.get("size"),
            "stopLevel": body.get("stopLevel"), "limitLevel": body.get("limitLevel"),
        }  # fmt: skip


def _json(request: ReceivedRequest) -> dict[str, Any] | None:
    """The JSON object body (numbers as Decimal), or None when it is not one or not declared."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        data = json.loads(request.body, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _open_problem(body: dict[str, Any]) -> str | None:
    """The validation error IG would answer for a create-position body, or None."""
    for name in ("currencyCode", "direction", "epic", "expiry", "forceOpen", "guaranteedStop",
                 "orderType", "size"):  # fmt: skip
        if body.get(name) is None:
            return f"validation.null-not-allowed.request.{name}"
    checks = {
        "epic": isinstance(body["epic"], str) and _EPIC.fullmatch(body["epic"]) is not None,
        "expiry": isinstance(body["expiry"], str) and _EXPIRY.fullmatch(body["expiry"]) is not None,
        "direction": body["direction"] in ("BUY", "SELL"),
        "size": _positive(body["size"]),
        "currencyCode": re.fullmatch(r"[A-Z]{3}", str(body["currencyCode"])) is not None,
        "orderType": body["orderType"] in ("MARKET", "LIMIT"),
        "guaranteedStop": body["guaranteedStop"] is False,  # the stub has no guaranteed stops
        "dealReference": "dealReference" not in body
        or _DEAL_REF.fullmatch(str(body["dealReference"])) is not None,
        "level": ("level" in body) == (body["orderType"] == "LIMIT")
        and ("level" not in body or _positive(body["level"])),
        "timeInForce": body.get("timeInForce", "FILL_OR_KILL")
        in ("EXECUTE_AND_ELIMINATE", "FILL_OR_KILL"),
    }  # fmt: skip
    for kind in ("stop", "limit"):
        given = [f"{kind}{s}" for s in ("Level", "Distance") if f"{kind}{s}" in body]
        checks[f"{kind}Level"] = len(given) <= 1 and all(_positive(body[g]) for g in given)
        checks["forceOpen"] = checks.get("forceOpen", True) and (
            not given or body["forceOpen"] is True
        )
    for name, ok in checks.items():
        if not ok:
            return f"invalid.request.{name}"
    return None


def _plain(value: Any) -> Any:
    """``value`` with every Decimal as the JSON number IG would send."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _positive(value: Any) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value > 0


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _level(body: dict[str, Any], kind: str, entry: Decimal) -> str | None:
    """The stored stop loss / take profit: the level sent, or entry -/+ a distance (1 point =
    0.0001 here, the EUR/USD scaling; the stub knows no other market)."""
    if f"{kind}Level" in body:
        return _text(body[f"{kind}Level"])
    if f"{kind}Distance" not in body:
        return None
    distance = body[f"{kind}Distance"] * Decimal("0.0001")
    below = (kind == "stop") == (body["direction"] == "BUY")
    return str(entry - distance if below else entry + distance)


# --- the shared session-venue flow ---------------------------------------------------------------
@contextmanager
def _stub(account: Account) -> Iterator[IgStub]:
    with IgStub(username=account.username, password=account.password, api_key=account.api_key,
                account_id=_account_id(account)) as stub:  # fmt: skip
        yield stub


def _account_id(account: Account) -> str:
    return (
        account.account_id if re.fullmatch(r"[A-Za-z0-9_-]{1,30}", account.account_id) else "ABC123"
    )


def _material(account: Account) -> dict[str, str]:
    return {"api_key": account.api_key, "username": account.username,
            "secret": account.password, "account_id": _account_id(account)}  # fmt: skip


def _position_id(stub: Any, body: bytes) -> str:
    """IG's place answer is ``{"dealReference"}``: the stub's confirmation names the deal id."""
    return str(stub.deal_id_for(json.loads(body)["dealReference"]))


FLOW = VenueFlow(
    venue="ig",
    broker=trading_pb2.BROKER_IG,
    stub=_stub,
    material=_material,
    symbol="CS.D.EURUSD.CFD.IP",
    quantity="2",
    stop_loss="1.05",
    take_profit="1.2",
    amended_stop_loss="1.06",
    position_id=_position_id,
    wrong_password_locks_after=5,
)
