"""How the session engine reaches venues: logins and refreshes over egress HTTP (to the venue's
base URL, or its documented OAuth host), proxied requests over HTTP or a venue's persistent
transport (cTrader: one connection per replica and host carrying every account), and the
onboarding exchange of an OAuth consent's code.

Answers to logins and refreshes are read here and never relayed; a proxied answer is scrubbed
of every token the session holds before it leaves (egress ``relay``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from vault_server.brokers.base import (
    Environment,
    PreparedRequest,
    Venue,
    VenueCredential,
)
from vault_server.brokers.lifecycle import (
    Answer,
    Application,
    Lifecycle,
    SessionContext,
    SessionProtocol,
    SessionTokens,
)
from vault_server.brokers.registry import adapter_for
from vault_server.brokers.revealed import secret_values
from vault_server.core.clock import Clock, to_millis
from vault_server.core.errors import (
    InternalError,
    VenueLoginRefused,
    VenueTimeout,
    VenueUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.domain import CallContext
from vault_server.egress.client import EgressClient, VenueResponse, allowed_origins
from vault_server.egress.ctrader_grant import grant_of
from vault_server.egress.relay import scrubbed

MAX_LOGIN_STEPS = 4
SCOPE_TRADE = 1  # cTrader ProtoOAClientPermissionScope
Applications = Callable[[Venue, Environment], Application]


class Transport(Protocol):
    """A venue's persistent connection (``egress``), named by ``SessionProtocol.transport``:
    it takes the authorized request (the protocol put the session's token and account in it)
    and the platform application, and answers like an HTTP venue."""

    async def send(
        self, request: PreparedRequest, *, client_id: str, client_secret: Secret,
        timeout_s: float | None,
    ) -> VenueResponse: ...  # fmt: skip

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Route:
    """Where one credential's session traffic goes."""

    venue: Venue
    environment: Environment
    protocol: SessionProtocol
    origins: frozenset[str]  # the trading base URL's (or the configured one's)
    base_url: str
    base_overridden: bool


class SessionWire:
    def __init__(
        self, egress: EgressClient, clock: Clock, applications: Applications | None = None,
        transports: Mapping[str, Transport] | None = None,
        venue_base_urls: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        self._egress = egress
        self._clock = clock
        self._applications = applications
        self._transports = dict(transports or {})
        self._overrides = dict(venue_base_urls or {})

    def context(self, route: Route) -> SessionContext:
        application = None
        if route.protocol.lifecycle is Lifecycle.OAUTH_CONSENT:
            if self._applications is None:
                raise InternalError("OAuth sessions need the platform applications")
            application = self._applications(route.venue, route.environment)
        return SessionContext(
            now_ms=to_millis(self._clock.now()), base_url=route.base_url,
            application=application, base_overridden=route.base_overridden,
        )  # fmt: skip

    def _auth_origins(self, route: Route) -> frozenset[str]:
        extra: frozenset[str] = getattr(route.protocol, "auth_origins", frozenset())
        return route.origins | (frozenset() if route.base_overridden else extra)

    async def call(self, ctx: CallContext, route: Route, request: PreparedRequest) -> VenueResponse:
        """A login or refresh exchange, bounded by the call's deadline."""
        try:
            return await self._egress.execute(
                request, self._auth_origins(route), ctx.remaining(), secrets=()
            )
        except VenueTimeout as err:
            raise VenueUnavailable(
                "the venue did not answer the login in time", metadata=err.metadata
            ) from None

    async def close(self) -> None:
        for transport in self._transports.values():
            await transport.close()

    async def send(
        self, ctx: CallContext, route: Route, request: PreparedRequest, tokens: SessionTokens,
        material: VenueCredential, sctx: SessionContext | None,
    ) -> VenueResponse:  # fmt: skip
        """The proxied request, authenticated with the session."""
        protocol = route.protocol
        authorized = protocol.authorize(request, tokens, material)
        name = getattr(protocol, "transport", "")
        if name:
            transport = self._transports.get(name)
            if transport is None or sctx is None or sctx.application is None:
                raise InternalError("the venue's transport is not wired")
            app = sctx.application
            answer = await transport.send(
                authorized, client_id=app.client_id, client_secret=app.client_secret,
                timeout_s=ctx.remaining(),
            )  # fmt: skip
            return scrubbed(answer, (*tokens.values.values(), app.client_secret.reveal_text()))
        scrub = (*secret_values(authorized.headers), *tokens.values.values())
        return await self._egress.execute(authorized, route.origins, ctx.remaining(), secrets=scrub)

    def exchange(
        self, ctx: CallContext, venue: Venue, environment: Environment, consent: VenueCredential
    ) -> SessionTokens:
        """Onboarding: exchange an OAuth consent's code for the grant (blocking, on a storage
        thread, like attestation). Nothing is stored here; the caller seals and stores it."""
        adapter = adapter_for(venue)
        protocol = adapter.session
        if protocol is None or protocol.lifecycle is not Lifecycle.OAUTH_CONSENT:
            raise InternalError("an OAuth exchange for a venue without OAuth")
        override = self._overrides.get(venue.value)
        base = (override or adapter.default_base_url(environment)).rstrip("/")
        route = Route(
            venue, environment, protocol, allowed_origins(base, self._overrides, venue.value),
            base, override is not None,
        )  # fmt: skip
        sctx = self.context(route)
        request = protocol.login(consent, sctx)
        for step in range(MAX_LOGIN_STEPS):
            try:
                answer = self._egress.send(request, self._auth_origins(route), ctx.remaining())
            except VenueTimeout as err:
                raise VenueUnavailable(
                    "the venue did not answer the code exchange in time", metadata=err.metadata
                ) from None
            result = protocol.parse_login(
                Answer(answer.status, answer.headers, answer.body, step), consent, sctx
            )
            if isinstance(result, SessionTokens):
                self._check_grant(ctx, route, sctx, consent, result)
                return result
            request = result
        raise VenueUnavailable("the venue's code exchange did not finish")

    def _check_grant(
        self, ctx: CallContext, route: Route, sctx: SessionContext, consent: VenueCredential,
        tokens: SessionTokens,
    ) -> None:  # fmt: skip
        """Require trading: a consent that grants viewing only, or not the account onboarded,
        is refused at onboarding (cTrader reports its scope over the Open API connection)."""
        if getattr(route.protocol, "transport", "") != "ctrader" or sctx.application is None:
            return
        grant = grant_of(
            route.base_url, sctx.application.client_id, sctx.application.client_secret,
            tokens.values.get("access", ""), ctx.remaining(),
        )  # fmt: skip
        if grant.scope != SCOPE_TRADE:
            raise VenueLoginRefused(
                "the consent grants viewing only: ask for the trading scope",
                metadata={"scope": "view"},
            )
        account = consent.account_id or ""
        if not account.isdigit() or int(account) not in grant.accounts:
            raise VenueLoginRefused(
                "the consent does not cover this trading account",
                metadata={"field": "material.account_id"},
            )
