"""IG REST trading API session, version 3 (OAuth tokens from a password login): pure functions.

Facts, from https://labs.ig.com/rest-trading-api-guide ("Authentication and authorisation") and
the reference pages https://labs.ig.com/reference/session.html (``POST /session``) and
https://labs.ig.com/rest-trading-api-reference/service-detail?id=688 (``/session/refresh-token``):

* Every request carries ``X-IG-API-KEY`` (the application's key) and ``Version: n``.
* Login: ``POST /session`` with ``Version: 3`` and ``{"identifier": <username>, "password":
  <password>}``. The answer's body holds ``accountId``, ``clientId``, ``lightstreamerEndpoint``,
  ``timezoneOffset`` and ``oauthToken {access_token, refresh_token, scope, token_type,
  expires_in}``; ``expires_in`` is a string of seconds (the guide's example: ``"60"``).
* Calls then send ``Authorization: Bearer <access_token>`` and ``IG-ACCOUNT-ID: <account id>``.
* Refresh: ``POST /session/refresh-token`` (Version 1) with ``{"refresh_token": ...}`` answers a
  new ``access_token`` *and* a new ``refresh_token``: the refresh token rotates. That the old one
  stops working is UNVERIFIED (the vault treats it as single-use either way).
* Errors are ``{"errorCode": ...}``: ``401 error.security.invalid-details`` (wrong username or
  password), ``error.security.too-many-failed-attempts`` (IG locked logins after failed
  attempts), ``403 error.security.api-key-invalid|disabled|revoked|restricted``, ``401
  error.security.oauth-token-invalid`` ("Invalid OAuth access token": the session is gone),
  ``403 error.public-api.exceeded-*-allowance`` (rate limits), ``500 system.error``.

Not implemented (documented, not silently assumed):

* The password is sent in clear inside TLS; the optional RSA encryption with the key from
  ``GET /session/encryptionKey`` (required for IG Singapore clients:
  ``error.public-api.failure.encryption.required``) is not built.
* Version 2 sessions (``CST`` / ``X-SECURITY-TOKEN`` answer *headers*, valid 6 h extended by use
  up to 72 h per the guide, 12 h between calls per the FAQ) are not built: v3 is used for every
  credential. ``expired`` still recognises v2's ``client-token-invalid``.

Lifetimes: the access token lives ``expires_in`` seconds (read from the answer, 60 s in IG's
example). The refresh token's lifetime is not published (UNVERIFIED; IG's *vendor* OAuth refresh
tokens live 72 h): ``refresh_expires_at_ms`` is None, and a refused refresh raises
``ReauthorizationNeeded``, after which a password session logs in again.

``retry_safe_on_expiry``: IG answers ``401 error.security.oauth-token-invalid`` when the request
carries no valid session, i.e. before any account is resolved, so no deal can have been made
for it (the request was never authenticated). This is an inference from the authentication
model, not a published guarantee (UNVERIFIED); a place order also carries the caller's
``dealReference``, so a duplicate would be visible in ``GET /confirms``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers.base import PreparedRequest, VenueCredential
from vault_server.brokers.lifecycle import (
    Answer,
    Lifecycle,
    LoginRefused,
    ReauthorizationNeeded,
    SessionContext,
    SessionTokens,
    Step,
    with_headers,
)
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InvalidArgument, VenueUnavailable

SESSION_EXPIRED = frozenset(
    {"error.security.oauth-token-invalid", "error.security.client-token-invalid"}
)
# Answers that are the venue refusing *this* login (count toward the lockout breaker).
_REFUSED_STATUSES = frozenset({400, 401, 403})
# 403s that are rate limits, not refusals: back off, don't count a bad login.
_ALLOWANCE = "error.public-api.exceeded-"
_LOGIN_WINDOW_MS = 10_000  # the vault's own freshness window for a login request
_MAX_PASSWORD_CHARS = 350  # /session: password pattern .{1,350}
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,30}")
_API_KEY = re.compile(r"[\x21-\x7e]{1,128}")


class IgSessionV3:
    """IG's ``POST /session`` v3 login, rotating refresh, and Bearer + IG-ACCOUNT-ID headers."""

    lifecycle = Lifecycle.PASSWORD_SESSION
    renew_margin_ms = 15_000  # a quarter of IG's example 60 s access token
    refresh_rotates = True
    retry_safe_on_expiry = True

    def login(self, credential: VenueCredential, ctx: SessionContext) -> PreparedRequest:
        """``POST /session`` (Version 3) with the username and the password (revealed here only)."""
        username = credential.username
        if not username or not username.isprintable() or len(username) > 254:
            raise InvalidArgument("credential.username", "the IG username is required")
        password = keys.require_secret(credential.secret, "credential.secret").reveal()
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument("credential.secret", "must be UTF-8 text") from None
        if not 1 <= len(text) <= _MAX_PASSWORD_CHARS:
            raise InvalidArgument("credential.secret", "must be 1-350 characters")
        body = hc.compact_json({"identifier": username, "password": text})
        return PreparedRequest(
            "POST", ctx.base_url + "/session", _base_headers(credential, "3"), body,
            expire_at_ms=ctx.now_ms + _LOGIN_WINDOW_MS,
        )  # fmt: skip

    def parse_login(self, answer: Answer, credential: VenueCredential, ctx: SessionContext) -> Step:
        """The session from the answer's ``oauthToken``; a refusal raises ``LoginRefused``."""
        data = _checked(answer, refused=LoginRefused)
        session = data.get("oauthToken") if isinstance(data, dict) else None
        account = data.get("accountId") if isinstance(data, dict) else None
        tokens = _tokens(session, ctx)
        facts = {"accountId": str(account)} if isinstance(account, str) else {}
        return SessionTokens(tokens[0], tokens[1], None, facts)

    def refresh(
        self, tokens: SessionTokens, credential: VenueCredential, ctx: SessionContext
    ) -> PreparedRequest | None:
        """``POST /session/refresh-token`` (Version 1) with the current refresh token."""
        refresh = tokens.values.get("refresh")
        if not refresh:
            return None
        body = hc.compact_json({"refresh_token": refresh})
        return PreparedRequest(
            "POST", ctx.base_url + "/session/refresh-token", _base_headers(credential, "1"), body,
            expire_at_ms=ctx.now_ms + _LOGIN_WINDOW_MS,
        )  # fmt: skip

    def parse_refresh(
        self, answer: Answer, previous: SessionTokens, credential: VenueCredential,
        ctx: SessionContext,
    ) -> SessionTokens:  # fmt: skip
        """New access and refresh tokens; a refused refresh raises ``ReauthorizationNeeded``."""
        data = _checked(answer, refused=ReauthorizationNeeded)
        values, expires = _tokens(data, ctx)
        return SessionTokens(values, expires, None, previous.facts)

    def authorize(
        self, request: PreparedRequest, tokens: SessionTokens, credential: VenueCredential
    ) -> PreparedRequest:
        """The API key, ``Authorization: Bearer`` and ``IG-ACCOUNT-ID`` in front of ``request``."""
        access = tokens.values.get("access")
        if not access:
            raise ReauthorizationNeeded("the IG session holds no access token")
        headers: tuple[tuple[str, str], ...] = (
            ("X-IG-API-KEY", hc.RedactedHeader(credential.api_key)),
            ("Authorization", hc.RedactedHeader("Bearer " + access)),
            ("IG-ACCOUNT-ID", account_id(credential)),
        )
        return with_headers(request, headers)

    def expired(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """IG's 401 with an invalid OAuth (v3) or client (v2) token: the session is gone."""
        return status == 401 and _error_code(body) in SESSION_EXPIRED


def account_id(credential: VenueCredential) -> str:
    """The IG account id (``IG-ACCOUNT-ID``), e.g. ``ABC123``: required, 1-30 of A-Z a-z 0-9 _ -."""
    value = credential.account_id
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        raise InvalidArgument("credential.account_id", "must be the IG account id (e.g. ABC123)")
    return value


def _base_headers(credential: VenueCredential, version: str) -> tuple[tuple[str, str], ...]:
    key = credential.api_key
    if not key or not _API_KEY.fullmatch(key):
        raise InvalidArgument("credential.api_key", "must be the IG API key")
    return (
        ("X-IG-API-KEY", hc.RedactedHeader(key)),
        ("Version", version),
        ("Accept", "application/json; charset=UTF-8"),
        ("Content-Type", "application/json; charset=UTF-8"),
    )


def _checked(answer: Answer, *, refused: type[LoginRefused] | type[ReauthorizationNeeded]) -> Any:
    """The JSON of a 200 answer; 5xx, rate limits and nonsense are ``VenueUnavailable``."""
    if answer.status == 200:
        return answer.json()
    code = _error_code(answer.body)
    meta = {"status": str(answer.status), "errorCode": code or ""}
    if answer.status in _REFUSED_STATUSES and code and not code.startswith(_ALLOWANCE):
        raise refused("IG refused the session request", metadata=meta)
    raise VenueUnavailable("IG did not open a session", metadata=meta)


def _tokens(data: Any, ctx: SessionContext) -> tuple[dict[str, str], int]:
    """``{access, refresh}`` and the access token's expiry from an ``oauthToken``-shaped dict."""
    if not isinstance(data, dict):
        raise VenueUnavailable("IG's session answer had no tokens")
    access, refresh, lifetime = (data.get(k) for k in ("access_token", "refresh_token",
                                                        "expires_in"))  # fmt: skip
    if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
        raise VenueUnavailable("IG's session answer had no tokens")
    try:
        seconds = int(str(lifetime))
    except ValueError:
        raise VenueUnavailable("IG's session answer had no token lifetime") from None
    if not 0 < seconds <= 86_400:
        raise VenueUnavailable("IG's session answer had an implausible token lifetime")
    return {"access": access, "refresh": refresh}, ctx.now_ms + seconds * 1000


def _error_code(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    code = data.get("errorCode") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


SESSION = IgSessionV3()
