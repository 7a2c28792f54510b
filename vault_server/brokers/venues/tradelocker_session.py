"""TradeLocker password session: JWT login, refresh and the two session headers.

Facts, each from the official documentation or the official client:

* Login is ``POST {base}/auth/jwt/token`` with the JSON body ``{"email", "password", "server"}``
  (the server name the user picks when logging in); it answers 201 with ``accessToken`` and
  ``refreshToken`` (400 on bad input). Every request then carries ``Authorization: Bearer
  <accessToken>`` - https://public-api.tradelocker.com/ ("Authentification") and
  https://public-api.tradelocker.com/reference/getjwttokens.
* Trading requests also carry the ``accNum`` header (the account's number within the login) -
  official client ``TradeLocker/tradelocker-python``, ``src/tradelocker/tradelocker_api.py``
  (``_get_headers``; ``_set_account_id_and_acc_num`` maps an ``accountId`` to its ``accNum``
  through ``GET /auth/jwt/all-accounts``).
* Refresh is ``POST {base}/auth/jwt/refresh`` with ``{"refreshToken": ...}``, unauthenticated;
  the answer carries a new ``accessToken`` **and** a new ``refreshToken``, and the client keeps
  both (``refresh_access_tokens``). Both tokens are JWTs whose ``exp`` claim is their expiry: the
  client refreshes when less than 30 minutes are left and logs in again with the password once
  the refresh token's ``exp`` has passed (``get_access_token``, ``utils.time_to_token_expiry``).

UNVERIFIED (no document found): the token lifetimes (read from ``exp``, never assumed); whether
a used refresh token stops working; the status of an expired-token answer (HTTP 401 is assumed,
as the docs' "Bearer JWT" security scheme implies); an account lock after repeated bad logins.

Choices (the why):

* ``accNum`` comes from ``credential.api_key`` (digits, not secret). A login here is one request
  (``/auth/jwt/token``) and the protocol keeps no state between login steps, so the vault cannot
  look the number up itself; the user reads it next to the ``accountId`` in TradeLocker (or from
  ``GET /auth/jwt/all-accounts``). It is a plain header, not a ``RedactedHeader``: a one-digit
  value scrubbed from every answer would corrupt the answers.
* ``refresh_rotates`` is True: the refresh answer carries a new refresh token, so the vault
  treats the old one as spent (the safe reading of an undocumented rule). A refused refresh is
  ``ReauthorizationNeeded``; a 5xx is ``VenueUnavailable``.
* ``retry_safe_on_expiry`` is False: no TradeLocker document says a request refused for an
  expired token was not executed, so the order is never resent (the caller gets the ambiguity).
* ``renew_margin_ms`` is the official client's 30 minutes.
* The ``accNum`` and the email are checked before a login is sent, so a misconfigured
  credential never spends one of the account's bad-login attempts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import jwt

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import PreparedRequest, VenueCredential
from vault_server.brokers.lifecycle import (
    Answer,
    Lifecycle,
    LoginRefused,
    ReauthorizationNeeded,
    SessionContext,
    SessionTokens,
    with_headers,
)
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InvalidArgument, VenueUnavailable

RENEW_MARGIN_MS = 30 * 60_000  # the official client's margin (get_access_token)
_ACC_NUM = re.compile(r"[0-9]{1,9}")
_SERVER = re.compile(r"[A-Za-z0-9._ -]{1,128}")
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_JSON = (("Accept", "application/json"), ("Content-Type", "application/json"))


class TradeLockerSession:
    """The ``SessionProtocol`` of the TradeLocker REST API (see the module doc)."""

    lifecycle = Lifecycle.PASSWORD_SESSION
    renew_margin_ms = RENEW_MARGIN_MS
    refresh_rotates = True
    retry_safe_on_expiry = False

    def login(self, credential: VenueCredential, ctx: SessionContext) -> PreparedRequest:
        """``POST /auth/jwt/token`` with the email, password and server name."""
        acc_num(credential)
        body = {"email": email(credential), "password": _password(credential),
                "server": server(credential)}  # fmt: skip
        return PreparedRequest(
            "POST", ctx.base_url + "/auth/jwt/token", _JSON, hc.compact_json(body)
        )

    def parse_login(
        self, answer: Answer, credential: VenueCredential, ctx: SessionContext
    ) -> SessionTokens:
        """The session; refused credentials raise ``LoginRefused`` (counted by the breaker)."""
        _raise_if_down("login", answer.status)
        if answer.status not in (200, 201):
            raise LoginRefused(
                "TradeLocker refused the login", metadata={"status": str(answer.status)}
            )
        return _tokens(answer, "login")

    def refresh(
        self, tokens: SessionTokens, credential: VenueCredential, ctx: SessionContext
    ) -> PreparedRequest | None:
        """``POST /auth/jwt/refresh`` with the refresh token (None: log in again)."""
        token = tokens.values.get("refresh")
        if not token:
            return None
        body = hc.compact_json({"refreshToken": token})
        return PreparedRequest("POST", ctx.base_url + "/auth/jwt/refresh", _JSON, body)

    def parse_refresh(
        self, answer: Answer, previous: SessionTokens, credential: VenueCredential,
        ctx: SessionContext,
    ) -> SessionTokens:  # fmt: skip
        """The renewed session; a refused refresh token is ``ReauthorizationNeeded``."""
        _raise_if_down("refresh", answer.status)
        if answer.status not in (200, 201):
            raise ReauthorizationNeeded(
                "TradeLocker refused the refresh token", metadata={"status": str(answer.status)}
            )
        return _tokens(answer, "refresh")

    def authorize(
        self, request: PreparedRequest, tokens: SessionTokens, credential: VenueCredential
    ) -> PreparedRequest:
        """``Authorization: Bearer <access>`` (redacted) and the ``accNum`` header added."""
        bearer = hc.RedactedHeader("Bearer " + tokens.values["access"])
        return with_headers(request, (("Authorization", bearer), ("accNum", acc_num(credential))))

    def expired(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """HTTP 401: the access token is no longer accepted (UNVERIFIED status, see module)."""
        return status == 401


def acc_num(credential: VenueCredential) -> str:
    """The ``accNum`` header value, kept in ``credential.api_key`` (see the module doc)."""
    if not isinstance(credential.api_key, str) or not _ACC_NUM.fullmatch(credential.api_key):
        raise InvalidArgument("credential.api_key", "must be the TradeLocker accNum (digits)")
    return credential.api_key


def email(credential: VenueCredential) -> str:
    value = credential.username
    if not isinstance(value, str) or "@" not in value:
        raise InvalidArgument("credential.username", "must be the TradeLocker login email")
    return sc.header_token(value, "credential.username")


def server(credential: VenueCredential) -> str:
    value = credential.server
    if not isinstance(value, str) or not _SERVER.fullmatch(value) or value != value.strip():
        raise InvalidArgument("credential.server", "must be the TradeLocker server name")
    return value


def _password(credential: VenueCredential) -> str:
    """The password as the JSON string the login sends (a JSON string is Unicode text)."""
    try:
        return keys.require_secret(credential.secret, "credential.secret").reveal().decode()
    except UnicodeDecodeError:
        raise InvalidArgument("credential.secret", "must be UTF-8 text") from None


def _tokens(answer: Answer, step: str) -> SessionTokens:
    """Both JWTs of a login or refresh answer, with their ``exp`` claims as the expiries."""
    data = answer.json()
    if not isinstance(data, dict):
        raise _unavailable(step, answer.status)
    access, refresh = data.get("accessToken"), data.get("refreshToken")
    return SessionTokens(
        values={"access": _jwt(access, step), "refresh": _jwt(refresh, step)},
        expires_at_ms=_expiry_ms(access, step),
        refresh_expires_at_ms=_expiry_ms(refresh, step),
    )


def _jwt(value: object, step: str) -> str:
    if not isinstance(value, str) or len(value) > 8192 or not _JWT.fullmatch(value):
        raise VenueUnavailable(f"the TradeLocker {step} answer carries no usable token")
    return value


def _expiry_ms(token: object, step: str) -> int:
    """The JWT ``exp`` in epoch ms, read without verifying (the vault is not the audience)."""
    try:
        exp = jwt.decode(_jwt(token, step), options={"verify_signature": False})["exp"]
    except (jwt.InvalidTokenError, KeyError, TypeError):
        raise VenueUnavailable(f"the TradeLocker {step} token has no expiry") from None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise VenueUnavailable(f"the TradeLocker {step} token has no expiry")
    return int(exp * 1000)


def _raise_if_down(step: str, status: int) -> None:
    if status >= 500 or status == 429:
        raise _unavailable(step, status)


def _unavailable(step: str, status: int) -> VenueUnavailable:
    return VenueUnavailable(
        f"TradeLocker did not complete the {step}", metadata={"status": str(status)}
    )


SESSION = TradeLockerSession()
