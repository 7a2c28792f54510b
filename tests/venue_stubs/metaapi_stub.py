"""A loopback MetaApi: the token-narrowing profile API and the MetaTrader client REST API.

One server plays both hosts (the vault's base URL override points at it; ``metaapi_session``
then takes the mint path relative to it). Written from the docs cited in
``vault_server/brokers/venues/metaapi.py`` and ``metaapi_session.py``:

* ``POST /users/current/narrow-down-auth-token?validity-in-hours=N`` with ``auth-token: <broad>``
  and simplified rules ``{applications, roles, resources}`` -> 200 ``{"token": <JWT>}``; the JWT
  payload carries ``exp`` and ``accessRules`` (``methods`` ``metaapi-api:rest:public:*:*``,
  ``resources`` ``account:$USER_ID$:<id>``) as the SDK's ``areTokenResourcesNarrowedDown`` reads
  them. A broad token that does not own the account asked for gets 403.
* Client API under ``/users/current/accounts/{id}``: ``POST /trade`` (MetatraderTrade model),
  ``GET /positions``, ``/orders``, ``/orders/{id}``, ``/accountInformation``. A token that is
  unknown, expired (the stub's clock) or revoked (:meth:`expire_sessions`) gets 401
  ``{"id": 1, "error": "UnauthorizedError", "message": ...}``; one narrowed to another account,
  403 ``ForbiddenError``; a bad body, 400 ``ValidationError``. Trade outcomes are 200 with
  ``numericCode``/``stringCode`` (``TRADE_RETCODE_DONE`` 10009, ``..._INVALID_STOPS`` 10016,
  ``..._INVALID_VOLUME`` 10014, ``..._POSITION_CLOSED`` 10036, ``..._INVALID_ORDER`` 10035).
* No account lock exists for a wrong MetaApi token (UNVERIFIED either way); MetaApi documents
  rate limits (``TooManyRequestsError``, 429). The stub answers 429 to every mint after
  ``locks_after`` failed ones, which is what :attr:`FLOW` ``wrong_password_locks_after`` means here.

Every quoted symbol trades at :data:`PRICE`; stops are checked against it (buy: SL below, TP
above). ``fail_with`` makes every request answer that status (a MetaApi outage).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from tests.support.forex_flow import Account, VenueFlow
from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

PRICE = 1.1
MINT = "/users/current/narrow-down-auth-token"
_ACCOUNT_PATH = re.compile(r"/users/current/accounts/(?P<account>[^/]+)(?P<rest>/.*)")
_PLACE = {"ORDER_TYPE_BUY", "ORDER_TYPE_SELL", "ORDER_TYPE_BUY_LIMIT", "ORDER_TYPE_SELL_LIMIT",
          "ORDER_TYPE_BUY_STOP", "ORDER_TYPE_SELL_STOP"}  # fmt: skip
_HOUR_MS = 3_600_000


def _error(status: int, name: str, message: str) -> tuple[int, Any]:
    return status, {"id": 1, "error": name, "message": message}


def _trade(code: int, name: str, message: str, **ids: str) -> tuple[int, Any]:
    return 200, {"numericCode": code, "stringCode": name, "message": message, **ids}


def _jwt(claims: Mapping[str, Any]) -> str:
    def part(data: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS512', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


class MetaApiStub(LoopbackVenueStub):
    """MetaApi's profile (mint) and client APIs on loopback.

    Args:
        tokens: broad API token -> the MetaApi account ids it owns.
        clock: epoch ms (token expiry).
        locks_after: failed mints after which every mint is answered 429.
    """

    def __init__(
        self, tokens: Mapping[str, Iterable[str]], *, clock: Clock | None = None,
        locks_after: int = 5,
    ) -> None:  # fmt: skip
        super().__init__(clock=clock)
        self.tokens = {token: set(accounts) for token, accounts in tokens.items()}
        self.locks_after = locks_after
        self.logins = 0
        self.failed_logins = 0
        self.issued_tokens: list[str] = []  # every token handed out (canary scans)
        self.narrowed: dict[str, dict[str, Any]] = {}  # token -> {account, exp_ms, revoked}
        self.positions: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.broad_token_trades = 0  # client API calls made with a broad token (never the vault)
        self.fail_with: int | None = None
        self._tickets = itertools.count(46648037)

    def expire_sessions(self) -> None:
        """Every narrowed token minted so far now answers 401."""
        for entry in self.narrowed.values():
            entry["revoked"] = True

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        if self.fail_with is not None:
            return _error(self.fail_with, "InternalError", "stub: MetaApi is down")
        if request.path == MINT:
            return self._mint(request)
        match = _ACCOUNT_PATH.fullmatch(request.path)
        if match is None:
            return _error(404, "NotFoundError", "stub: unknown endpoint")
        token = request.headers.get("auth-token", "")
        entry = self.narrowed.get(token)
        if token in self.tokens:
            self.broad_token_trades += 1
            allowed = match["account"] in self.tokens[token]
        elif entry is None or entry["revoked"] or entry["exp_ms"] <= self.clock():
            return _error(401, "UnauthorizedError", "Authorization token invalid")
        else:
            allowed = match["account"] == entry["account"]
        if not allowed:
            return _error(
                403, "ForbiddenError", "Method or resource access permissions are missing"
            )
        return self._client(request, match["rest"])

    # --- profile API ------------------------------------------------------------------------
    def _mint(self, request: ReceivedRequest) -> tuple[int, Any]:
        if self.failed_logins >= self.locks_after:
            return _error(429, "TooManyRequestsError", "stub: too many failed requests")
        broad = request.headers.get("auth-token", "")
        if request.method != "POST" or broad not in self.tokens:
            self.failed_logins += 1
            return _error(401, "UnauthorizedError", "Authorization token invalid")
        validity = parse_qs(request.query).get("validity-in-hours", ["24"])
        try:
            rules, hours = json.loads(request.body), int(validity[0])
            resources = rules["resources"]
            accounts = {r["id"] for r in resources if r["entity"] == "account"}
            applications = rules.get("applications", ["metaapi-api"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "ValidationError", "stub: invalid access rules")
        if len(accounts) != 1 or len(resources) != 1 or not 0 < hours <= 24 * 365:
            return _error(400, "ValidationError", "stub: one account resource expected")
        (account,) = accounts
        if account not in self.tokens[broad]:
            self.failed_logins += 1
            return _error(
                403, "ForbiddenError", "Method or resource access permissions are missing"
            )
        exp_ms = self.clock() + hours * _HOUR_MS
        methods = [f"{app}:rest:public:*:*" for app in applications]
        token = _jwt({"exp": exp_ms // 1000, "accessRules": [
            {"methods": methods, "roles": rules.get("roles", ["reader", "writer"]),
             "resources": [f"account:$USER_ID$:{account}"]}]})  # fmt: skip
        self.narrowed[token] = {"account": account, "exp_ms": exp_ms, "revoked": False}
        self.issued_tokens.append(token)
        self.logins += 1
        return 200, {"token": token}

    # --- client API -------------------------------------------------------------------------
    def _client(self, request: ReceivedRequest, rest: str) -> tuple[int, Any]:
        method = request.method
        if (method, rest) == ("POST", "/trade"):
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                return _error(400, "ValidationError", "stub: JSON body expected")
            try:
                body = json.loads(request.body)
            except ValueError:
                return _error(400, "ValidationError", "stub: invalid JSON")
            return self._trade(body) if isinstance(body, dict) else _error(
                400, "ValidationError", "stub: object expected")  # fmt: skip
        if method != "GET":
            return _error(404, "NotFoundError", "stub: unknown endpoint")
        if rest == "/positions":
            return 200, list(self.positions.values())
        if rest == "/orders":
            return 200, list(self.orders.values())
        if rest == "/accountInformation":
            return 200, {"broker": "Stub Ltd", "currency": "USD", "balance": 10000.0,
                         "equity": 10000.0, "leverage": 100, "tradeAllowed": True}  # fmt: skip
        if rest.startswith("/orders/") and rest[8:] in self.orders:
            return 200, self.orders[rest[8:]]
        return _error(404, "NotFoundError", "stub: not found")

    def _trade(self, body: dict[str, Any]) -> tuple[int, Any]:
        action = body.get("actionType")
        if action in _PLACE:
            return self._place(body, action)
        if action in ("POSITION_MODIFY", "POSITION_CLOSE_ID", "POSITION_PARTIAL"):
            return self._position(body, action)
        if action in ("ORDER_CANCEL", "ORDER_MODIFY"):
            order = self.orders.get(str(body.get("orderId")))
            if order is None:
                return _trade(10035, "TRADE_RETCODE_INVALID_ORDER", "Invalid order")
            if action == "ORDER_CANCEL":
                del self.orders[order["id"]]
            else:
                order["openPrice"] = body.get("openPrice", order["openPrice"])
                stops = self._stops(body, "_BUY" in order["type"], base=order["openPrice"])
                if stops is None:
                    return _trade(10016, "TRADE_RETCODE_INVALID_STOPS", "Invalid stops")
                order.update(stops)
            return _trade(10009, "TRADE_RETCODE_DONE", "Request completed", orderId=order["id"])
        return _error(400, "ValidationError", "stub: unknown actionType")

    def _place(self, body: dict[str, Any], action: str) -> tuple[int, Any]:
        volume, symbol = body.get("volume"), body.get("symbol")
        if not isinstance(symbol, str) or not _positive(volume):
            return _error(400, "ValidationError", "stub: symbol and volume are required")
        pending = action.endswith(("_LIMIT", "_STOP"))
        if pending != _positive(body.get("openPrice")):
            return _error(400, "ValidationError", "stub: openPrice is for pending orders only")
        buy = action.startswith("ORDER_TYPE_BUY")
        stops = self._stops(body, buy, base=body.get("openPrice", PRICE))
        if stops is None:
            return _trade(10016, "TRADE_RETCODE_INVALID_STOPS", "Invalid stops")
        ticket = str(next(self._tickets))
        if pending:
            self.orders[ticket] = {
                "id": ticket,
                "type": action,
                "symbol": symbol,
                "volume": volume,
                "openPrice": body["openPrice"],
                **stops,
            }
            return _trade(10009, "TRADE_RETCODE_DONE", "Request completed", orderId=ticket)
        self.positions[ticket] = {
            "id": ticket, "type": "POSITION_TYPE_BUY" if buy else "POSITION_TYPE_SELL",
            "symbol": symbol, "volume": volume, "openPrice": PRICE,
            "stopLoss": stops.get("stopLoss"), "takeProfit": stops.get("takeProfit"),
            **({"clientId": body["clientId"]} if "clientId" in body else {}),
        }  # fmt: skip
        return _trade(10009, "TRADE_RETCODE_DONE", "Request completed", orderId=ticket,
                      positionId=ticket)  # fmt: skip

    def _position(self, body: dict[str, Any], action: str) -> tuple[int, Any]:
        position = self.positions.get(str(body.get("positionId")))
        if position is None:
            return _trade(10036, "TRADE_RETCODE_POSITION_CLOSED", "Position doesn't exist")
        ticket = position["id"]
        if action == "POSITION_CLOSE_ID":
            del self.positions[ticket]
        elif action == "POSITION_PARTIAL":
            volume = body.get("volume")
            if not _positive(volume) or volume > position["volume"]:
                return _trade(10014, "TRADE_RETCODE_INVALID_VOLUME", "Invalid volume")
            # MetaTrader closes the whole position when the partial volume is all of it.
            position["volume"] = round(position["volume"] - volume, 8)
            if position["volume"] == 0:
                del self.positions[ticket]
        else:
            stops = self._stops(body, position["type"] == "POSITION_TYPE_BUY")
            if stops is None or not stops:
                return _trade(10016, "TRADE_RETCODE_INVALID_STOPS", "Invalid stops")
            position.update(stops)
        return _trade(10009, "TRADE_RETCODE_DONE", "Request completed", positionId=ticket)

    @staticmethod
    def _stops(body: dict[str, Any], buy: bool, base: float = PRICE) -> dict[str, float] | None:
        """Absolute SL/TP from the body (relative ones from ``base``); None when invalid."""
        out: dict[str, float] = {}
        for name, below in (("stopLoss", buy), ("takeProfit", not buy)):
            if name not in body:
                continue
            value, units = body[name], body.get(name + "Units", "ABSOLUTE_PRICE")
            if not _positive(value) or units not in ("ABSOLUTE_PRICE", "RELATIVE_PRICE"):
                return None
            if units == "RELATIVE_PRICE":
                value = round(base - value if below else base + value, 10)
            if (value >= base) if below else (value <= base):
                return None
            out[name] = value
        return out


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


# --- the shared forex flow ------------------------------------------------------------------------
def metaapi_account_id(account: Account) -> str:
    """The MetaApi account id the flow's account is known by (a uuid-shaped id)."""
    return "865d3a4d-3803-486d-bdf3-" + account.account_id.zfill(12)


@contextmanager
def _flow_stub(account: Account) -> Iterator[MetaApiStub]:
    with MetaApiStub({account.password: [metaapi_account_id(account)]}) as stub:
        yield stub


def _position_id(stub: Any, body: bytes) -> str:
    answer = json.loads(body)
    position = str(answer["positionId"])
    assert position in stub.positions
    return position


def _material(account: Account) -> dict[str, str]:
    return {"api_key": account.api_key, "secret": account.password,
            "account_id": metaapi_account_id(account), "server": "new-york"}  # fmt: skip


FLOW = VenueFlow(
    venue="metaapi",
    broker=20,  # trading_pb2.BROKER_METAAPI
    stub=_flow_stub,
    material=_material,
    symbol="EURUSD",
    quantity="0.01",
    stop_loss="1.05",
    take_profit="1.2",
    amended_stop_loss="1.07",
    position_id=_position_id,
    wrong_password_locks_after=5,
)
