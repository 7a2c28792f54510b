"""The session engine: a venue session per credential, logged in and renewed inside the vault.

``send`` authenticates one proxied request with the credential's session and sends it:

1. **Tokens.** From memory while valid past the renewal margin; else, single-flight per
   credential in this replica (one ``asyncio.Lock``), the fleet's row decides
   (``_store.decide``): use the tokens another replica wrote, wait for the replica holding the
   renewal lease, refuse (locked out, needs reauthorization, backing off), or take the lease and
   renew - refresh when the venue offers it and the refresh token is still good, else log in with
   the sealed password. 100 concurrent orders on a cold credential cause one login.
2. **Write-back before use.** New tokens are sealed and written with their audit event, while
   the lease is still held, before any order uses them. A refresh token the venue rotates is
   marked in flight before it is sent; if the answer cannot be written back the grant is lost,
   so the credential moves to NEEDS_REAUTHORIZATION and pages once.
3. **Expiry on the wire.** When the venue answers an order with its "session expired", the
   session is renewed and the order sent once more only where the venue guarantees the refused
   request was not executed; otherwise the caller gets ``ORDER_OUTCOME_UNKNOWN`` and nothing is
   resent.
4. **Breaker.** A refused login counts; after ``max_failed_logins`` in a row the credential is
   LOCKED_OUT (no more logins, paged once) so the broker never locks the account. Between
   failures, and for ``unavailable_backoff_s`` after a venue that could not be reached, orders
   fail fast with ``SESSION_BACKOFF`` instead of logging in again.

Every login, refresh and state change is audited with actor ``system`` on behalf of the caller.
Tokens never leave: not in a response (scrubbed from the venue's answers), error, log or metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from vault_server.brokers.lifecycle import (
    LoginRefused,
    ReauthorizationNeeded,
    SessionContext,
    SessionProtocol,
    SessionTokens,
)
from vault_server.core.clock import Clock, to_millis
from vault_server.core.errors import (
    OrderOutcomeUnknown,
    VaultError,
    VenueUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.custody import at
from vault_server.domain import CallContext
from vault_server.egress.client import VenueResponse
from vault_server.keys import KeyManager
from vault_server.observability.metrics import Metrics
from vault_server.sessions._parts import (
    OAUTH,
    SessionSettings,
    SessionUse,
    _answer,
    _binding,
    _Cached,
    _refusal,
    _slot,
    _system,
    at_risk,
)
from vault_server.sessions._store import (
    Held,
    Leased,
    Refused,
    Renewed,
    SessionKey,
    SessionStore,
    Wait,
)
from vault_server.sessions._wire import MAX_LOGIN_STEPS, SessionWire

Offload = Callable[..., Awaitable[Any]]
_POLL_S = 0.05


class SessionEngine:
    def __init__(
        self, store: SessionStore, keys: KeyManager, wire: SessionWire, clock: Clock,
        offload: Offload, settings: SessionSettings, metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        self._metrics = metrics
        self._store = store
        self._keys = keys
        self._wire = wire
        self._clock = clock
        self._offload = offload
        self._settings = settings
        self._owner = "replica-" + secrets.token_hex(8)
        self._cache: dict[tuple[str, str, int], _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self, workspace_ids: frozenset[str] | None = None) -> None:
        """Drop cached tokens of these workspaces (all: None) after a revoke, freeze or reset
        anywhere in the fleet; the next order reads the shared row again."""
        for k in [k for k in self._cache if workspace_ids is None or k[0] in workspace_ids]:
            del self._cache[k]

    async def send(self, ctx: CallContext, use: SessionUse) -> VenueResponse:
        cached = await self._tokens(ctx, use, stale=None)
        response = await self._send(ctx, use, cached.tokens)
        if not self._expired(use.protocol, response):
            return response
        self._cache.pop(_slot(use.key), None)
        if not use.protocol.retry_safe_on_expiry:
            # Renewed now for the next order; this one may have executed, so it is not resent.
            with contextlib.suppress(VaultError):
                await self._tokens(ctx, use, stale=cached.generation)
            raise OrderOutcomeUnknown(
                "the venue ended the session during the order and does not say whether it "
                "was executed: query the order or position before retrying",
                metadata={"credential": use.key.credential},
            )
        renewed = await self._tokens(ctx, use, stale=cached.generation)
        response = await self._send(ctx, use, renewed.tokens)
        if self._expired(use.protocol, response):
            raise VenueUnavailable(
                "the venue refused a freshly renewed session",
                metadata={"credential": use.key.credential},
            )
        return response

    # --- tokens -------------------------------------------------------------------------------
    async def _tokens(self, ctx: CallContext, use: SessionUse, *, stale: int | None) -> _Cached:
        key = use.key
        margin_ms = use.protocol.renew_margin_ms
        found = self._fresh(key, margin_ms, stale)
        if found is not None:
            return found
        lock = self._locks.setdefault(key.credential_id, asyncio.Lock())
        async with lock:
            found = self._fresh(key, margin_ms, stale)
            if found is not None:
                return found
            system = _system(ctx, "venue session for a proxied order")
            while True:
                now = self._clock.now()
                decision = await self._offload(
                    self._store.decide, system, key, now=now, owner=self._owner,
                    lease_s=self._settings.lease_s, margin=dt.timedelta(milliseconds=margin_ms),
                    stale_generation=stale, rotates=at_risk(use.protocol),
                )  # fmt: skip
                if isinstance(decision, Held):
                    return await self._remember(key, decision.generation, decision.envelope)
                if isinstance(decision, Refused):
                    raise _refusal(decision, key)
                if isinstance(decision, Leased):
                    return await self._renew(system, use, decision)
                assert isinstance(decision, Wait)
                left = ctx.remaining()
                if left is not None and left <= _POLL_S:
                    raise VenueUnavailable(
                        "another replica is renewing this credential's venue session",
                        metadata={"credential": key.credential},
                    )
                await asyncio.sleep(_POLL_S)

    def _fresh(self, key: SessionKey, margin_ms: int, stale: int | None) -> _Cached | None:
        found = self._cache.get(_slot(key))
        if found is None or found.generation == stale:
            return None
        if found.tokens.expires_at_ms - margin_ms <= to_millis(self._clock.now()):
            del self._cache[_slot(key)]  # only while valid
            return None
        return found

    async def _open(self, envelope: bytes, key: SessionKey, generation: int) -> SessionTokens:
        """Session tokens from their envelope (off the event loop unless every key is local:
        a remote KMS is a network call)."""
        binding = _binding(key, generation)
        if self._keys.local_only:
            raw = self._keys.open(envelope, binding)
        else:
            raw = await self._offload(self._keys.open, envelope, binding)
        return SessionTokens.from_json(raw.reveal())

    async def _remember(self, key: SessionKey, generation: int, envelope: bytes) -> _Cached:
        cached = _Cached(generation, await self._open(envelope, key, generation))
        self._cache[_slot(key)] = cached
        return cached

    async def _renew(self, ctx: CallContext, use: SessionUse, lease: Leased) -> _Cached:
        """Log in or refresh under the lease; write back before anything uses the tokens."""
        key, protocol = use.key, use.protocol
        now = self._clock.now()
        sctx = self._wire.context(use.route)
        previous = (
            await self._open(lease.envelope, key, lease.generation)
            if lease.envelope is not None
            else None
        )
        refresh = None
        if previous is not None and (
            previous.refresh_expires_at_ms is None
            or previous.refresh_expires_at_ms - protocol.renew_margin_ms > sctx.now_ms
        ):
            refresh = protocol.refresh(previous, use.material, sctx)
        action = "credential.session.refresh" if refresh is not None else "credential.session.login"
        # Only a grant without a password behind it can be lost by a refresh that is answered
        # but not written back (OAuth): a password session just logs in again.
        rotating = refresh is not None and at_risk(protocol)
        try:
            if rotating and not await self._offload(
                self._store.mark_refreshing, ctx, key, self._owner
            ):
                raise VenueUnavailable(
                    "the session lease was lost", metadata={"credential": key.credential}
                )
            tokens = None
            if refresh is not None and previous is not None:
                answer = await self._wire.call(ctx, use.route, refresh)
                tokens = self._refreshed(answer, previous, use, sctx, lease)
            if tokens is None:
                action = "credential.session.login"
                tokens = await self._login(ctx, use, sctx, lease)
        except VaultError as err:
            lost = rotating or (
                isinstance(err, ReauthorizationNeeded) and protocol.lifecycle is OAUTH
            )
            outcome = "lost" if lost else "refused" if isinstance(err, LoginRefused) else "failed"
            self._count(use, action, outcome)
            await self._failed(ctx, use, action, err, lost=lost)
            raise
        generation = lease.generation + 1
        try:
            # Sealing counts the wrap in its own transaction: never on the event loop.
            sealed = await self._offload(
                self._keys.seal, Secret(tokens.to_json()), _binding(key, generation)
            )
            renewed = Renewed(
                sealed.blob,
                at(tokens.expires_at_ms),
                at(tokens.refresh_expires_at_ms) if tokens.refresh_expires_at_ms else None,
                sealed.provider_id,
                sealed.kek_version,
            )
            details = {"lifecycle": protocol.lifecycle.value, "kind": action.rsplit(".", 1)[1]}
            written = await self._offload(
                self._store.renewed, ctx, key, self._owner, renewed, now, action, details
            )
        except VaultError:
            if rotating:
                await self._lost(ctx, key, "refresh-write-back-failed")
            raise
        if written is None:
            if rotating:
                await self._lost(ctx, key, "refresh-lease-lost")
            raise VenueUnavailable(
                "the session lease was lost", metadata={"credential": key.credential}
            )
        self._count(use, action, "success")
        cached = _Cached(written, tokens)
        self._cache[_slot(key)] = cached
        return cached

    def _refreshed(
        self, answer: VenueResponse, previous: SessionTokens, use: SessionUse,
        sctx: SessionContext, lease: Leased,
    ) -> SessionTokens | None:  # fmt: skip
        """The refreshed session; None when the venue refused (or did not extend) it and a
        password is held, so a login takes its place (a refused refresh costs one login)."""
        protocol = use.protocol
        try:
            tokens = protocol.parse_refresh(_answer(answer, 0), previous, use.material, sctx)
        except VaultError:
            if protocol.lifecycle is OAUTH or lease.material is None:
                raise
            return None
        if tokens.expires_at_ms - protocol.renew_margin_ms > sctx.now_ms:
            return tokens
        if protocol.lifecycle is OAUTH or lease.material is None:
            raise VenueUnavailable("the venue's refresh did not extend the session")
        return None

    async def _login(
        self, ctx: CallContext, use: SessionUse, sctx: SessionContext, lease: Leased
    ) -> SessionTokens:
        if lease.material is None or use.protocol.lifecycle is OAUTH:
            # An OAuth grant is only ever obtained at onboarding (the consent's code): with no
            # grant held there is nothing to log in with.
            raise ReauthorizationNeeded("no grant or secret is held to log in with")
        binding = EnvelopeBinding(use.key.workspace_id, use.key.credential_id, use.key.version)
        material = use.open_material(await self._offload(self._keys.open, lease.material, binding))
        request = use.protocol.login(material, sctx)
        for step in range(MAX_LOGIN_STEPS):
            answer = await self._wire.call(ctx, use.route, request)
            result = use.protocol.parse_login(_answer(answer, step), material, sctx)
            if isinstance(result, SessionTokens):
                return result
            request = result
        raise VenueUnavailable(
            "the venue's login did not finish", metadata={"credential": use.key.credential}
        )

    async def _failed(
        self, ctx: CallContext, use: SessionUse, action: str, err: VaultError, *, lost: bool
    ) -> None:
        counted = isinstance(err, LoginRefused)
        try:
            await self._offload(
                self._store.failed, ctx, use.key, self._owner, self._clock.now(), action,
                err.reason, counted=counted, max_failures=self._settings.max_failed_logins,
                backoff=self._settings.backoff,
                unavailable_backoff_s=self._settings.unavailable_backoff_s, lost_grant=lost,
            )  # fmt: skip
        except VaultError:
            if lost:
                await self._lost(ctx, use.key, "refresh-failure-not-recorded")

    async def _lost(self, ctx: CallContext, key: SessionKey, why: str) -> None:
        self._cache.pop(_slot(key), None)
        # If even this fails, the expired lease marked "refresh" tells the next look at the row.
        with contextlib.suppress(VaultError):
            await self._offload(self._store.lost_grant, ctx, key, self._clock.now(), why)

    # --- the wire -----------------------------------------------------------------------------
    def _count(self, use: SessionUse, action: str, outcome: str) -> None:
        if self._metrics is not None:
            kind = action.rsplit(".", 1)[1]
            self._metrics.session_renewals.labels(use.route.venue.value, kind, outcome).inc()

    async def _send(
        self, ctx: CallContext, use: SessionUse, tokens: SessionTokens
    ) -> VenueResponse:
        sctx = None
        if getattr(use.protocol, "transport", ""):
            sctx = self._wire.context(use.route)  # the transport authenticates the application
        return await self._wire.send(ctx, use.route, use.request, tokens, use.material, sctx)

    @staticmethod
    def _expired(protocol: SessionProtocol, response: VenueResponse) -> bool:
        headers = {name.lower(): value for name, value in response.headers}
        return protocol.expired(response.status, headers, response.body)
