"""Queries on the workspaces table.

On PostgreSQL a transaction bound to a workspace sees only that workspace's row (row-level
security, migration 0005). Reading other rows - resolving a name before binding, listing - is the
``workspace_directory`` job, declared here by the queries that need it: SELECT only, so a row is
changed or locked only once its workspace is bound (``lock``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault_server.core.errors import AlreadyExists
from vault_server.storage.models import Workspace
from vault_server.storage.tenant import CrossWorkspaceJob, bound_workspace, cross_workspace_job


def _directory(session: Session) -> None:
    """Read past the bound workspace: only a unit of work bound to none may (a bound one sees
    its own row, whatever it asks)."""
    if bound_workspace(session) is None:
        cross_workspace_job(session, CrossWorkspaceJob.WORKSPACE_DIRECTORY)


def by_resource_id(session: Session, resource_id: str) -> Workspace | None:
    """The workspace named ``resource_id`` (read through the directory; not locked)."""
    _directory(session)
    stmt = select(Workspace).where(Workspace.resource_id == resource_id)
    return session.execute(stmt).scalar_one_or_none()


def epoch_by_resource_id(session: Session, resource_id: str) -> int | None:
    """The cache epoch of the workspace named ``resource_id`` (through the directory)."""
    _directory(session)
    stmt = select(Workspace.cache_epoch).where(Workspace.resource_id == resource_id)
    value = session.execute(stmt).scalar_one_or_none()
    return None if value is None else int(value)


def lock(session: Session, uid: str) -> Workspace | None:
    """The bound workspace's row, locked ``FOR NO KEY UPDATE`` (the global lock order of
    ``storage.repositories.sign_path``) and re-read."""
    stmt = select(Workspace).where(Workspace.id == uid).with_for_update(key_share=True)
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


def by_uid(session: Session, uid: str) -> Workspace | None:
    """The workspace with id ``uid``: on PostgreSQL only once the unit of work is bound to it."""
    return session.get(Workspace, uid)


def insert(session: Session, row: Workspace) -> None:
    """Insert a new workspace; the unit of work must be bound to ``row.id`` first."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"workspaces/{row.resource_id}") from exc


def page(
    session: Session, *, after: str | None, limit: int, only: frozenset[str] | None
) -> Sequence[Workspace]:
    _directory(session)
    stmt = select(Workspace).order_by(Workspace.resource_id).limit(limit)
    if after is not None:
        stmt = stmt.where(Workspace.resource_id > after)
    if only is not None:
        stmt = stmt.where(Workspace.resource_id.in_(sorted(only)))
    return session.execute(stmt).scalars().all()


def all_ids(session: Session) -> list[tuple[str, str]]:
    """(uid, resource id) of every workspace: for system jobs that visit workspaces one by one,
    and for audit readers naming chains."""
    _directory(session)
    rows = session.execute(select(Workspace.id, Workspace.resource_id).order_by(Workspace.id))
    return [(uid, rid) for uid, rid in rows.all()]
