"""The signing hot path: checks from memory, one signature, one group-committed durable write.

``SignOrder`` on a cached routing context runs on the event loop without a thread hop: the
checks (context owner, active and unexpired; workspace visible and not frozen; credential active;
venue mode; order policy) read a ``UseState``; the data key comes from the DEK cache or a local
keyring; the venue module signs; then the replay claim, the venue nonce and the chained
``credential.use`` event go to the group committer, and the response leaves only once that batch
is durable. A state not in memory is loaded in one read transaction on the storage pool, as is
any step that may wait on a remote KMS or an RSA signature.

If the batch finds the workspace's epoch moved since the state was read, the signature is
dropped unsent and the call starts again from a fresh state - so a revocation, freeze or ended
routing context committed anywhere refuses the very next signature. A state that keeps moving
falls back to the locked single-transaction path. Every refusal is audited (and paged when it was
a read outside a routing context) exactly as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vault_server.audit import AuditRecord
from vault_server.brokers.base import (
    KeyAlgorithm,
    OrderSpec,
    PreparedRequest,
    SigningContext,
    VenueAdapter,
    VenueCredential,
)
from vault_server.brokers.endpoints import venue_path
from vault_server.brokers.registry import adapter_for
from vault_server.brokers.revealed import secret_values
from vault_server.core.clock import Clock, Random, to_millis
from vault_server.core.errors import (
    CredentialNotActive,
    CredentialRevoked,
    ErrorKind,
    InternalError,
    InvalidArgument,
    NotFound,
    ProxyOnlyVenue,
    RoutingContextRequired,
    VaultError,
    WorkspaceFrozen,
)
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.custody import SigningSettings, open_material
from vault_server.domain import CallContext, workspace_name, workspace_of_name
from vault_server.egress.client import EgressClient, VenueResponse, origin
from vault_server.keys import KeyManager
from vault_server.observability.metrics import Metrics
from vault_server.orders import check_client_order_id, check_policy, is_claimed
from vault_server.sessions import Route, SessionEngine, SessionKey, SessionUse
from vault_server.signing._batch import Claim, PendingUse, Stale, UseWritten
from vault_server.signing._hot_state import HotState, UseState
from vault_server.signing._service import (
    Executed,
    Signed,
    SigningService,
    Use,
    use_details,
)

# Runs a blocking callable off the event loop (the storage pool).
Offload = Callable[..., Awaitable[Any]]
Submit = Callable[[PendingUse], Awaitable[UseWritten | Stale]]

ATTEMPTS = 3  # fresh states tried before the locked path
# Signing that stays on the event loop: microseconds of CPU (RSA is milliseconds).
_LOOP_ALGORITHMS = frozenset(KeyAlgorithm) - {KeyAlgorithm.RSA}


@dataclass(frozen=True)
class Prepared:
    pending: PendingUse
    version: int
    material: VenueCredential


class HotSigner:
    def __init__(
        self,
        signing: SigningService,
        keys: KeyManager,
        hot: HotState,
        submit: Submit,
        offload: Offload,
        egress: EgressClient,
        clock: Clock,
        random: Random,
        settings: SigningSettings,
        metrics: Metrics | None = None,
        sessions: SessionEngine | None = None,
    ) -> None:
        self._sessions = sessions
        self._signing = signing
        self._keys = keys
        self._hot = hot
        self._submit = submit
        self._offload = offload
        self._egress = egress
        self._clock = clock
        self._random = random
        self._settings = settings
        self._metrics = metrics
        self._counters: dict[tuple[str, str], Any] = {}

    async def sign(
        self, ctx: CallContext, routing_context: str, order: OrderSpec, credential: str = ""
    ) -> Signed:
        use = await self._use(ctx, routing_context, credential, order, proxy=False)
        self.count(use.venue.value, "signed")
        return Signed(use.request, use.version, use.audit_event)

    async def execute(
        self, ctx: CallContext, routing_context: str, order: OrderSpec, credential: str = ""
    ) -> Executed:
        """Proxy mode. The venue is awaited on the event loop (no storage thread or database
        connection is held meanwhile), within the workspace's in-flight cap, and its answer is
        capped and scrubbed of the request's secrets before it is returned (egress)."""
        ws = workspace_of_name(routing_context) or workspace_of_name(credential) or ""
        try:
            # Claimed before the use commits: a refused call burns no client order id. A
            # workspace the caller may not see shares one bucket (its call is refused anyway).
            slot = self._egress.claim(ws if ctx.may_see(ws) else "")
        except VaultError as err:
            self.count("unknown", "refused")
            await self._offload(
                self._signing.refused, ctx, routing_context, credential, order, err, proxy=True
            )
            raise
        with slot:
            return await self._execute(ctx, routing_context, order, credential)

    async def _execute(
        self, ctx: CallContext, routing_context: str, order: OrderSpec, credential: str
    ) -> Executed:
        use = await self._use(ctx, routing_context, credential, order, proxy=True)
        origins = self._signing.origins(use.venue, use.environment)
        secrets = secret_values(use.request.headers)
        adapter = adapter_for(use.venue, coinbase_strict=self._settings.coinbase_strict)
        pattern = getattr(adapter, "origin_pattern", None)
        where = origin(use.request.url)
        if pattern is not None and use.venue.value not in self._settings.venue_base_urls:
            origins |= {where} if pattern.fullmatch(where) else set()
        try:
            if adapter.session is not None:
                response = await self._session_send(ctx, use, adapter, origins)
            else:
                response = await self._egress.execute(
                    use.request, origins, ctx.remaining(), secrets=secrets
                )
        except VaultError as err:
            self.count(use.venue.value, "failed")
            await self._offload(
                self._signing.record_send_failure, ctx, routing_context, use.version,
                use.audit_event, use.venue, use.environment, err,
            )  # fmt: skip
            raise
        self.count(use.venue.value, "sent")
        if response.redacted or response.body_truncated:
            await self._offload(
                self._signing.record_relayed, ctx, routing_context, use.audit_event, response
            )
        return Executed(response, use.version, use.audit_event)

    async def _session_send(
        self, ctx: CallContext, use: Use, adapter: VenueAdapter, origins: frozenset[str]
    ) -> VenueResponse:
        """A session venue: the engine authenticates the request with the credential's venue
        session (logging in or refreshing first, single-flight) and sends it."""
        if self._sessions is None or use.material is None or use.algorithm is None:
            raise InternalError("a session venue was used without the session engine")
        venue, env, algorithm = use.venue, use.environment, use.algorithm
        key = SessionKey(
            use.workspace_id, use.workspace, use.credential_id, use.credential, use.version
        )
        override = self._settings.venue_base_urls.get(venue.value)
        base = (override or adapter.default_base_url(env)).rstrip("/")
        route = Route(venue, env, adapter.session, origins, base, override is not None)
        session_use = SessionUse(
            key=key, route=route, material=use.material, request=use.request,
            open_material=lambda raw: open_material(raw, venue, env, algorithm),
        )  # fmt: skip
        return await self._sessions.send(ctx, session_use)

    # --- the use -----------------------------------------------------------------------------
    async def _use(
        self, ctx: CallContext, rc_name: str, hint: str, order: OrderSpec, *, proxy: bool
    ) -> Use:
        venue = "unknown"
        try:
            check_client_order_id(order)
            if not rc_name:
                raise RoutingContextRequired("an active routing context is required to sign")
            for _ in range(ATTEMPTS):
                state = self._hot.get(rc_name)
                cached = state is not None
                if state is None:
                    state = await self._offload(self._signing.load_state, ctx, rc_name)
                    self._hot.put(state)
                venue = state.venue.value
                try:
                    if self.on_loop(state):
                        prepared = self.prepare(ctx, state, rc_name, hint, order, proxy)
                    else:
                        prepared = await self._offload(
                            self.prepare, ctx, state, rc_name, hint, order, proxy
                        )
                except VaultError:
                    if not cached:
                        raise
                    # A refusal (or a failed decryption) from memory is confirmed on a fresh
                    # state first: an unfreeze or a rewrap elsewhere may not have reached us.
                    self._hot.forget(rc_name)
                    continue
                outcome = await self._submit(prepared.pending)
                if isinstance(outcome, Stale):
                    if outcome.epoch is None:
                        self._hot.invalidate([state.workspace_id])
                    else:
                        self._hot.heard(state.workspace_id, outcome.epoch)
                    continue
                event = f"{state.workspace_name}/auditEvents/{outcome.seq}"
                return Use(
                    outcome.request, prepared.version, event, state.venue, state.environment,
                    state.workspace_id, state.workspace_name, state.credential_id,
                    state.credential_name, state.algorithm, prepared.material,
                )  # fmt: skip
            use: Use = await self._offload(
                self._signing.use_locked, ctx, rc_name, hint, order, proxy=proxy
            )
            return use
        except VaultError as err:
            failed = err.kind in (ErrorKind.DATA_LOSS, ErrorKind.UNAVAILABLE)
            self.count(venue, "failed" if failed else "refused")
            await self._offload(self._signing.refused, ctx, rc_name, hint, order, err, proxy=proxy)
            raise

    def on_loop(self, state: UseState) -> bool:
        """Whether preparing a signature with this state may run on the event loop."""
        return self._keys.local_only and state.algorithm in _LOOP_ALGORITHMS

    def prepare(
        self, ctx: CallContext, st: UseState, rc_name: str, hint: str, order: OrderSpec,
        proxy: bool,
    ) -> Prepared:  # fmt: skip
        """Check a use against its state and sign it (the writes wait for the committer)."""
        now = self._clock.now()
        _check_state(ctx, st, rc_name, hint, now)
        adapter = adapter_for(st.venue, coinbase_strict=self._settings.coinbase_strict)
        if adapter.proxy_only and not proxy:
            raise ProxyOnlyVenue(
                "this broker's scheme would expose the secret: use ExecuteOrder",
                metadata={"broker": st.venue.value},
            )
        check_policy(st.policy, order)
        window_ms = min(int(st.policy.max_freshness_s * 1000), self._settings.recv_window_cap_ms)
        if st.envelope is None:
            raise CredentialNotActive("the current version has no key material")
        binding = EnvelopeBinding(st.workspace_id, st.credential_id, st.current_version)
        material = open_material(
            self._keys.open(st.envelope, binding), st.venue, st.environment, st.algorithm
        )
        now_ms = to_millis(now)
        random_hex = self._random.bytes(16).hex()
        base_url = self._settings.venue_base_urls.get(st.venue.value)
        paths: list[str] = []

        def build(nonce: int | None) -> PreparedRequest:
            signing_ctx = SigningContext(
                now_ms=now_ms, recv_window_ms=window_ms, nonce=nonce, random_hex=random_hex,
                base_url=base_url,
            )  # fmt: skip
            request = adapter.build(order, material, signing_ctx)
            path = venue_path(request.url, base_url or adapter.default_base_url(st.environment))
            adapter.check_endpoint(request.method, path)
            paths.append(path)
            return request

        def record(request: PreparedRequest) -> AuditRecord:
            return AuditRecord(
                action="credential.use",
                workspace_id=st.workspace_id,
                workspace=st.workspace_name,
                credential=st.credential_name,
                routing_context=rc_name,
                details=use_details(order, request.method, paths[-1], st.current_version, proxy),
            )

        pending = PendingUse(
            ctx=ctx,
            workspace_id=st.workspace_id,
            epoch=st.epoch,
            credential_id=st.credential_id,
            record=record,
            now=now,
            now_ms=now_ms,
            claim=_claim(order, st),
        )
        if adapter.needs_nonce:
            pending.build = build
        else:
            pending.request = build(None)
        return Prepared(pending, st.current_version, material)

    def count(self, venue: str, outcome: str) -> None:
        if self._metrics is None:
            return
        counter = self._counters.get((venue, outcome))
        if counter is None:  # finite: venues x outcomes, resolved once each
            counter = self._metrics.signatures.labels(venue=venue, outcome=outcome)
            self._counters[(venue, outcome)] = counter
        counter.inc()


