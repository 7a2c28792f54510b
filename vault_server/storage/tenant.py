"""The ORM tenant guard: every tenant-scoped query is filtered to the session's workspace.

A unit of work binds to exactly one workspace (``bind_workspace``) when the domain resolves it.
Until then, and for any session never bound, tenant tables are filtered to *nothing* (fail
closed). Writes are checked before flush: an object of another workspace cannot be written. On
PostgreSQL the same binding sets ``app.workspace_id`` for row-level security (the database guard).

System jobs that span workspaces do so one workspace at a time through ``bind_workspace``, so the
guard has no bypass switch. The global tables ``workspaces`` and ``pager_outbox`` follow the bound
workspace too (migration 0005); the few reads and writes that must span workspaces there are
named jobs (``CrossWorkspaceJob``), declared per transaction with ``cross_workspace_job`` in a
unit of work bound to no workspace, and admitted by row-level security only for the commands
that job needs. Binding clears the job, and the policies ignore a job in a bound transaction.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from vault_server.core.errors import InternalError
from vault_server.storage.models import TENANT_ENTITIES, TenantScoped

_KEY = "workspace_id"
_UNBOUND = "00000000-0000-0000-0000-000000000000"  # matches no row: unbound sessions see nothing
_BIND = text(
    "SELECT set_config('app.workspace_id', :ws, true), "
    "set_config('app.cross_workspace_job', '', true)"
)
_JOB = text("SELECT set_config('app.cross_workspace_job', :job, true)")


class CrossWorkspaceJob(enum.StrEnum):
    """The named jobs row-level security admits past the bound workspace (migration 0005), each
    for the commands it needs and only in a transaction bound to no workspace."""

    #: SELECT on ``workspaces``: resolve ``workspaces/{name}`` to an id before binding, list
    #: workspaces (admin plane), list their ids for system jobs, poll the cache epochs.
    WORKSPACE_DIRECTORY = "workspace_directory"
    #: SELECT and UPDATE on ``pager_outbox``: claim, deliver, retry, give up, count the backlog.
    PAGER_SENDER = "pager_sender"
    #: SELECT and DELETE on ``pager_outbox``: prune delivered and given-up pages.
    PAGER_PRUNE = "pager_prune"


def bind_workspace(session: Session, workspace_id: str) -> None:
    """Scope this unit of work to ``workspace_id`` (once; re-binding elsewhere is a bug)."""
    current = session.info.get(_KEY)
    if current not in (None, workspace_id):
        raise InternalError("a unit of work may touch one workspace only")
    session.info[_KEY] = workspace_id
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(_BIND, {"ws": workspace_id})


def scope_connection(conn: Connection, workspace_id: str | None) -> None:
    """Scope the rest of a Core-level read to one workspace's rows (``None``: to none), for
    readers that visit workspaces one at a time inside one snapshot (PostgreSQL only; the ORM
    guard is unaffected and filters nothing these readers query)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_BIND, {"ws": workspace_id or ""})


def cross_workspace_job(session: Session, job: CrossWorkspaceJob) -> None:
    """Declare this unit of work (bound to no workspace) the cross-workspace ``job`` for the rest
    of its transaction, or until it binds a workspace."""
    if bound_workspace(session) is not None:
        raise InternalError("a unit of work bound to a workspace runs no cross-workspace job")
    declare_job(session.connection(), job)


def declare_job(conn: Connection, job: CrossWorkspaceJob) -> None:
    """``cross_workspace_job`` for a Core connection (inside its transaction)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_JOB, {"job": job.value})


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
