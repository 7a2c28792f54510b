"""Egress to venues: one pooled httpx client, TLS verified, per-venue base-URL allow-list.

A request may only go to a base URL that its venue module names for the credential's environment,
or that configuration overrides (tests point venues at loopback stubs this way). The timeout is
the smaller of the configured egress timeout and what is left of the RPC deadline. Transport
failures become ``VENUE_UNAVAILABLE``; the request itself (which may carry a bearer secret) never
appears in an error or log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from vault_server.core.errors import EndpointNotAllowed, VenueUnavailable

# Response headers never relayed to callers.
_DROP = frozenset(
    {"set-cookie", "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-authenticate"}
)


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


@dataclass(frozen=True)
class VenueResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class EgressClient:
    def __init__(
        self, *, timeout_s: float, max_connections: int = 32, max_body: int = 1 << 20
    ) -> None:
        self._timeout = timeout_s
        self._max_body = max_body
        self._client = httpx.Client(
            verify=True,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=8),
            trust_env=False,
        )

    def send(
        self,
        request: OutboundRequest,
        allowed_origins: frozenset[str],
        remaining_s: float | None,
    ) -> VenueResponse:
        if origin(request.url) not in allowed_origins:
            raise EndpointNotAllowed(
                "the request's host is not an allowed base URL for this venue",
                metadata={"origin": origin(request.url)},
            )
        timeout = (
            self._timeout if remaining_s is None else max(0.05, min(self._timeout, remaining_s))
        )
        try:
            response = self._client.request(
                request.method,
                request.url,
                headers=list(request.headers),
                content=request.body or None,
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise VenueUnavailable(
                "the venue could not be reached in time",
                metadata={"origin": origin(request.url), "error": exc.__class__.__name__},
            ) from None
        body = response.content[: self._max_body]
        headers = tuple((k, v) for k, v in response.headers.items() if k.lower() not in _DROP)
        return VenueResponse(response.status_code, headers, body)

    def close(self) -> None:
        self._client.close()


def allowed_origins(default_url: str, overrides: Mapping[str, str], venue: str) -> frozenset[str]:
    """The venue's own base URL, or the configured override in its place."""
    if venue in overrides:
        return frozenset({origin(overrides[venue])})
    return frozenset({origin(default_url)})