def _claim(order: OrderSpec, st: UseState) -> Claim | None:
    if not is_claimed(order) or order.client_order_id is None:
        return None
    return Claim(
        order.client_order_id, st.policy.max_orders_per_interval, st.policy.rate_interval_s
    )


def _check_state(ctx: CallContext, st: UseState, rc_name: str, hint: str, now: dt.datetime) -> None:
    """The refusals of the locked path, in the same order, from memory."""
    if not ctx.may_see(st.workspace_resource):
        raise NotFound(workspace_name(st.workspace_resource))
    if st.owner != ctx.actor.id:
        raise NotFound(rc_name)
    if st.rc_state != "active" or st.rc_expire <= now:
        raise RoutingContextRequired(
            "the routing context has ended or expired", metadata={"routingContext": rc_name}
        )
    if hint and hint != st.credential_name:
        raise InvalidArgument("credential", "does not match the routing context")
    if st.ws_state == "frozen" and (st.ws_freeze_expire is None or st.ws_freeze_expire > now):
        raise WorkspaceFrozen("the workspace is frozen", metadata={"workspace": st.workspace_name})
    if st.credential_state == "revoked":
        raise CredentialRevoked(
            "the credential is revoked", metadata={"credential": st.credential_name}
        )
    if st.credential_state != "active" or st.current_version == 0:
        raise CredentialNotActive(
            "the credential is pending or quarantined", metadata={"credential": st.credential_name}
        )
