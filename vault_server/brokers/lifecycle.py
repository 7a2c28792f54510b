"""Credential lifecycles: how a venue's login, refresh and session headers work, as pure functions.

Forex/CFD platforms have no per-request signature a retail user can get (issue 21): the vault
logs in (password session), exchanges an OAuth code and rotates the refresh token (OAuth
consent), or mints narrowed tokens from a broad one (derived token), and then attaches the
session's tokens to each proxied request. A :class:`SessionProtocol` describes one venue's side
of that - which request logs in, how its answer becomes :class:`SessionTokens`, how a session is
refreshed, which headers carry it, and which answers mean "your session is gone". It does no
I/O: the session engine (``vault_server/sessions``) sends what it builds through egress, seals
what it returns, and owns single-flight, fleet leases, backoff and the lockout breaker.

Errors a protocol raises from its parse functions:

* :class:`LoginRefused` - the venue refused the credentials (wrong password, bad API key, revoked
  consent). Counts toward the lockout breaker.
* :class:`ReauthorizationNeeded` - the refresh token (or consent) is no longer valid: a new
  consent or password is needed; the engine stops trying.
* ``VenueUnavailable`` (core.errors) - the venue answered 5xx or nonsense; a short backoff, not a
  bad login.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from vault_server.brokers.base import PreparedRequest, VenueCredential
from vault_server.core.errors import (
    ReauthorizationRequired,
    VenueLoginRefused,
    VenueUnavailable,
)
from vault_server.core.secret import Secret


class Lifecycle(enum.Enum):
    STATIC = "static"  # the stored secret authenticates every request
    PASSWORD_SESSION = "password_session"  # IG, TradeLocker, Match-Trader, DXtrade
    OAUTH_CONSENT = "oauth_consent"  # cTrader: code exchanged by the vault, rotating refresh
    DERIVED_TOKEN = "derived_token"  # MetaApi: narrowed tokens minted from a broad one


# What a protocol raises (the names venue modules use for the core errors).
LoginRefused = VenueLoginRefused
ReauthorizationNeeded = ReauthorizationRequired


@dataclass(frozen=True)
class SessionTokens:
    """What a login or refresh produced.

    Attributes:
        values: the secret tokens by name (``cst``, ``access``, ``refresh`` ...): sealed at rest,
            attached by :meth:`SessionProtocol.authorize`, scrubbed from every answer.
        expires_at_ms: when the session/access token stops working (epoch ms).
        refresh_expires_at_ms: when the refresh token stops working (None: none, or unknown).
        facts: non-secret values learnt at login (account ids, endpoints), kept with the tokens.
    """

    values: Mapping[str, str] = field(repr=False)
    expires_at_ms: int
    refresh_expires_at_ms: int | None = None
    facts: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "values": dict(self.values),
                "expiresAtMs": self.expires_at_ms,
                "refreshExpiresAtMs": self.refresh_expires_at_ms,
                "facts": dict(self.facts),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SessionTokens:
        data = json.loads(raw)
        return cls(
            values={str(k): str(v) for k, v in data["values"].items()},
            expires_at_ms=int(data["expiresAtMs"]),
            refresh_expires_at_ms=(
                None if data.get("refreshExpiresAtMs") is None else int(data["refreshExpiresAtMs"])
            ),
            facts={str(k): str(v) for k, v in data.get("facts", {}).items()},
        )


@dataclass(frozen=True)
class Answer:
    """A venue's answer to a login or refresh step (never relayed to a caller)."""

    status: int
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)
    step: int = 0  # 0 for the first request of a login, 1 for the next, ...

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def json(self) -> Any:
        """The body as JSON, or ``VenueUnavailable`` (a venue that answers nonsense is down)."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise VenueUnavailable(
                "the venue's login answer was not JSON", metadata={"status": str(self.status)}
            ) from None


@dataclass(frozen=True)
class Application:
    """A venue's OAuth platform application (client id and secret), held by the vault
    (``SetPlatformApplication``) and given to OAuth protocols for code exchange and refresh."""

    client_id: str
    client_secret: Secret = field(repr=False)


@dataclass(frozen=True)
class SessionContext:
    """Time and where to send, injected by the engine (protocols have no clock).

    ``base_overridden`` says ``base_url`` comes from configuration (tests: a loopback stub that
    also serves the venue's token endpoint); otherwise a venue whose OAuth host differs from its
    trading host (cTrader) sends logins to its own documented token host.
    """

    now_ms: int
    base_url: str  # scheme and host (and the venue's path prefix), no trailing slash
    application: Application | None = None  # OAuth venues: the platform application
    base_overridden: bool = False


# What a login step returns: the session, or the next request of a multi-step login.
Step = SessionTokens | PreparedRequest


class SessionProtocol(Protocol):
    """One venue's login, refresh and session headers."""

    lifecycle: Lifecycle
    # Renew when less than this is left of the access token (and of the refresh token).
    renew_margin_ms: int
    # A refresh consumes the refresh token it sends (cTrader): a refresh answered but not
    # written back loses the grant, so the engine marks it in flight before sending.
    refresh_rotates: bool
    # The venue guarantees that a request it answered with "session expired" was not executed,
    # so the engine may log in again and send the order once more.
    retry_safe_on_expiry: bool

    def login(self, credential: VenueCredential, ctx: SessionContext) -> PreparedRequest:
        """The first request of a login (password) or code exchange (OAuth)."""
        ...

    def parse_login(self, answer: Answer, credential: VenueCredential, ctx: SessionContext) -> Step:
        """The session, or the next request of the login (its answer comes back with step+1)."""
        ...

    def refresh(
        self, tokens: SessionTokens, credential: VenueCredential, ctx: SessionContext
    ) -> PreparedRequest | None:
        """The refresh request, or None when this venue (or this session) can only log in again."""
        ...

    def parse_refresh(
        self, answer: Answer, previous: SessionTokens, credential: VenueCredential,
        ctx: SessionContext,
    ) -> SessionTokens:  # fmt: skip
        ...

    def authorize(
        self, request: PreparedRequest, tokens: SessionTokens, credential: VenueCredential
    ) -> PreparedRequest:
        """``request`` with the session's headers added (every secret value a RedactedHeader)."""
        ...

    def expired(self, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """True when this answer to a proxied request means the session is no longer valid."""
        ...


# Optional protocol attributes the engine reads with ``getattr`` (absent: the defaults):
#
# ``auth_origins: frozenset[str]`` - origins (``https://host[:port]``) logins and refreshes may
#     go to besides the venue's trading base URL (cTrader: ``https://openapi.ctrader.com``).
# ``transport: str`` - the name of the egress transport that sends proxied requests instead of
#     HTTP (cTrader: ``"ctrader"``, one persistent connection per replica and host carrying every
#     account). A request for such a venue is a ``PreparedRequest`` whose URL path names the
#     message (``{base}/ProtoOANewOrderReq``) and whose body is the JSON payload.


def with_headers(request: PreparedRequest, extra: tuple[tuple[str, str], ...]) -> PreparedRequest:
    """``request`` with ``extra`` headers first (the session's), the request's own after."""
    return PreparedRequest(
        request.method, request.url, extra + request.headers, request.body, request.expire_at_ms
    )
