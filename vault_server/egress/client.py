"""Egress to venues: TLS verified, per-venue base-URL allow-list, bounded in time and size.

A request may only go to a base URL that its venue module names for the credential's environment,
or that configuration overrides (tests point venues at loopback stubs this way).

**Time.** The whole exchange - pool wait, connect, send, and reading the full answer - is bounded
by the smaller of ``signing.egress_timeout_s`` and what is left of the RPC deadline (less a small
margin so the vault can still answer). httpx's own timeouts are per network operation, so a venue
dripping a byte at a time would never trip them: proxied calls (``execute``) run on the event
loop under one ``asyncio.timeout``, and the blocking ``send`` (attestation) checks the bound
between reads. Past it: DEADLINE_EXCEEDED ``VENUE_TIMEOUT``; transport failures are
``VENUE_UNAVAILABLE``. The request (which may carry a bearer secret) never appears in an error.

**Isolation.** ``execute`` holds no storage thread or database connection while it waits: it
awaits the venue on the event loop. Each venue origin has its own connection pool, and each
workspace may have ``max_in_flight_per_workspace`` proxied exchanges in flight (``claim``), so one
workspace's slow venue cannot take what other workspaces and venues need.

**Size and secrets.** The body is streamed and cut at ``max_body`` (the response says so), and
every form of the secrets the request carried is scrubbed from headers and body (``relay``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from vault_server.core.errors import EndpointNotAllowed, VenueTimeout, VenueUnavailable
from vault_server.egress import logs
from vault_server.egress.limits import InFlight, Slot
from vault_server.egress.redaction import Scrubber
from vault_server.egress.relay import Capped, VenueResponse, read_async, read_sync, relay

__all__ = ["EgressClient", "OutboundRequest", "VenueResponse", "allowed_origins", "origin"]

MAX_BODY = 1 << 20
_MARGIN_S = 0.25  # kept back from the caller's deadline to answer with a clear error
_MIN_BOUND_S = 0.05


class OutboundRequest(Protocol):
    """What egress sends (a venue module's prepared request satisfies it)."""

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def body(self) -> bytes: ...


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class EgressClient:
    def __init__(
        self,
        *,
        timeout_s: float,
        max_connections: int = 32,
        max_body: int = MAX_BODY,
        max_in_flight_per_workspace: int = 16,
    ) -> None:
        self._timeout = timeout_s
        self._max_body = max_body
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=8)
        self._client = httpx.Client(
            verify=True, follow_redirects=False, limits=self._limits, trust_env=False
        )
        self._pools: dict[str, httpx.AsyncClient] = {}  # one per venue origin
        self._async_transport: httpx.AsyncBaseTransport | None = None  # tests: a fake DNS
        self._in_flight = InFlight(max_in_flight_per_workspace)
        logs.install()

    def claim(self, workspace: str) -> Slot:
        """One of ``workspace``'s in-flight slots, or ``CONCURRENCY_LIMITED`` (event loop only)."""
        return self._in_flight.claim(workspace)

    def _bound(self, remaining_s: float | None) -> tuple[float, str]:
        if remaining_s is None or self._timeout <= remaining_s - _MARGIN_S:
            return self._timeout, "egressTimeout"
        return max(_MIN_BOUND_S, remaining_s - _MARGIN_S), "callDeadline"

    def _prepare(
        self, request: OutboundRequest, allowed: frozenset[str], remaining_s: float | None
    ) -> tuple[str, float, dict[str, str], list[tuple[str, str]]]:
        where = origin(request.url)
        if where not in allowed:
            raise EndpointNotAllowed(
                "the request's host is not an allowed base URL for this venue",
                metadata={"origin": where},
            )
        bound, limit = self._bound(remaining_s)
        meta = {"origin": where, "limit": limit, "timeoutS": f"{bound:.3g}"}
        headers = list(request.headers)
        if not any(name.lower() == "accept-encoding" for name, _ in headers):
            headers.append(("Accept-Encoding", "identity"))  # the cap counts decoded bytes
        return where, bound, meta, headers

    async def execute(
        self, request: OutboundRequest, allowed: frozenset[str], remaining_s: float | None,
        secrets: Iterable[str] = (),
    ) -> VenueResponse:  # fmt: skip
        """Send on the event loop; the whole exchange within the bound."""
        where, bound, meta, headers = self._prepare(request, allowed, remaining_s)
        scrubber = Scrubber(secrets)
        body = Capped(self._max_body, scrubber.longest)
        pool = self._pools.get(where)
        if pool is None:
            pool = self._pools[where] = httpx.AsyncClient(
                verify=True, follow_redirects=False, limits=self._limits, trust_env=False,
                transport=self._async_transport,
            )  # fmt: skip
        try:
            async with asyncio.timeout(bound):
                async with pool.stream(
                    request.method, request.url, headers=headers,
                    content=request.body or None, timeout=bound,
                ) as response:  # fmt: skip
                    await read_async(response.aiter_bytes(), body)
                    status, got = response.status_code, list(response.headers.items())
        except (TimeoutError, httpx.TimeoutException):
            raise VenueTimeout(
                "the venue did not answer within the egress bound", metadata=meta
            ) from None
        except httpx.HTTPError as exc:
            raise _unavailable(where, exc) from None
        return relay(status, got, body, scrubber)

    def send(
        self, request: OutboundRequest, allowed: frozenset[str], remaining_s: float | None,
        secrets: Iterable[str] = (),
    ) -> VenueResponse:  # fmt: skip
        """Blocking send (attestation, on a storage thread): the bound is checked between reads,
        so it may be overrun by at most one read's timeout."""
        where, bound, meta, headers = self._prepare(request, allowed, remaining_s)
        scrubber = Scrubber(secrets)
        body = Capped(self._max_body, scrubber.longest)
        deadline = time.monotonic() + bound
        try:
            with self._client.stream(
                request.method, request.url, headers=headers, content=request.body or None,
                timeout=bound,
            ) as response:  # fmt: skip
                if not read_sync(response.iter_bytes(), body, deadline):
                    raise TimeoutError
                status, got = response.status_code, list(response.headers.items())
        except (TimeoutError, httpx.TimeoutException):
            raise VenueTimeout(
                "the venue did not answer within the egress bound", metadata=meta
            ) from None
        except httpx.HTTPError as exc:
            raise _unavailable(where, exc) from None
        return relay(status, got, body, scrubber)

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def _unavailable(where: str, exc: Exception) -> VenueUnavailable:
    return VenueUnavailable(
        "the venue could not be reached in time",
        metadata={"origin": where, "error": exc.__class__.__name__},
    )


def allowed_origins(default_url: str, overrides: Mapping[str, str], venue: str) -> frozenset[str]:
    """The venue's own base URL, or the configured override in its place."""
    if venue in overrides:
        return frozenset({origin(overrides[venue])})
    return frozenset({origin(default_url)})
