"""Routing contexts: one principal's short-lived right to use one credential.

Only the principal that opened a context may renew, end or sign with it; to anyone else it does
not exist (NOT_FOUND). Using a credential requires an ACTIVE, unexpired context of the caller.

``begin`` also hands the new context's use state (read in its transaction, the workspace's
cache epoch first, exactly as the hot path would load it) to ``on_begin`` once it committed, so
the first signature with it - or a fan-out over a thousand fresh contexts - is served from memory
on the replica that opened it instead of loading each state apart.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault_server.audit import AuditLog, credential_record
from vault_server.core.clock import Clock
from vault_server.core.errors import (
    CredentialNotActive,
    CredentialRevoked,
    InvalidArgument,
    NotFound,
    RoutingContextRequired,
    VaultError,
)
from vault_server.custody import load_credential
from vault_server.domain import (
    CallContext,
    CredentialRef,
    credential_name,
    parse_credential,
    parse_routing_context,
    routing_context_name,
)
from vault_server.signing._hot_state import UseState, use_state
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, RoutingContext, Workspace
from vault_server.storage.repositories import credentials as cred_repo
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.workspaces import ensure_not_frozen, load_visible

ACTIVE, ENDED = "active", "ended"


@dataclass(frozen=True)
class BeginItem:
    """One context to open, as its own ``BeginRouting`` would ask."""

    credential: str
    strategy_id: str
    ttl_s: float | None = None
    reason: str = ""  # the item's own reason; empty: the call's


def _for(ctx: CallContext, item: BeginItem) -> CallContext:
    return replace(ctx, reason=item.reason) if item.reason and item.reason != ctx.reason else ctx


@dataclass(frozen=True)
class RoutingView:
    workspace: str
    credential: str
    context: RoutingContext
    now: dt.datetime

    @property
    def name(self) -> str:
        return routing_context_name(self.workspace, self.context.resource_id)

    @property
    def state(self) -> str:
        if self.context.state == ACTIVE and self.context.expire_time <= self.now:
            return "expired"
        return self.context.state


def ensure_usable(cred: Credential, name: str) -> None:
    if cred.state == "revoked":
        raise CredentialRevoked("the credential is revoked", metadata={"credential": name})
    if cred.state != "active" or cred.current_version == 0:
        raise CredentialNotActive(
            "the credential is pending or quarantined", metadata={"credential": name}
        )


class RoutingContexts:
    def __init__(
        self, db: Database, audit: AuditLog, clock: Clock, *, default_ttl_s: float, max_ttl_s: float
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._default = default_ttl_s
        self._max = max_ttl_s
        self.on_begin: Callable[[UseState], None] | None = None  # the hot path's state cache

    def _ttl(self, requested: float | None) -> dt.timedelta:
        if requested is None or requested == 0:
            return dt.timedelta(seconds=min(self._default, self._max))
        if requested < 0:
            raise InvalidArgument("ttl", "must not be negative")
        return dt.timedelta(seconds=min(requested, self._max))

    def _record(
        self, session: Session, ctx: CallContext, ws: Workspace, cred: Credential, rc_name: str,
        action: str, **details: str,
    ) -> None:  # fmt: skip
        record = credential_record(
            ws, cred.resource_id, action, routing_context=rc_name, details=details
        )
        self._audit.append(session, ctx, record)

    def begin(
        self, ctx: CallContext, credential: str, strategy_id: str, ttl_s: float | None
    ) -> RoutingView:
        item = BeginItem(credential, strategy_id, ttl_s)
        ref, ttl = self._valid(item)
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            epoch = ws_repo.epoch_by_resource_id(session, ref.workspace) or 0  # read first
            ws, cred = self._usable(session, ctx, ref, credential, now)
            view, state = self._open(session, ctx, ws, cred, item, ttl, now, epoch)
        if self.on_begin is not None:  # committed: the context exists
            self.on_begin(state)
        return view

    def begin_many(
        self, ctx: CallContext, items: Sequence[BeginItem]
    ) -> list[RoutingView | VaultError]:
        """``BatchBeginRouting``: each item checked and audited as its own ``begin`` and failing
        alone; one transaction per workspace (a unit of work touches one workspace), in
        ascending order. Within it every item is checked before any is opened, so a refused
        item leaves nothing to undo; a transaction that fails fails its workspace's items."""
        now = self._clock.now()
        results: list[RoutingView | VaultError | None] = [None] * len(items)
        groups: dict[str, list[tuple[int, CredentialRef, dt.timedelta]]] = {}
        for i, item in enumerate(items):
            try:
                ref, ttl = self._valid(item)
            except VaultError as err:
                results[i] = err
                continue
            groups.setdefault(ref.workspace, []).append((i, ref, ttl))
        for workspace in sorted(groups):
            try:
                states = self._begin_group(ctx, items, groups[workspace], results, now)
            except VaultError as err:
                for i, _, _ in groups[workspace]:
                    results[i] = err
                continue
            if self.on_begin is not None:  # committed: the contexts exist
                for state in states:
                    self.on_begin(state)
        return [r if r is not None else InvalidArgument("requests", "not opened") for r in results]

    def _begin_group(
        self, ctx: CallContext, items: Sequence[BeginItem],
        group: list[tuple[int, CredentialRef, dt.timedelta]],
        results: list[RoutingView | VaultError | None], now: dt.datetime,
    ) -> list[UseState]:  # fmt: skip
        states: list[UseState] = []
        views: list[tuple[int, RoutingView]] = []
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            epoch = ws_repo.epoch_by_resource_id(session, group[0][1].workspace) or 0  # first
            ready = []
            for i, ref, ttl in group:
                try:
                    ready.append((i, ttl, self._usable(session, _for(ctx, items[i]), ref,
                                                       items[i].credential, now)))  # fmt: skip
                except VaultError as err:
                    results[i] = err
            for i, ttl, (ws, cred) in ready:
                view, state = self._open(
                    session, _for(ctx, items[i]), ws, cred, items[i], ttl, now, epoch
                )
                views.append((i, view))
                states.append(state)
        for i, view in views:  # only once the transaction committed
            results[i] = view
        return states

    def _valid(self, item: BeginItem) -> tuple[CredentialRef, dt.timedelta]:
        ref = parse_credential("credential", item.credential)
        strategy_id = item.strategy_id
        if not strategy_id or len(strategy_id) > 128 or not strategy_id.isprintable():
            raise InvalidArgument("strategy_id", "1-128 printable characters")
        return ref, self._ttl(item.ttl_s)

    def _usable(
        self, session: Session, ctx: CallContext, ref: CredentialRef, name: str, now: dt.datetime
    ) -> tuple[Workspace, Credential]:
        ws, cred = load_credential(session, ctx, ref)
        ensure_not_frozen(ws, now)
        ensure_usable(cred, name)
        return ws, cred

    def _open(
        self, session: Session, ctx: CallContext, ws: Workspace, cred: Credential, item: BeginItem,
        ttl: dt.timedelta, now: dt.datetime, epoch: int,
    ) -> tuple[RoutingView, UseState]:  # fmt: skip
        rc = RoutingContext(
            id=str(uuid.uuid4()), workspace_id=ws.id, resource_id=f"rc-{secrets.token_hex(12)}",
            credential_id=cred.id, strategy_id=item.strategy_id, owner=ctx.actor.id, state=ACTIVE,
            create_time=now, expire_time=now + ttl,
        )  # fmt: skip
        session.add(rc)
        session.flush()
        rc_name = routing_context_name(ws.resource_id, rc.resource_id)
        self._record(
            session, ctx, ws, cred, rc_name, "routing.begin", strategy_id=item.strategy_id,
            ttl_seconds=str(int(ttl.total_seconds())),
        )  # fmt: skip
        version = cred_repo.version(session, cred, cred.current_version)
        state = use_state(epoch, rc_name, ws, cred, rc, version.envelope if version else None)
        return RoutingView(ws.resource_id, cred.resource_id, rc, now), state

    def _own(
        self,
        session: Session,
        ctx: CallContext,
        name: str,
        *,
        lock: bool = False,
        lock_credential: bool = False,
    ) -> tuple[Workspace, Credential, RoutingContext]:
        ref = parse_routing_context("name", name)
        ws = load_visible(session, ctx, ref.workspace)
        stmt = select(RoutingContext).where(
            RoutingContext.workspace_id == ws.id, RoutingContext.resource_id == ref.routing_context
        )
        if lock:
            stmt = stmt.with_for_update(key_share=True)
        rc = session.execute(stmt).scalar_one_or_none()
        if rc is None or rc.owner != ctx.actor.id:
            raise NotFound(name)
        cred_stmt = select(Credential).where(
            Credential.workspace_id == ws.id, Credential.id == rc.credential_id
        )
        if lock_credential:
            cred_stmt = cred_stmt.with_for_update(key_share=True)
        cred = session.execute(cred_stmt).scalar_one_or_none()
        if cred is None:
            raise NotFound(name)
        return ws, cred, rc

    def renew(self, ctx: CallContext, name: str, ttl_s: float | None) -> RoutingView:
        ttl = self._ttl(ttl_s)
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred, rc = self._own(session, ctx, name, lock=True)
            if rc.state != ACTIVE or rc.expire_time <= now:
                raise RoutingContextRequired(
                    "the routing context is no longer active", metadata={"routingContext": name}
                )
            ensure_not_frozen(ws, now)
            ensure_usable(cred, credential_name(ws.resource_id, cred.resource_id))
            rc.expire_time = now + ttl
            self._record(session, ctx, ws, cred, name, "routing.renew")
            return RoutingView(ws.resource_id, cred.resource_id, rc, now)

    def end(self, ctx: CallContext, name: str) -> RoutingView:
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred, rc = self._own(session, ctx, name, lock=True)
            if rc.state == ACTIVE:
                rc.state, rc.end_time = ENDED, now
            self._record(session, ctx, ws, cred, name, "routing.end")
            return RoutingView(ws.resource_id, cred.resource_id, rc, now)

    def epoch_of(self, session: Session, name: str) -> int:
        """The cache epoch of the routing context's workspace (read before anything else)."""
        ref = parse_routing_context("name", name)
        return ws_repo.epoch_by_resource_id(session, ref.workspace) or 0

    def load_for_use(
        self, session: Session, ctx: CallContext, name: str
    ) -> tuple[Workspace, Credential, RoutingContext]:
        """The caller's context with its workspace and credential, whatever their state."""
        if not name:
            raise RoutingContextRequired("an active routing context is required to sign")
        return self._own(session, ctx, name)

    def active_for_use(
        self, session: Session, ctx: CallContext, name: str
    ) -> tuple[Workspace, Credential, RoutingContext]:
        """The caller's active context, inside the signing transaction, with the credential row
        locked: concurrent uses of one credential (router retries) then see each other's client
        order ids, rate slots and venue nonce, and a use cannot proceed past a concurrent revoke.

        Raises:
            RoutingContextRequired: none given, ended, expired (foreign ones are NOT_FOUND).
        """
        if not name:
            raise RoutingContextRequired("an active routing context is required to sign")
        ws, cred, rc = self._own(session, ctx, name, lock_credential=True)
        if rc.state != ACTIVE or rc.expire_time <= self._clock.now():
            raise RoutingContextRequired(
                "the routing context has ended or expired", metadata={"routingContext": name}
            )
        return ws, cred, rc
