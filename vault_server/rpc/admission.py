"""Admission of one call: deadline, identity, role, plane, reason and workspace grant.

Everything an RPC must pass before its servicer runs, in one place. Returns the domain
``CallContext``; raises a ``VaultError`` (which the interceptor audits as ``auth.denied`` and maps
to a status) otherwise.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vault_server.auth.authorizer import authorize_call, authorize_workspace
from vault_server.auth.identity import CallCredentials, IdentitySource, identify
from vault_server.auth.principal import Principal, PrincipalType
from vault_server.auth.rate_limit import RateLimiter
from vault_server.auth.rpc_roles import STREAMING, Plane
from vault_server.core.errors import (
    DeadlineRequired,
    InvalidArgument,
    PermissionDenied,
    ReasonRequired,
    Unauthenticated,
)
from vault_server.domain import Actor, ActorType, CallContext, workspace_of_name

REASON_HEADER = "x-pipvault-reason"
REQUEST_ID_HEADER = "x-request-id"
ON_BEHALF_HEADER = "x-pipvault-on-behalf-of"
FORWARDED_HEADER = "x-forwarded-for"
MAX_REASON = 1000
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_WORKSPACE_FIELDS = ("name", "parent", "credential", "routing_context", "workspace")


@dataclass(frozen=True)
class Limits:
    max_deadline_s: float
    max_stream_deadline_s: float
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True)
class Admitted:
    ctx: CallContext
    principal: Principal


def request_id_from(metadata: Mapping[str, str]) -> str:
    rid = metadata.get(REQUEST_ID_HEADER, "")
    return rid if _REQUEST_ID.fullmatch(rid) else secrets.token_hex(8)


def peer_address(raw_peer: str, metadata: Mapping[str, str], limits: Limits) -> str:
    """``ipv4:10.0.0.1:5000`` -> ``10.0.0.1``; forwarded addresses only from trusted proxies.

    ``x-forwarded-for`` is read from the right: each proxy appends the address it received the
    connection from, so only the entries our trusted proxies added can be believed, and the
    client is the rightmost entry that is not a trusted proxy. The leftmost entry is whatever the
    client chose to send (a spoofed audit peer, and a way around per-peer rate limits). An entry
    that is not an IP address where one is needed falls back to the connecting proxy itself."""
    kind, _, rest = raw_peer.partition(":")
    if kind == "unix":
        return "unix"
    host = rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else raw_peer
    forwarded = metadata.get(FORWARDED_HEADER, "")
    if forwarded and limits.trusted_proxies:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host
        if any(ip in net for net in limits.trusted_proxies):
            return _forwarded_client(forwarded, limits) or host
    return host


def _forwarded_client(forwarded: str, limits: Limits) -> str | None:
    hop: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    for entry in reversed(forwarded.split(",")):
        try:
            hop = ipaddress.ip_address(entry.strip())
        except ValueError:
            return None
        if not any(hop in net for net in limits.trusted_proxies):
            return str(hop)
    return None if hop is None else str(hop)  # every hop is one of ours: the farthest


def _workspace_in(request: Any) -> str | None:
    for field in _WORKSPACE_FIELDS:
        value = getattr(request, field, None)
        if isinstance(value, str) and value:
            return workspace_of_name(value)
    flt = getattr(request, "filter", None)
    value = getattr(flt, "workspace", None)
    if isinstance(value, str) and value:
        return workspace_of_name(value)
    return None


class Admission:
    def __init__(
        self,
        sources: list[IdentitySource],
        limits: Limits,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self._sources = sources
        self._limits = limits
        self._rate = rate_limiter

    def identify(self, metadata: Mapping[str, str], spiffe_ids: tuple[str, ...]) -> Principal:
        """The caller's principal; raises UNAUTHENTICATED, or RATE_LIMITED past its rate."""
        entry = identify(self._sources, CallCredentials(metadata, spiffe_ids))
        if entry is None:
            raise Unauthenticated("a valid identity is required")
        if self._rate is not None:
            self._rate.check(entry.principal.id, entry.rate_limit_per_s)
        return entry.principal

    def admit(
        self,
        *,
        method: str,
        plane: Plane,
        request: Any,
        metadata: Mapping[str, str],
        time_remaining: float | None,
        principal: Principal,
        peer: str,
        request_id: str,
    ) -> CallContext:
        if time_remaining is None:
            raise DeadlineRequired("every call must carry a deadline")
        cap = (
            self._limits.max_stream_deadline_s
            if method in STREAMING
            else self._limits.max_deadline_s
        )
        deadline = time.monotonic() + min(time_remaining, cap)
        rule = authorize_call(principal, method, plane)
        reason = (getattr(request, "reason", "") or metadata.get(REASON_HEADER, "")).strip()
        if len(reason) > MAX_REASON:
            raise InvalidArgument("reason", f"at most {MAX_REASON} characters")
        if rule.reason_required and not reason:
            raise ReasonRequired(
                "a reason is required (field `reason` or metadata x-pipvault-reason)"
            )
        on_behalf = metadata.get(ON_BEHALF_HEADER, "").strip()
        if on_behalf and not principal.may_assert_on_behalf_of:
            raise PermissionDenied("the caller may not act on behalf of a user")
        ws = _workspace_in(request)
        if ws is not None:
            authorize_workspace(principal, ws)
        return CallContext(
            actor=actor_of(principal, on_behalf[:255]),
            peer=peer,
            reason=reason,
            request_id=request_id,
            method=method,
            workspaces=None if principal.all_workspaces else principal.workspaces,
            deadline=deadline,
        )


def actor_of(principal: Principal | None, on_behalf: str = "") -> Actor:
    if principal is None:
        return Actor(ActorType.SERVICE, "anonymous")
    kind = ActorType.USER if principal.type is PrincipalType.USER else ActorType.SERVICE
    return Actor(kind, principal.id, on_behalf)


def denied_context(
    *, principal: Principal | None, method: str, peer: str, request_id: str, reason: str
) -> CallContext:
    """Context for auditing a refused call (bounded so auditing cannot hang the refusal)."""
    return CallContext(
        actor=actor_of(principal),
        peer=peer,
        reason=reason[:MAX_REASON],
        request_id=request_id,
        method=method,
        deadline=time.monotonic() + 2.0,
    )
