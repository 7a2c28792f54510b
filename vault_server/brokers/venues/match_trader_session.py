"""Match-Trader Platform API password session: login, refresh and the two session headers.

Facts (Platform API, https://app.theneo.io/match-trade/platform-api and its PDF edition
https://docs.match-trade.com/wp-content/uploads/2024/04/MTR-Match-TraderPlatformAPI.pdf, "Login
(rest)" and "Refresh token (rest)"):

* Login is ``POST managerUrl/co-login`` (``managerUrl`` = the platform host + ``/manager``) with
  the JSON body ``{"email", "password", "brokerId"}``; a 200 answer carries ``token`` (also set as
  the ``co-auth`` cookie) and ``accounts[]``, each with ``tradingAccountId``, ``tradingApiToken``
  and ``offer.system.uuid`` (the systemUuid every trading path starts with: ``/mtr-api/{uuid}``).
* Trading calls carry the session twice: the cookie ``co-auth=<token>`` and the header
  ``Auth-trading-api: <tradingApiToken>`` of the account traded.
* UNVERIFIED (third-party clients only): tokens last about 15 minutes (a JWT ``exp`` is read
  when the token is one); the refresh is ``POST managerUrl/refresh-token`` authenticated by the
  ``co-auth`` cookie and may be used at most 4 times an hour; an invalid or expired session is
  answered HTTP 401.

Choices (the why):

* The refresh budget is kept in ``SessionTokens.facts`` (``refreshesMs``: the refresh times of
  the last hour), so :meth:`refresh` returns None - log in again - before a fifth refresh would
  be refused. A refresh the venue refuses anyway raises ``VenueUnavailable``, never
  ``ReauthorizationNeeded``: the vault holds the password, so a lost session costs one login,
  not the grant. For the same reason ``refresh_rotates`` is False (a refreshed token lost
  before its write-back is replaced by a login; no operator is needed).
* ``retry_safe_on_expiry`` is False: no Match-Trader document says a 401 answer means the order
  was not executed.
* The mapping cannot know the systemUuid (it is learnt at login), so trading paths carry the
  placeholder :data:`SYSTEM_PLACEHOLDER`, which :meth:`authorize` replaces with the systemUuid
  kept in the session facts. A request the engine forgot to authorize goes nowhere useful.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import PreparedRequest, VenueCredential
from vault_server.brokers.lifecycle import (
    Answer,
    Lifecycle,
    LoginRefused,
    SessionContext,
    SessionTokens,
    with_headers,
)
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InvalidArgument, VenueUnavailable

SYSTEM_PLACEHOLDER = "system-uuid"  # never a real systemUuid (not hexadecimal)
TOKEN_TTL_MS = 15 * 60_000  # UNVERIFIED (third-party clients): used when the token has no exp
REFRESH_WINDOW_MS = 60 * 60_000
MAX_REFRESHES = 4  # per REFRESH_WINDOW_MS, UNVERIFIED (third-party client comment)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BROKER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN = re.compile(r"[!#-+\--:<-~]{1,4096}")  # printable ASCII without space, quote, comma, ;
_JSON = (("Accept", "application/json"), ("Content-Type", "application/json"))


class MatchTraderSession:
    """The ``SessionProtocol`` of the Match-Trader Platform API (see the module doc)."""

    lifecycle = Lifecycle.PASSWORD_SESSION
    renew_margin_ms = 2 * 60_000
    refresh_rotates = False
    retry_safe_on_expiry = False

    def login(self, credential: VenueCredential, ctx: SessionContext) -> PreparedRequest:
        """``POST /manager/co-login`` with the email, password and broker id."""
        account_id(credential)
        body = {
            "email": _email(credential),
            "password": _password(credential),
            "brokerId": _broker_id(credential),
        }
        return PreparedRequest(
            "POST", ctx.base_url + "/manager/co-login", _JSON, hc.compact_json(body)
        )

    def parse_login(
        self, answer: Answer, credential: VenueCredential, ctx: SessionContext
    ) -> SessionTokens:
        """The session of ``credential.account_id``; a refused login raises ``LoginRefused``."""
        if answer.status >= 500 or answer.status == 429:
            raise _unavailable("login", answer.status)
        if answer.status != 200:
            raise LoginRefused(
                "Match-Trader refused the login", metadata={"status": str(answer.status)}
            )
        data = answer.json()
        if not isinstance(data, dict):
            raise _unavailable("login", answer.status)
        token = _token(data.get("token"))
        trading_token, system_uuid = _account(data, account_id(credential))
        return SessionTokens(
            values={"coAuth": token, "tradingApiToken": trading_token},
            expires_at_ms=_expiry(token, ctx.now_ms),
            facts={"systemUuid": system_uuid, "tradingAccountId": account_id(credential),
                   "refreshesMs": ""},
        )  # fmt: skip

    def refresh(
        self, tokens: SessionTokens, credential: VenueCredential, ctx: SessionContext
    ) -> PreparedRequest | None:
        """``POST /manager/refresh-token`` with the ``co-auth`` cookie, or None (log in again)
        when the hour's refresh budget is spent."""
        if len(_recent_refreshes(tokens, ctx.now_ms)) >= MAX_REFRESHES:
            return None
        return PreparedRequest(
            "POST", ctx.base_url + "/manager/refresh-token", (*_JSON, _cookie(tokens)), b"{}"
        )

    def parse_refresh(
        self, answer: Answer, previous: SessionTokens, credential: VenueCredential,
        ctx: SessionContext,
    ) -> SessionTokens:  # fmt: skip
        """The renewed session; any refusal is ``VenueUnavailable`` (the engine logs in again)."""
        if answer.status != 200:
            raise _unavailable("refresh", answer.status)
        data = answer.json()
        if not isinstance(data, dict):
            raise _unavailable("refresh", answer.status)
        token = _token(data.get("token"))
        trading_token = previous.values["tradingApiToken"]
        if "accounts" in data:
            trading_token, _ = _account(data, previous.facts["tradingAccountId"])
        refreshes = [*_recent_refreshes(previous, ctx.now_ms), ctx.now_ms]
        return SessionTokens(
            values={"coAuth": token, "tradingApiToken": trading_token},
            expires_at_ms=_expiry(token, ctx.now_ms),
            facts={**previous.facts, "refreshesMs": ",".join(map(str, refreshes))},
        )

    def authorize(
        self, request: PreparedRequest, tokens: SessionTokens, credential: VenueCredential
    ) -> PreparedRequest:
        """The systemUuid put into the path, the cookie and ``Auth-trading-api`` added."""
        system_uuid = tokens.facts.get("systemUuid", "")
        if not _UUID.fullmatch(system_uuid):
            raise VenueUnavailable("the Match-Trader session has no systemUuid")
        url = request.url.replace(f"/mtr-api/{SYSTEM_PLACEHOLDER}/", f"/mtr-api/{system_uuid}/", 1)
        headers = (
            ("Auth-trading-api", hc.RedactedHeader(tokens.values["tradingApiToken"])),
            _cookie(tokens),
        )
        authorized = with_headers(request, headers)
        return PreparedRequest(
            authorized.method, url, authorized.headers, authorized.body, authorized.expire_at_ms
        )

    def expired(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """HTTP 401: the session is gone (UNVERIFIED: third-party clients treat it so)."""
        return status == 401


def account_id(credential: VenueCredential) -> str:
    """The ``tradingAccountId`` traded (one login may hold several accounts)."""
    value = hc.path_id(credential.account_id, "credential.account_id")
    assert value is not None  # required=True
    return value


def _email(credential: VenueCredential) -> str:
    email = credential.username
    if not isinstance(email, str) or "@" not in email:
        raise InvalidArgument("credential.username", "must be the Match-Trader login email")
    return sc.header_token(email, "credential.username")


def _password(credential: VenueCredential) -> str:
    try:
        return keys.require_secret(credential.secret, "credential.secret").reveal().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("credential.secret", "must be UTF-8 text") from None


def _broker_id(credential: VenueCredential) -> str:
    if not isinstance(credential.server, str) or not _BROKER_ID.fullmatch(credential.server):
        raise InvalidArgument("credential.server", "must be the Match-Trader broker id")
    return credential.server


def _account(data: Mapping[str, Any], wanted: str) -> tuple[str, str]:
    """(tradingApiToken, systemUuid) of account ``wanted`` in a login answer."""
    accounts = data.get("accounts")
    for account in accounts if isinstance(accounts, list) else []:
        if isinstance(account, dict) and str(account.get("tradingAccountId")) == wanted:
            offer = account.get("offer")
            system = offer.get("system") if isinstance(offer, dict) else None
            uuid = system.get("uuid") if isinstance(system, dict) else None
            if not isinstance(uuid, str) or not _UUID.fullmatch(uuid):
                raise VenueUnavailable("the Match-Trader login answer has no systemUuid")
            return _token(account.get("tradingApiToken")), uuid
    raise LoginRefused(
        "the Match-Trader login holds no such trading account",
        metadata={"accountId": wanted},
    )


def _token(value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise VenueUnavailable("the Match-Trader session answer carries no usable token")
    return value


def _cookie(tokens: SessionTokens) -> tuple[str, str]:
    return ("Cookie", hc.RedactedHeader("co-auth=" + tokens.values["coAuth"]))


def _expiry(token: str, now_ms: int) -> int:
    """The JWT ``exp`` when the token is a JWT expiring in the future, else now + 15 min."""
    parts = token.split(".")
    if len(parts) == 3:
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            exp = int(claims["exp"]) * 1000
        except (ValueError, KeyError, TypeError):
            exp = 0
        if exp > now_ms:
            return exp
    return now_ms + TOKEN_TTL_MS


def _recent_refreshes(tokens: SessionTokens, now_ms: int) -> list[int]:
    raw = tokens.facts.get("refreshesMs", "")
    times = [int(t) for t in raw.split(",") if t.isdigit()]
    return [t for t in times if now_ms - t < REFRESH_WINDOW_MS]


def _unavailable(step: str, status: int) -> VenueUnavailable:
    return VenueUnavailable(
        f"Match-Trader did not complete the {step}", metadata={"status": str(status)}
    )


SESSION = MatchTraderSession()
