"""cTrader Open API OAuth consent: code exchange, rotating refresh, and the session on the wire.

Facts (https://help.ctrader.com/open-api/account-authentication/ and the official SDK
``spotware/OpenApiPy``, ``ctrader_open_api/auth.py`` and ``endpoints.py``):

* The user's consent (``https://id.ctrader.com/my/settings/openapi/grantingaccess/`` or
  ``https://openapi.ctrader.com/apps/auth``, scope ``accounts`` or ``trading``) redirects with a
  ``code`` that lives **one minute**.
* Exchange: ``GET https://openapi.ctrader.com/apps/token?grant_type=authorization_code&code=..
  &redirect_uri=..&client_id=..&client_secret=..``; refresh: ``GET .../apps/token?grant_type=
  refresh_token&refresh_token=..&client_id=..&client_secret=..``. The answer is JSON with
  ``accessToken``, ``tokenType``, ``expiresIn`` (2,628,000 s, about 30 days), ``refreshToken``,
  and ``errorCode`` / ``description`` when refused.
* "The refresh token is valid forever until you use it to refresh an access token or if you
  re-authorise" (https://help.ctrader.com/open-api/faq/): a refresh spends the refresh token it
  sends, so ``refresh_rotates`` is True and ``refresh_expires_at_ms`` is None.

The session on the wire: the trading host speaks WebSocket, so proxied requests go through the
``ctrader`` egress transport (``transport``), which authorises the account on its connection
(``ProtoOAAccountAuthReq``) with the access token. :meth:`CtraderSession.authorize` puts what the
transport needs into the request as headers that never reach the wire: ``Authorization: Bearer
<access>`` (a ``RedactedHeader``, so the engine scrubs it from answers like any bearer) and
``ctidTraderAccountId``. The transport answers **401** (body: the ``ProtoOAErrorRes`` JSON) when
the venue refused the token (``CH_ACCESS_TOKEN_INVALID``, ``OA_AUTH_TOKEN_EXPIRED``, or
``ACCOUNT_NOT_AUTHORIZED`` after a ``ProtoOAAccountsTokenInvalidatedEvent``); :meth:`expired`
is exactly that.

``retry_safe_on_expiry`` is True: the account is authorised before its message is written, and
a message for an account that is not authorised on the connection is answered with an error
instead of being processed (the server cannot route it to a trading account; that is what
``ACCOUNT_NOT_AUTHORIZED`` - "When account is not authorized", ``ProtoOAErrorCode`` - means).
The transport answers 401 only for those refusals, never for a dropped connection or an order
error, so a 401 means the order was not executed.

Token host: ``https://openapi.ctrader.com`` (``auth_origins``), unless the base URL is
configured (``SessionContext.base_overridden``: a loopback stub serves ``/apps/token`` itself).

UNVERIFIED: the HTTP status and ``errorCode`` names of refused exchanges (the protocol reads any
``errorCode`` as a refusal and any 5xx / 429 as the venue being down); whether a refresh ends the
previous access token (the transport re-authorises whenever the token changes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlencode

from vault_server.brokers import _http_common as hc
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
from vault_server.core.errors import InternalError, InvalidArgument, VenueUnavailable
from vault_server.core.secret import Secret

TOKEN_HOST = "https://openapi.ctrader.com"
TOKEN_PATH = "/apps/token"
ACCOUNT_HEADER = "ctidTraderAccountId"
RENEW_MARGIN_MS = 24 * 60 * 60_000  # a day before the ~30-day access token ends
# errorCodes that say the application itself was refused (a misconfigured client id or
# secret: counted like a bad login); any other refusal needs a new consent.
_CLIENT_REFUSED = frozenset({"INVALID_CLIENT", "UNAUTHORIZED_CLIENT", "CH_CLIENT_AUTH_FAILURE"})
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_ACCOUNT = re.compile(r"[0-9]{1,18}")
_REDIRECT = re.compile(r"https?://[\x21-\x7e]{1,2000}")
_ACCEPT = (("Accept", "application/json"),)


class CtraderSession:
    """The ``SessionProtocol`` of cTrader's OAuth consent (see the module doc)."""

    lifecycle = Lifecycle.OAUTH_CONSENT
    renew_margin_ms = RENEW_MARGIN_MS
    refresh_rotates = True
    retry_safe_on_expiry = True
    auth_origins = frozenset({TOKEN_HOST})
    transport = "ctrader"

    def login(self, credential: VenueCredential, ctx: SessionContext) -> PreparedRequest:
        """The code exchange (``grant_type=authorization_code``)."""
        code = _text(credential.authorization_code, "credential.authorization_code")
        redirect = credential.redirect_uri
        if not isinstance(redirect, str) or not _REDIRECT.fullmatch(redirect):
            raise InvalidArgument("credential.redirect_uri", "must be the app's redirect URL")
        return _token_request(ctx, (("grant_type", "authorization_code"), ("code", code),
                                    ("redirect_uri", redirect)))  # fmt: skip

    def parse_login(
        self, answer: Answer, credential: VenueCredential, ctx: SessionContext
    ) -> SessionTokens:
        """The session; a refused code needs a new consent (it is single-use and short-lived)."""
        return _tokens(answer, ctx, "code exchange")

    def refresh(
        self, tokens: SessionTokens, credential: VenueCredential, ctx: SessionContext
    ) -> PreparedRequest | None:
        """``grant_type=refresh_token`` with the (single-use) refresh token."""
        token = tokens.values.get("refresh")
        if not token:
            return None
        return _token_request(ctx, (("grant_type", "refresh_token"), ("refresh_token", token)))

    def parse_refresh(
        self, answer: Answer, previous: SessionTokens, credential: VenueCredential,
        ctx: SessionContext,
    ) -> SessionTokens:  # fmt: skip
        return _tokens(answer, ctx, "refresh")

    def authorize(
        self, request: PreparedRequest, tokens: SessionTokens, credential: VenueCredential
    ) -> PreparedRequest:
        """What the transport needs (never sent as HTTP headers; see the module doc)."""
        bearer = hc.RedactedHeader("Bearer " + tokens.values["access"])
        return with_headers(
            request, (("Authorization", bearer), (ACCOUNT_HEADER, _account(credential)))
        )

    def expired(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """The transport's 401: the venue refused the access token for this account."""
        return status == 401


def _account(credential: VenueCredential) -> str:
    value = credential.account_id
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        raise InvalidArgument("credential.account_id", "must be the ctidTraderAccountId (digits)")
    return value


def _text(secret: Secret | None, field: str) -> str:
    if secret is None:
        raise InvalidArgument(field, "is required")
    try:
        value = secret.reveal().decode()
    except UnicodeDecodeError:
        raise InvalidArgument(field, "must be text") from None
    if not _TOKEN.fullmatch(value):
        raise InvalidArgument(field, "must be printable ASCII")
    return value


def _token_request(ctx: SessionContext, grant: tuple[tuple[str, str], ...]) -> PreparedRequest:
    """``GET {token host}/apps/token?...&client_id&client_secret`` (the SDK's ``Auth``)."""
    app = ctx.application
    if app is None:
        raise InternalError("cTrader needs its platform application (client id and secret)")
    secret = app.client_secret.reveal().decode()
    query = urlencode((*grant, ("client_id", app.client_id), ("client_secret", secret)))
    host = ctx.base_url if ctx.base_overridden else TOKEN_HOST
    return PreparedRequest("GET", f"{host}{TOKEN_PATH}?{query}", _ACCEPT, b"")


def _tokens(answer: Answer, ctx: SessionContext, step: str) -> SessionTokens:
    """Access and refresh token of an exchange or refresh answer, or the refusal it is."""
    if answer.status >= 500 or answer.status == 429:
        raise VenueUnavailable(
            f"cTrader did not complete the {step}", metadata={"status": str(answer.status)}
        )
    data = answer.json()
    if not isinstance(data, dict):
        raise VenueUnavailable(f"the cTrader {step} answer was not an object")
    error = data.get("errorCode")
    if error or answer.status != 200:
        code = str(error or "") if isinstance(error, str) and error.isascii() else ""
        metadata = {"status": str(answer.status), "errorCode": code[:64]}
        if code in _CLIENT_REFUSED or answer.status == 401:
            raise LoginRefused("cTrader refused the platform application", metadata=metadata)
        raise ReauthorizationNeeded(f"cTrader refused the {step}: a new consent is needed",
                                    metadata=metadata)  # fmt: skip
    access, refresh, expires = (
        data.get("accessToken"),
        data.get("refreshToken"),
        data.get("expiresIn"),
    )
    if not _is_token(access) or not _is_token(refresh):
        raise VenueUnavailable(f"the cTrader {step} answer carries no usable token")
    if isinstance(expires, bool) or not isinstance(expires, int) or expires <= 0:
        raise VenueUnavailable(f"the cTrader {step} answer has no expiry")
    assert isinstance(access, str)
    assert isinstance(refresh, str)
    return SessionTokens(
        values={"access": access, "refresh": refresh},
        expires_at_ms=ctx.now_ms + expires * 1000,
        refresh_expires_at_ms=None,  # valid until used (FAQ)
    )


def _is_token(value: object) -> bool:
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


SESSION = CtraderSession()
