"""MetaApi's derived-token lifecycle: the vault holds the user's broad token and mints narrow ones.

The user gives the vault a MetaApi API token (``credential.secret``) - typically the admin token
from https://app.metaapi.cloud/api-access/generate-token, which "is usually allowed to access all
MetaApi resources" (SDK ``docs/tokenManagementApi.md``), account management included: creating,
reading and deleting trading accounts, whose MetaTrader passwords MetaApi holds. That broad token
never goes near an order. Each "login" is a mint (Token Management API, SDK
``lib/clients/metaApi/tokenManagement.client.es6`` of npm ``metaapi.cloud-sdk`` 29.3.2)::

    POST https://profile-api-v1.agiliumtrade.agiliumtrade.ai/users/current/narrow-down-auth-token
         ?validity-in-hours=N
    auth-token: <broad token>
    {"applications": ["metaapi-api"], "resources": [{"entity": "account", "id": <account id>}]}
    -> {"token": "<narrowed JWT>"}

with the simplified access rules (``applications``, ``roles``, ``resources``) of the same doc:
``metaapi-api`` is the MetaApi client API (REST and websocket trading and terminal state; the
doc's read-only example ``{applications: ['metaapi-api'], roles: ['reader'], resources: [...]}``),
``trading-account-management-api`` (the provisioning API) is left out, and the only resource is
the one MetaTrader account. ``roles`` is left out (all roles of that application on that
account): the name of the trading role is not in the SDK or its docs (UNVERIFIED: ``writer``), and
a wrong name would make every mint fail or mint a read-only token. Validity: :data:`VALIDITY_HOURS`
(the API's default is 24 h); the narrowed token's expiry is that, or its JWT ``exp`` if earlier.
A minted token is checked before it is kept: when its JWT carries ``accessRules`` (the payload
the SDK's ``areTokenResourcesNarrowedDown`` reads), every rule must be for ``metaapi-api`` and
every resource narrowed to this account - a broader token is refused, never attached.

There is no refresh: a new token is minted (``refresh`` returns None). Each proxied request
carries ``auth-token: <narrowed>`` (a ``RedactedHeader``). "An API request will produce error
401 if ... the token specified in auth-token header turned out to be invalid and the
authorization failed" (https://metaapi.cloud/docs/client/restApi/auth/ and the 401 rows of every
client REST page): 401 is ``expired``. 403 ("method or resource access permissions are
missing") is not: minting again would give the same rules.

``retry_safe_on_expiry`` is False: the docs say a 401 means authorization failed, not, in so many
words, that a trade command answered 401 never reached the terminal. Tokens are renewed
:data:`RENEW_MARGIN_MS` before they end, so a 401 on the order path means revocation, rare enough
to hand back to the caller rather than risk a second order.

Mint answers: 200/201 ``{"token"}`` -> session; 401/403 (the held token is invalid, revoked, or
itself too narrow to mint for this account) and other 4xx but 429 -> ``LoginRefused``;
429, 5xx, non-JSON, no token -> ``VenueUnavailable``.

Hosts: the mint goes to the profile API, a second origin beside the trading host
(``metaapi.py``). When the engine's ``SessionContext.base_url`` is a MetaApi host the mint goes to
:data:`PROFILE_API`; when it is an override (a loopback stub serving both APIs) the mint path is
taken relative to it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

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

PROFILE_API = "https://profile-api-v1.agiliumtrade.agiliumtrade.ai"
MINT_PATH = "/users/current/narrow-down-auth-token"
APPLICATION = "metaapi-api"
VALIDITY_HOURS = 2
RENEW_MARGIN_MS = 10 * 60_000
_HOUR_MS = 3_600_000
_METAAPI_DOMAIN = ".agiliumtrade.ai"
_ACCOUNT_ID = re.compile(r"[0-9A-Za-z-]{8,64}")
_TOKEN = re.compile(r"[\x21-\x7e]{16,8192}")


def account_id(credential: VenueCredential) -> str:
    """The MetaApi account id (``credential.account_id``): 8-64 of ``A-Z a-z 0-9 -``."""
    value = credential.account_id
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        raise InvalidArgument("credential.account_id", "must be a MetaApi account id")
    return value


def mint_base(ctx: SessionContext) -> str:
    """The profile API for a MetaApi host; the override itself for anything else (a stub)."""
    host = (urlsplit(ctx.base_url).hostname or "").lower()
    return PROFILE_API if host.endswith(_METAAPI_DOMAIN) else ctx.base_url.rstrip("/")


class MetaApiSession:
    """The derived-token :class:`~vault_server.brokers.lifecycle.SessionProtocol` of MetaApi."""

    lifecycle = Lifecycle.DERIVED_TOKEN
    # Tokens are minted on the profile API, not the trading host (engine: allowed for logins).
    auth_origins = frozenset({PROFILE_API})
    renew_margin_ms = RENEW_MARGIN_MS
    refresh_rotates = False
    retry_safe_on_expiry = False

    def login(self, credential: VenueCredential, ctx: SessionContext) -> PreparedRequest:
        """The mint request: the broad token asks for one narrowed to this account's trading."""
        broad = hc.secret_header(credential.secret, "credential.secret")
        rules = {"applications": [APPLICATION],
                 "resources": [{"entity": "account", "id": account_id(credential)}]}  # fmt: skip
        url = f"{mint_base(ctx)}{MINT_PATH}?validity-in-hours={VALIDITY_HOURS}"
        headers = (("auth-token", broad), ("Accept", "application/json"),
                   ("Content-Type", "application/json"))  # fmt: skip
        return PreparedRequest("POST", url, headers, hc.compact_json(rules),
                               expire_at_ms=ctx.now_ms + 60_000)  # fmt: skip

    def parse_login(
        self, answer: Answer, credential: VenueCredential, ctx: SessionContext
    ) -> SessionTokens:
        """The narrowed token, checked to be no broader than asked, and when it ends."""
        _refuse_failures(answer)
        data = answer.json()
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise VenueUnavailable("MetaApi answered the mint without a token")
        claims = jwt_claims(token)
        _check_narrowed(claims, account_id(credential))
        expires = ctx.now_ms + VALIDITY_HOURS * _HOUR_MS
        exp = claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            expires = min(expires, int(exp * 1000))
        return SessionTokens(values={"token": token}, expires_at_ms=expires,
                             facts={"accountId": account_id(credential)})  # fmt: skip

    def refresh(
        self, tokens: SessionTokens, credential: VenueCredential, ctx: SessionContext
    ) -> PreparedRequest | None:
        return None  # a narrowed token is never refreshed: another one is minted

    def parse_refresh(
        self, answer: Answer, previous: SessionTokens, credential: VenueCredential,
        ctx: SessionContext,
    ) -> SessionTokens:  # fmt: skip
        raise ReauthorizationNeeded("MetaApi narrowed tokens are minted again, never refreshed")

    def authorize(
        self, request: PreparedRequest, tokens: SessionTokens, credential: VenueCredential
    ) -> PreparedRequest:
        token = tokens.values.get("token")
        if not token:
            raise InternalError("the MetaApi session holds no narrowed token")
        return with_headers(request, (("auth-token", hc.RedactedHeader(token)),))

    def expired(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        return status == 401


def _refuse_failures(answer: Answer) -> None:
    status = answer.status
    if status == 429 or status >= 500:
        raise VenueUnavailable("MetaApi could not mint a token", metadata={"status": str(status)})
    if 400 <= status < 500:
        raise LoginRefused(
            "MetaApi refused to mint a narrowed token with the stored API token",
            metadata={"status": str(status)},
        )
    if status not in (200, 201):
        raise VenueUnavailable("MetaApi answered the mint oddly", metadata={"status": str(status)})


def jwt_claims(token: str) -> dict[str, Any]:
    """The JWT payload, unverified (only to read ``exp`` and ``accessRules``); {} if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _check_narrowed(claims: Mapping[str, Any], account: str) -> None:
    """Refuse a token whose rules reach another application or any resource but the account."""
    rules = claims.get("accessRules")
    if rules is None:
        return  # not a rules-carrying JWT: the mint request itself asked for the narrow rules
    ok = isinstance(rules, list) and bool(rules) and all(_rule_ok(r, account) for r in rules)
    if not ok:
        raise VenueUnavailable("MetaApi minted a token broader than the one asked for")


def _rule_ok(rule: object, account: str) -> bool:
    if not isinstance(rule, dict):
        return False
    methods, resources = rule.get("methods"), rule.get("resources")
    if not isinstance(methods, list) or not isinstance(resources, list) or not resources:
        return False
    return all(isinstance(m, str) and m.startswith(APPLICATION + ":") for m in methods) and all(
        isinstance(r, str) and r.startswith("account:") and r.rsplit(":", 1)[-1] == account
        for r in resources
    )


SESSION = MetaApiSession()
