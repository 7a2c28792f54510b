"""The ORM tenant guard: every tenant-scoped query is filtered to the session's workspace.

A unit of work binds to exactly one workspace (``bind_workspace``) when the domain resolves it.
Until then, and for any session never bound, tenant tables are filtered to *nothing* (fail
closed). Writes are checked before flush: an object of another workspace cannot be written. On
PostgreSQL the same binding sets ``app.workspace_id`` for row-level security (the database guard).

System jobs that span workspaces do so one workspace at a time through ``bind_workspace``, so the
guard has no bypass switch.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from vault_server.core.errors import InternalError
from vault_server.storage.models import TENANT_ENTITIES, TenantScoped

_KEY = "workspace_id"
_UNBOUND = "00000000-0000-0000-0000-000000000000"  # matches no row: unbound sessions see nothing


def bind_workspace(session: Session, workspace_id: str) -> None:
    """Scope this unit of work to ``workspace_id`` (once; re-binding elsewhere is a bug)."""
    current = session.info.get(_KEY)
    if current not in (None, workspace_id):
        raise InternalError("a unit of work may touch one workspace only")
    session.info[_KEY] = workspace_id
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            text("SELECT set_config('app.workspace_id', :ws, true)"), {"ws": workspace_id}
        )


def bound_workspace(session: Session) -> str | None:
    value = session.info.get(_KEY)
    return value if isinstance(value, str) else None


@event.listens_for(Session, "do_orm_execute")
def _add_workspace_criteria(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    ws = bound_workspace(state.session) or _UNBOUND
    state.statement = state.statement.options(*_criteria(ws))


@functools.lru_cache(maxsize=4096)
def _criteria(workspace_id: str) -> tuple[Any, ...]:
    """The loader options for one workspace, built once (they sit on the signing hot path)."""
    return tuple(
        with_loader_criteria(entity, entity.workspace_id == workspace_id, include_aliases=True)
        for entity in TENANT_ENTITIES
    )


@event.listens_for(Session, "before_flush")
def _check_writes(session: Session, _ctx: Any, _instances: Any) -> None:
    ws = bound_workspace(session)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, TenantScoped) and obj.workspace_id != ws:
            raise InternalError("write outside the unit of work's workspace refused")
