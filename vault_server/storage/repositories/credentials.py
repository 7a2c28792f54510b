"""Queries on credentials and their versions. Every query is scoped by workspace id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault_server.core.errors import AlreadyExists
from vault_server.storage.models import Credential, CredentialVersion


def by_resource_id(
    session: Session, workspace_id: str, resource_id: str, *, lock: bool = False
) -> Credential | None:
    stmt = select(Credential).where(
        Credential.workspace_id == workspace_id, Credential.resource_id == resource_id
    )
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return session.execute(stmt).scalar_one_or_none()


def insert(session: Session, row: Credential, name: str) -> None:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(name) from exc


def versions(session: Session, credential: Credential) -> list[CredentialVersion]:
    stmt = (
        select(CredentialVersion)
        .where(
            CredentialVersion.workspace_id == credential.workspace_id,
            CredentialVersion.credential_id == credential.id,
        )
        .order_by(CredentialVersion.version.desc())
    )
    return list(session.execute(stmt).scalars().all())


def version(
    session: Session, credential: Credential, number: int, *, lock: bool = False
) -> CredentialVersion | None:
    stmt = select(CredentialVersion).where(
        CredentialVersion.workspace_id == credential.workspace_id,
        CredentialVersion.credential_id == credential.id,
        CredentialVersion.version == number,
    )
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return session.execute(stmt).scalar_one_or_none()


def page(
    session: Session,
    workspace_id: str,
    *,
    after: str | None,
    limit: int,
    broker: str | None,
    show_revoked: bool,
) -> Sequence[Credential]:
    stmt = (
        select(Credential)
        .where(Credential.workspace_id == workspace_id)
        .order_by(Credential.resource_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Credential.resource_id > after)
    if broker is not None:
        stmt = stmt.where(Credential.broker == broker)
    if not show_revoked:
        stmt = stmt.where(Credential.state != "revoked")
    return session.execute(stmt).scalars().all()


def expired_previous(
    session: Session, now_limit: object, limit: int
) -> Sequence[CredentialVersion]:
    """PREVIOUS versions of the session's workspace whose grace period ended."""
    stmt = (
        select(CredentialVersion)
        .where(
            CredentialVersion.state == "previous",
            CredentialVersion.destroy_after <= now_limit,
        )
        .limit(limit)
        .with_for_update()
    )
    return session.execute(stmt).scalars().all()
