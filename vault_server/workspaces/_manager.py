"""Workspaces: create, read, list, and the freeze kill switch. Every call writes one event."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vault_server.audit import AuditLog, AuditRecord, Outcome
from vault_server.core.clock import Clock
from vault_server.core.errors import (
    EtagMismatch,
    InvalidArgument,
    NotFound,
    VaultError,
    WorkspaceAlreadyFrozen,
    WorkspaceFrozen,
    WorkspaceNotFrozen,
)
from vault_server.domain import (
    CallContext,
    PageTokens,
    check_etag,
    check_id,
    parse_workspace,
    workspace_name,
)
from vault_server.domain import etag as current_etag
from vault_server.storage.database import Database
from vault_server.storage.models import Workspace
from vault_server.storage.repositories import workspaces as repo
from vault_server.storage.tenant import bind_workspace
from vault_server.workspaces._view import WorkspaceView

ACTIVE = "active"
FROZEN = "frozen"
MAX_FREEZE_S = 366 * 86_400


def is_frozen(ws: WorkspaceView, now: dt.datetime) -> bool:
    """Frozen and not past its automatic expiry."""
    if ws.state != FROZEN:
        return False
    return ws.freeze_expire_time is None or ws.freeze_expire_time > now


def ensure_not_frozen(ws: Workspace, now: dt.datetime) -> None:
    if is_frozen(ws, now):
        raise WorkspaceFrozen(
            "the workspace is frozen", metadata={"workspace": workspace_name(ws.resource_id)}
        )


def load_visible(
    session: Session, ctx: CallContext, ws_id: str, *, lock: bool = False
) -> Workspace:
    """The workspace if it exists and the caller's grant covers it; NOT_FOUND otherwise."""
    if not ctx.may_see(ws_id):
        raise NotFound(workspace_name(ws_id))
    ws = repo.by_resource_id(session, ws_id)
    if ws is None:
        raise NotFound(workspace_name(ws_id))
    bind_workspace(session, ws.id)
    if lock:  # locked once bound: row-level security lets only the bound row be changed
        ws = repo.lock(session, ws.id)
        if ws is None:
            raise NotFound(workspace_name(ws_id))
    return ws


def _freeze_details(ws: Workspace) -> dict[str, str]:
    """The freeze in force, for the audit event of a refusal or a replacement (no free text)."""
    expire = ws.freeze_expire_time
    return {
        "previousFrozenBy": ws.frozen_by,
        "previousFreezeTime": ws.freeze_time.isoformat() if ws.freeze_time else "",
        "previousExpireTime": expire.isoformat() if expire else "",
    }


@dataclass(frozen=True)
class WorkspacePage:
    workspaces: list[Workspace]
    next_page_token: str


