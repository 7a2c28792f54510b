"""Queries on the workspaces table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault_server.core.errors import AlreadyExists
from vault_server.storage.models import Workspace


def by_resource_id(session: Session, resource_id: str, *, lock: bool = False) -> Workspace | None:
    stmt = select(Workspace).where(Workspace.resource_id == resource_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return session.execute(stmt).scalar_one_or_none()


def by_uid(session: Session, uid: str) -> Workspace | None:
    return session.get(Workspace, uid)


def insert(session: Session, row: Workspace) -> None:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"workspaces/{row.resource_id}") from exc


def page(
    session: Session, *, after: str | None, limit: int, only: frozenset[str] | None
) -> Sequence[Workspace]:
    stmt = select(Workspace).order_by(Workspace.resource_id).limit(limit)
    if after is not None:
        stmt = stmt.where(Workspace.resource_id > after)
    if only is not None:
        stmt = stmt.where(Workspace.resource_id.in_(sorted(only)))
    return session.execute(stmt).scalars().all()


def all_ids(session: Session) -> list[tuple[str, str]]:
    """(uid, resource id) of every workspace: for system jobs that visit workspaces one by one."""
    rows = session.execute(select(Workspace.id, Workspace.resource_id).order_by(Workspace.id))
    return [(uid, rid) for uid, rid in rows.all()]
