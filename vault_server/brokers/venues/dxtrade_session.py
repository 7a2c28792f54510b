"""DXtrade's session: ``POST /login`` with username, domain and password, ``DXAPI`` token, ``ping``.

Devexperts documents token authentication for the DXtrade REST API (dxRegister spec,
https://demo-xt.dx.trade/dxweb/specs/dxRegister.html "Authentication by session token"; DX REST
API spec, https://demo-xt.dx.trade/dxweb/specs/DX_REST_API.html "Create Session Token", "Ping";
reference [21] of ``broker-breadth.md``):

* ``POST {base}/login`` with ``{"username", "domain", "password"}`` answers ``{"sessionToken",
  "timeout"}``, ``timeout`` being the token's lifetime in milliseconds. A wrong password is
  ``401`` with ``{"errorCode": "3", "description": "Incorrect username or password"}``.
* Every later request carries ``Authorization: DXAPI <sessionToken>``.
* The token expires when the client logs out, is logged out by the operator, loses REST access,
  or when "a pre-configured timeout passes since last request from the client": every request
  extends it, and ``POST {base}/ping`` extends it without doing anything else. "Upon a request
  with an expired token, client receives the 401 Unauthorized error and is expected to repeat
  the authentication procedure."

So a refresh here is a ping: it keeps the token (or takes the one the answer names, if any) and
moves the expiry to ``now + timeout``. A ping refused with 401 means the session already ended:
the answer is the same token marked expired now, so the next use logs in afresh; a refused
ping is not a refused login and never counts toward the lockout breaker.

``timeout`` is a number of milliseconds in the spec. Third-party clients also read it as
``HH:MM:SS`` or an ISO-8601 duration (UNVERIFIED), so those are accepted too; a login answer
without a usable one gets :data:`DEFAULT_TIMEOUT_MS` (about 30 minutes idle, as third-party
clients report: UNVERIFIED), which is safe because a request on a session that ended early is
refused before it is processed (``retry_safe_on_expiry``, below).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers.base import PreparedRequest, VenueCredential
from vault_server.brokers.lifecycle import (
    Answer,
    Lifecycle,
    LoginRefused,
    SessionContext,
    SessionTokens,
    with_headers,
)
from vault_server.core.errors import InternalError, InvalidArgument, VenueUnavailable

DEFAULT_TIMEOUT_MS = 30 * 60_000
MAX_TIMEOUT_MS = 24 * 3_600_000  # a longer claimed lifetime is held to a day
CALL_WINDOW_MS = 30_000  # the vault's own freshness bound on a login or ping it sends
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_DOMAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CLOCK = re.compile(r"(\d{1,3}):([0-5]?\d):([0-5]?\d(?:\.\d{1,3})?)")
_ISO = re.compile(r"PT(?:(\d{1,3})H)?(?:(\d{1,5})M)?(?:(\d{1,7}(?:\.\d{1,3})?)S)?", re.IGNORECASE)
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_JSON = (("Content-Type", "application/json"), ("Accept", "application/json"))


def login_identity(credential: VenueCredential) -> tuple[str, str, str]:
    """The username, domain and password the login sends (checked, never echoed)."""
    username = credential.username
    if (
        not isinstance(username, str)
        or not 0 < len(username) <= 128
        or not username.isprintable()
        or username != username.strip()
    ):
        raise InvalidArgument("credential.username", "must be the DXtrade login (1-128 printable)")
    domain = credential.server
    if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
        raise InvalidArgument(
            "credential.server",
            "must be the DXtrade domain (e.g. default): 1-64 of A-Z a-z 0-9 _ . -",
        )
    secret = credential.secret
    if secret is None or not len(secret):
        raise InvalidArgument("credential.secret", "the DXtrade password is required")
    try:
        password = secret.reveal().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("credential.secret", "must be UTF-8 text") from None
    return username, domain, password


def timeout_ms(value: Any) -> int | None:
    """``timeout`` of a login or ping answer in milliseconds, or None when absent or unusable."""
    if isinstance(value, bool) or value is None:
        return None
    ms: float | None = None
    if isinstance(value, int | float):
        ms = float(value)
    elif isinstance(value, str):
        text = value.strip()
        clock, iso = _CLOCK.fullmatch(text), _ISO.fullmatch(text)
        if text.isdigit() and len(text) <= 12:
            ms = float(text)
        elif clock:
            ms = (int(clock[1]) * 3600 + int(clock[2]) * 60 + float(clock[3])) * 1000
        elif iso and any(iso.groups()):
            hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
            ms = (hours * 3600 + minutes * 60 + seconds) * 1000
    if ms is None or not math.isfinite(ms) or ms < 1000:
        return None
    return min(int(ms), MAX_TIMEOUT_MS)


def _body(answer: Answer) -> Mapping[str, Any]:
    if not answer.body.strip():
        return {}
    data = answer.json()
    if not isinstance(data, dict):
        raise VenueUnavailable(
            "DXtrade's session answer was not a JSON object",
            metadata={"status": str(answer.status)},
        )
    return data


def _token(value: Any) -> str | None:
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def _unavailable(answer: Answer, what: str) -> VenueUnavailable:
    return VenueUnavailable(
        f"DXtrade did not complete the {what}", metadata={"status": str(answer.status)}
    )


class DxtradeSession:
    """The :class:`~vault_server.brokers.lifecycle.SessionProtocol` of DXtrade.

    ``retry_safe_on_expiry`` is True, for two independent reasons, both from the spec:

    1. The session is checked before a request is processed: a request on an expired or invalid
       token "receives the 401 Unauthorized error" and the client "is expected to repeat the
       authentication procedure" - the documented contract is to log in and send it again.
    2. Even if a request had been executed, sending it again cannot execute it twice: every
       order the vault builds carries the caller's client order id as ``orderCode``, which "is
       expected to be unique among all orders on an account", and a second order with it is
       refused (``409``, error ``100`` "Order with this id already exists"); modifies and
       cancels are conditional (``If-Match``), so a repeat after a change is refused with
       ``412``.
    """

    lifecycle = Lifecycle.PASSWORD_SESSION
    # A third of the ~30 minute idle timeout third-party clients report (UNVERIFIED); every
    # proxied request extends the session too, so this only matters for an idle credential.
    renew_margin_ms = 10 * 60_000
    refresh_rotates = False
    retry_safe_on_expiry = True

    def login(self, credential: VenueCredential, ctx: SessionContext) -> PreparedRequest:
        username, domain, password = login_identity(credential)
        body = hc.compact_json({"username": username, "domain": domain, "password": password})
        return PreparedRequest(
            "POST", ctx.base_url + "/login", _JSON, body, ctx.now_ms + CALL_WINDOW_MS
        )

    def parse_login(
        self, answer: Answer, credential: VenueCredential, ctx: SessionContext
    ) -> SessionTokens:
        if answer.status in (400, 401, 403):
            # 401: wrong username, domain or password (error 3); 403: REST access not enabled
            # for this login (or the login locked); 400: the login itself was malformed.
            code = _body_or_empty(answer).get("errorCode")
            shown = str(code) if code is not None and _ERROR_CODE.fullmatch(str(code)) else ""
            raise LoginRefused(
                "DXtrade refused the login (check the username, domain and password)",
                metadata={"status": str(answer.status), "venueErrorCode": shown},
            )
        if not 200 <= answer.status < 300:
            # 429, 5xx, and 404 (a base URL without the API): back off, not a bad password.
            raise _unavailable(answer, "login")
        data = _body(answer)
        token = _token(data.get("sessionToken"))
        if token is None:
            raise _unavailable(answer, "login (no usable sessionToken)")
        lifetime = timeout_ms(data.get("timeout")) or DEFAULT_TIMEOUT_MS
        return SessionTokens(
            values={"sessionToken": token},
            expires_at_ms=ctx.now_ms + lifetime,
            facts={"timeoutMs": str(lifetime)},
        )

    def refresh(
        self, tokens: SessionTokens, credential: VenueCredential, ctx: SessionContext
    ) -> PreparedRequest:
        ping = PreparedRequest(
            "POST", ctx.base_url + "/ping", (("Accept", "application/json"),), b"",
            ctx.now_ms + CALL_WINDOW_MS,
        )  # fmt: skip
        return self.authorize(ping, tokens, credential)

    def parse_refresh(
        self, answer: Answer, previous: SessionTokens, credential: VenueCredential,
        ctx: SessionContext,
    ) -> SessionTokens:  # fmt: skip
        if answer.status == 401:
            return SessionTokens(previous.values, ctx.now_ms, None, previous.facts)
        if not 200 <= answer.status < 300:
            raise _unavailable(answer, "ping")
        data = _body(answer)
        named = data.get("sessionToken")
        token = _token(named) if named is not None else previous.values.get("sessionToken")
        if token is None:
            raise _unavailable(answer, "ping (no usable sessionToken)")
        lifetime = (
            timeout_ms(data.get("timeout"))
            or timeout_ms(previous.facts.get("timeoutMs"))
            or DEFAULT_TIMEOUT_MS
        )
        return SessionTokens(
            values={"sessionToken": token},
            expires_at_ms=ctx.now_ms + lifetime,
            facts={**previous.facts, "timeoutMs": str(lifetime)},
        )

    def authorize(
        self, request: PreparedRequest, tokens: SessionTokens, credential: VenueCredential
    ) -> PreparedRequest:
        token = _token(tokens.values.get("sessionToken"))
        if token is None:
            raise InternalError("the DXtrade session holds no usable token")
        return with_headers(request, (("Authorization", hc.RedactedHeader("DXAPI " + token)),))

    def expired(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        # "Client is not authorized in the system": an expired, logged-out or unknown token.
        # 403 means a missing condition (If-Match), 404 an account or order this login cannot
        # see: neither is a session problem.
        return status == 401


def _body_or_empty(answer: Answer) -> Mapping[str, Any]:
    try:
        data = json.loads(answer.body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


SESSION = DxtradeSession()
