"""Small pieces of the session engine: its tuning, and how keys, answers, times, the system
actor and refusals are made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from vault_server.brokers.base import PreparedRequest, VenueCredential
from vault_server.brokers.lifecycle import Answer, Lifecycle, SessionProtocol, SessionTokens
from vault_server.core.errors import (
    ReauthorizationRequired,
    SessionBackoff,
    SessionLockedOut,
    VaultError,
)
from vault_server.core.secret import Secret
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.custody import session_binding
from vault_server.domain import Actor, ActorType, CallContext
from vault_server.egress.client import VenueResponse
from vault_server.sessions._store import LOCKED_OUT, NEEDS_REAUTHORIZATION, Refused, SessionKey
from vault_server.sessions._wire import Route


@dataclass(frozen=True)
class SessionSettings:
    lease_s: float = 30.0
    max_failed_logins: int = 3
    login_backoff_base_s: float = 1.0
    login_backoff_max_s: float = 300.0
    unavailable_backoff_s: float = 2.0

    def backoff(self, failures: int) -> float:
        return float(min(self.login_backoff_base_s * 2 ** max(failures - 1, 0),
                         self.login_backoff_max_s))  # fmt: skip


def _slot(key: SessionKey) -> tuple[str, str, int]:
    return key.workspace_id, key.credential_id, key.version


def _answer(response: VenueResponse, step: int) -> Answer:
    return Answer(response.status, response.headers, response.body, step)


def _binding(key: SessionKey, generation: int) -> EnvelopeBinding:
    return session_binding(key.workspace_id, key.credential_id, key.version, generation)


def _system(ctx: CallContext, reason: str) -> CallContext:
    """The engine acts as ``system`` on behalf of the caller whose order needed the session."""
    actor = Actor(ActorType.SYSTEM, "pipvault", on_behalf_of=ctx.actor.id)
    return replace(ctx, actor=actor, reason=reason)


def _refusal(decision: Refused, key: SessionKey) -> VaultError:
    meta = {"credential": key.credential}
    if decision.state == LOCKED_OUT:
        return SessionLockedOut(
            "logins to this credential's venue stopped after repeated failures", metadata=meta
        )
    if decision.state == NEEDS_REAUTHORIZATION:
        return ReauthorizationRequired(
            "the venue grant is lost: a new consent or password is needed", metadata=meta
        )
    meta["retryAfterS"] = f"{max(decision.retry_after_s, 0.0):.3g}"
    return SessionBackoff("logins to this credential's venue are backing off", metadata=meta)


OpenMaterial = Callable[[Secret], VenueCredential]
OAUTH = Lifecycle.OAUTH_CONSENT


def at_risk(protocol: SessionProtocol) -> bool:
    """A refresh of this venue consumes the only grant the vault has (no password behind it)."""
    return protocol.refresh_rotates and protocol.lifecycle is OAUTH


@dataclass(frozen=True)
class _Cached:
    generation: int
    tokens: SessionTokens


@dataclass(frozen=True)
class SessionUse:
    """One proxied request and what the engine needs to authenticate it."""

    key: SessionKey
    route: Route
    material: VenueCredential
    request: PreparedRequest
    open_material: OpenMaterial  # the sealed secret -> material (a login needs the password)

    @property
    def protocol(self) -> SessionProtocol:
        return self.route.protocol
