"""Signing and proxying: the parts of a routing service's use of a credential that read or
write the database through the ORM.

``HotSigner`` (signing/_hot_path.py) serves SignOrder/ExecuteOrder; it uses this service to
load a routing context's ``UseState``, to audit refusals in their own transaction (a refusal
without a routing context also pages: it is a read outside an active context, DESIGN.md §6), to
record a proxied request the venue never answered, and - when the cached state keeps moving - for
``use_locked``: the whole decision in one transaction with the credential row locked (context,
workspace and credential state, order policy, replay claim, venue nonce, decryption, signature
and the ``credential.use`` audit event; nothing claimed and no signature if any step fails).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault_server.audit import AuditLog, AuditRecord, Outcome, event_name
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    OrderSpec,
    PreparedRequest,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import venue_path
from vault_server.brokers.registry import adapter_for
from vault_server.core.clock import Clock, Random, to_millis
from vault_server.core.errors import (
    CredentialNotActive,
    InvalidArgument,
    ProxyOnlyVenue,
    VaultError,
)
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.custody import PageHook, SigningSettings, next_nonce, open_material
from vault_server.domain import CallContext, credential_name, workspace_of_name
from vault_server.egress.client import EgressClient, VenueResponse, allowed_origins
from vault_server.keys import KeyManager
from vault_server.orders import (
    OrderPolicy,
    check_client_order_id,
    check_policy,
    claim_order,
)
from vault_server.signing._hot_state import UseState, use_state
from vault_server.signing._refusal import Refusal, refusal_record
from vault_server.signing._routing import RoutingContexts, ensure_usable
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, RoutingContext, Workspace
from vault_server.storage.repositories import credentials as cred_repo
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace
from vault_server.workspaces import ensure_not_frozen


@dataclass(frozen=True)
class Signed:
    request: PreparedRequest
    version: int
    audit_event: str


@dataclass(frozen=True)
class Executed:
    response: VenueResponse
    version: int
    audit_event: str


@dataclass(frozen=True)
class Use:
    request: PreparedRequest
    version: int
    audit_event: str
    venue: Venue
    environment: Environment
    workspace_id: str = ""  # whose it is, and the opened material: sessions authenticate later
    workspace: str = ""
    credential_id: str = ""
    credential: str = ""
    algorithm: KeyAlgorithm | None = None
    material: VenueCredential | None = field(default=None, repr=False)


class SigningService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        keys: KeyManager,
        routing: RoutingContexts,
        egress: EgressClient,
        clock: Clock,
        random: Random,
        settings: SigningSettings,
        page_hook: PageHook | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys
        self._routing = routing
        self._egress = egress
        self._clock = clock
        self._random = random
        self._settings = settings
        self._page = page_hook

    def _record_result(
        self, ctx: CallContext, rc_name: str, outcome: str, err: VaultError | None,
        details: dict[str, str],
    ) -> None:  # fmt: skip
        """A ``credential.use_result`` event after a proxied send (the use itself was committed
        before the send). Best effort: the send happened whether or not this is recorded."""
        ws_id = workspace_of_name(rc_name)
        try:
            with self._db.transaction(timeout_s=None) as session:
                ws = ws_repo.by_resource_id(session, ws_id) if ws_id else None
                if ws is None:
                    return
                bind_workspace(session, ws.id)
                cred = self._credential_for_refusal(session, ctx, ws, rc_name, "")
                self._audit.append(
                    session,
                    ctx,
                    AuditRecord(
                        action="credential.use_result",
                        outcome=outcome,
                        workspace_id=ws.id,
                        workspace=f"workspaces/{ws.resource_id}",
                        credential=cred,
                        routing_context=rc_name,
                        error_reason=err.reason if err is not None else "",
                        details=details,
                    ),
                )
        except VaultError:
            pass

    # --- the use transaction ---------------------------------------------------------------
    def origins(self, venue: Venue, env: Environment) -> frozenset[str]:
        overrides = self._settings.venue_base_urls
        if venue.value in overrides:  # configured (brokers that host the venue have no default)
            return allowed_origins("", overrides, venue.value)
        adapter = adapter_for(venue, coinbase_strict=self._settings.coinbase_strict)
        return allowed_origins(adapter.default_base_url(env), overrides, venue.value)

    def use_locked(
        self, ctx: CallContext, rc_name: str, hint: str, order: OrderSpec, *, proxy: bool
    ) -> Use:
        """The whole use in one transaction with the credential row locked (no caches): the
        path of last resort when the cached state keeps moving. Refusals are not recorded."""
        check_client_order_id(order)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred, _rc = self._routing.active_for_use(session, ctx, rc_name)
            if hint and hint != credential_name(ws.resource_id, cred.resource_id):
                raise InvalidArgument("credential", "does not match the routing context")
            return self._sign_in(session, ctx, ws, cred, rc_name, order, proxy=proxy)

    def load_state(self, ctx: CallContext, rc_name: str) -> UseState:
        """Everything the hot path checks, read in one transaction, the epoch first."""
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            epoch = self._routing.epoch_of(session, rc_name)
            return self._state_in(session, ctx, rc_name, epoch)

    def load_states(
        self, ctx: CallContext, names: Sequence[str]
    ) -> dict[str, UseState | VaultError]:
        """``load_state`` for many contexts (a cold fan-out): one transaction per workspace,
        its epoch read first; a context that cannot be loaded gets its own error."""
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(workspace_of_name(name) or "", []).append(name)
        out: dict[str, UseState | VaultError] = {}
        for workspace, group in groups.items():
            try:
                with self._db.transaction(timeout_s=ctx.remaining()) as session:
                    epoch = self._routing.epoch_of(session, group[0]) if workspace else 0
                    for name in group:
                        try:
                            out[name] = self._state_in(session, ctx, name, epoch)
                        except VaultError as err:
                            out[name] = err
            except VaultError as err:  # the transaction failed: its contexts fail with it
                out.update(dict.fromkeys(group, err))
        return out

    def _state_in(self, session: Session, ctx: CallContext, rc_name: str, epoch: int) -> UseState:
        ws, cred, rc = self._routing.load_for_use(session, ctx, rc_name)
        version = cred_repo.version(session, cred, cred.current_version)
        return use_state(epoch, rc_name, ws, cred, rc, version.envelope if version else None)

    def record_send_failure(
        self, ctx: CallContext, rc_name: str, version: int, event: str, venue: Venue,
        env: Environment, err: VaultError,
    ) -> None:  # fmt: skip
        self._record_result(ctx, rc_name, Outcome.FAILED, err, {"useEvent": event})

    def record_relayed(
        self, ctx: CallContext, rc_name: str, event: str, response: VenueResponse
    ) -> None:
        """The venue's answer was altered before relaying: secret material scrubbed from it
        (``responseRedacted``) or its body cut at the cap (``bodyTruncated``)."""
        details = {
            "useEvent": event,
            "responseRedacted": str(response.redacted).lower(),
            "bodyTruncated": str(response.body_truncated).lower(),
        }
        self._record_result(ctx, rc_name, Outcome.SUCCESS, None, details)

    def _sign_in(
        self, session: Session, ctx: CallContext, ws: Workspace, cred: Credential, rc_name: str,
        order: OrderSpec, *, proxy: bool,
    ) -> Use:  # fmt: skip
        now = self._clock.now()
        name = credential_name(ws.resource_id, cred.resource_id)
        ensure_not_frozen(ws, now)
        ensure_usable(cred, name)
        venue, env = Venue(cred.broker), Environment(cred.environment)
        adapter = adapter_for(venue, coinbase_strict=self._settings.coinbase_strict)
        if adapter.proxy_only and not proxy:
            raise ProxyOnlyVenue(
                "this broker's scheme would expose the secret: use ExecuteOrder",
                metadata={"broker": venue.value},
            )
        policy = OrderPolicy.from_json(cred.policy)
        check_policy(policy, order)
        window_ms = min(int(policy.max_freshness_s * 1000), self._settings.recv_window_cap_ms)
        version = cred_repo.version(session, cred, cred.current_version)
        if version is None or version.envelope is None:
            raise CredentialNotActive("the current version has no key material")
        nonce = next_nonce(session, cred, to_millis(now)) if adapter.needs_nonce else None
        binding = EnvelopeBinding(ws.id, cred.id, version.version)
        material = open_material(
            self._keys.open(version.envelope, binding), venue, env, KeyAlgorithm(cred.key_algorithm)
        )
        ctx_sign = SigningContext(
            now_ms=to_millis(now),
            recv_window_ms=window_ms,
            nonce=nonce,
            random_hex=self._random.bytes(16).hex(),
            base_url=self._settings.venue_base_urls.get(venue.value),
        )
        request = adapter.build(order, material, ctx_sign)
        path = venue_path(request.url, ctx_sign.base_url or adapter.default_base_url(env))
        adapter.check_endpoint(request.method, path)
        expire = dt.datetime.fromtimestamp(request.expire_at_ms / 1000, dt.UTC)
        claim_order(session, cred, order, policy, now, max(expire, now))
        row = self._audit.append(
            session,
            ctx,
            AuditRecord(
                action="credential.use",
                workspace_id=ws.id,
                workspace=f"workspaces/{ws.resource_id}",
                credential=name,
                routing_context=rc_name,
                details=use_details(order, request.method, path, version.version, proxy),
            ),
        )
        event = event_name(row, f"workspaces/{ws.resource_id}")
        return Use(
            request, version.version, event, venue, env, ws.id, f"workspaces/{ws.resource_id}",
            cred.id, name, KeyAlgorithm(cred.key_algorithm), material,
        )  # fmt: skip

    def _credential_for_refusal(
        self, session: Session, ctx: CallContext, ws: Workspace | None, rc_name: str, hint: str
    ) -> str:
        """The credential a refused call was about, if the caller may know it exists."""
        if ws is None:
            return ""
        if rc_name.startswith(f"workspaces/{ws.resource_id}/routingContexts/"):
            cred = _owned_context_credential(session, ctx, ws, rc_name)
            if cred is not None:
                return credential_name(ws.resource_id, cred.resource_id)
        prefix = f"workspaces/{ws.resource_id}/credentials/"
        known = hint.startswith(prefix) and cred_repo.by_resource_id(
            session, ws.id, hint.rsplit("/", 1)[1]
        )
        return hint if known else ""

    def refused(
        self, ctx: CallContext, rc_name: str, hint: str, order: OrderSpec, err: VaultError,
        *, proxy: bool,
    ) -> None:  # fmt: skip
        """Audit a refused use; without a routing context it is a read outside one: page."""
        self.refused_all([Refusal(ctx, rc_name, hint, order, err)], proxy=proxy)

    def refused_all(self, refusals: Sequence[Refusal], *, proxy: bool) -> None:
        """``refused`` for many uses (a fan-out): one transaction per workspace."""
        groups: dict[str | None, list[Refusal]] = {}
        for r in refusals:
            ws_id = workspace_of_name(r.rc_name) or workspace_of_name(r.hint)
            groups.setdefault(ws_id if ws_id and r.ctx.may_see(ws_id) else None, []).append(r)
        for ws_id, group in groups.items():
            try:
                with self._db.transaction(timeout_s=group[0].ctx.remaining()) as session:
                    ws = ws_repo.by_resource_id(session, ws_id) if ws_id else None
                    if ws is not None:
                        bind_workspace(session, ws.id)
                    for r in group:
                        self._record_refusal(session, ws, r, proxy)
            except VaultError:
                # The refusal stands whether or not it could be recorded (readiness tracks
                # audit health).
                pass

    def _record_refusal(
        self, session: Session, ws: Workspace | None, r: Refusal, proxy: bool
    ) -> None:
        credential = self._credential_for_refusal(session, r.ctx, ws, r.rc_name, r.hint)
        record = refusal_record(r, ws, credential, proxy)
        row = self._audit.append(session, r.ctx, record)
        if record.action == "credential.read" and self._page is not None:
            self._page(session, r.ctx, record, row.seq, row.hash)


def _owned_context_credential(
    session: Session, ctx: CallContext, ws: Workspace, rc_name: str
) -> Credential | None:
    rc_id = rc_name.rsplit("/", 1)[-1]
    rc = session.execute(
        select(RoutingContext).where(
            RoutingContext.workspace_id == ws.id,
            RoutingContext.resource_id == rc_id,
            RoutingContext.owner == ctx.actor.id,
        )
    ).scalar_one_or_none()
    return session.get(Credential, rc.credential_id) if rc is not None else None


def use_details(
    order: OrderSpec, method: str, path: str, version: int, proxy: bool
) -> dict[str, str]:
    out = {
        "operation": order.operation.value,
        "mode": "proxy" if proxy else "sign",
        "method": method,
        "path": path,
        "version": str(version),
    }
    if order.symbol:
        out["symbol"] = order.symbol
    if order.side:
        out["side"] = order.side.value
    if order.client_order_id:
        out["clientOrderId"] = order.client_order_id
    return out