class WorkspaceManager:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        clock: Clock,
        pages: PageTokens,
        on_freeze: Callable[[str], None] | None = None,
    ) -> None:
        self._on_freeze = on_freeze  # drops cached data keys of the frozen workspace
        self._db = db
        self._audit = audit
        self._clock = clock
        self._pages = pages

    def _record(
        self, session: Session, ctx: CallContext, ws: Workspace, action: str, **details: str
    ) -> None:
        self._audit.append(
            session,
            ctx,
            AuditRecord(
                action=action,
                workspace_id=ws.id,
                workspace=workspace_name(ws.resource_id),
                details=dict(details),
            ),
        )

    def create(self, ctx: CallContext, workspace_id: str, display_name: str) -> Workspace:
        check_id("workspace_id", workspace_id)
        if len(display_name) > 200:
            raise InvalidArgument("workspace.display_name", "at most 200 characters")
        if not ctx.may_see(workspace_id):
            raise NotFound(workspace_name(workspace_id))
        now = self._clock.now()
        row = Workspace(
            id=str(uuid.uuid4()),
            resource_id=workspace_id,
            display_name=display_name,
            state=ACTIVE,
            create_time=now,
            update_time=now,
            revision=1,
            freeze_reason="",
            frozen_by="",
        )
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            bind_workspace(session, row.id)  # first: row-level security admits only its own row
            repo.insert(session, row)
            self._record(session, ctx, row, "workspace.create")
        return row

    def get(self, ctx: CallContext, name: str) -> Workspace:
        ws_id = parse_workspace("name", name)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws = load_visible(session, ctx, ws_id)
            self._record(session, ctx, ws, "workspace.get")
        return ws

    def list(self, ctx: CallContext, page_size: int, page_token: str) -> WorkspacePage:
        size = self._pages.page_size(page_size)
        params = {"rpc": "ListWorkspaces", "scope": sorted(ctx.workspaces or ["*"])}
        after = self._pages.resume(page_token, params)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            rows = list(repo.page(session, after=after, limit=size + 1, only=ctx.workspaces))
            more = len(rows) > size
            rows = rows[:size]
            self._audit.append(
                session,
                ctx,
                AuditRecord(action="workspace.list", details={"count": str(len(rows))}),
            )
        token = self._pages.issue(rows[-1].resource_id, params) if more and rows else ""
        return WorkspacePage(rows, token)

    def freeze(self, ctx: CallContext, name: str, ttl_s: float | None, etag: str) -> Workspace:
        """Engage the kill switch. A workspace that is already frozen keeps its freeze (reason,
        expiry, actor) unless the caller proves it read that freeze by passing its etag; a
        refusal (no etag: WORKSPACE_ALREADY_FROZEN, a stale one: ETAG_MISMATCH) commits a denied
        ``workspace.freeze`` event and changes nothing."""
        ws_id = parse_workspace("name", name)
        if ttl_s is not None and not (0 < ttl_s <= MAX_FREEZE_S):
            raise InvalidArgument("ttl", "must be positive and at most 366 days")
        refused: VaultError | None = None
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws = load_visible(session, ctx, ws_id, lock=True)
            now = self._clock.now()
            previous = _freeze_details(ws) if is_frozen(ws, now) else None
            if previous is not None and etag != current_etag(ws.id, ws.revision):
                # Replacing a freeze needs proof the caller read it; refused either way, audited.
                refused = (
                    EtagMismatch("the freeze changed since it was read; re-read and retry")
                    if etag
                    else WorkspaceAlreadyFrozen(
                        "the workspace is already frozen; pass its current etag to replace it",
                        metadata={"workspace": workspace_name(ws.resource_id)},
                    )
                )
                self._audit.append(
                    session,
                    ctx,
                    AuditRecord(
                        action="workspace.freeze",
                        outcome=Outcome.DENIED,
                        workspace_id=ws.id,
                        workspace=workspace_name(ws.resource_id),
                        error_reason=refused.reason,
                        details=previous,
                    ),
                )
            else:
                check_etag(etag, ws.id, ws.revision)  # an ordinary freeze: ABORTED if stale
                ws.state = FROZEN
                ws.freeze_reason = ctx.reason
                ws.frozen_by = ctx.actor.id
                ws.freeze_time = now
                ws.freeze_expire_time = now + dt.timedelta(seconds=ttl_s) if ttl_s else None
                ws.update_time = now
                ws.revision += 1
                details = {"ttlSeconds": str(int(ttl_s))} if ttl_s else {}
                self._record(session, ctx, ws, "workspace.freeze", **details, **(previous or {}))
        if refused is not None:
            raise refused
        if self._on_freeze is not None:
            self._on_freeze(ws.id)
        return ws

    def unfreeze(self, ctx: CallContext, name: str, etag: str) -> Workspace:
        ws_id = parse_workspace("name", name)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws = load_visible(session, ctx, ws_id, lock=True)
            check_etag(etag, ws.id, ws.revision)
            now = self._clock.now()
            if not is_frozen(ws, now):
                raise WorkspaceNotFrozen(
                    "the workspace is not frozen", metadata={"workspace": name}
                )
            ws.state = ACTIVE
            ws.freeze_reason = ""
            ws.frozen_by = ""
            ws.freeze_time = None
            ws.freeze_expire_time = None
            ws.update_time = now
            ws.revision += 1
            self._record(session, ctx, ws, "workspace.unfreeze")
        return ws
