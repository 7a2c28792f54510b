"""Schema and storage guarantees on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from vault_server.audit._log import AuditLog, AuditRecord, chain_hash
from vault_server.core.clock import FixedClock
from vault_server.domain._call import system_context
from vault_server.storage import migrate
from vault_server.storage.database import Database
from vault_server.storage.models import AuditEvent, Base


@pytest.fixture
def db(database_url: str) -> Database:
    database = Database(database_url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def test_migrations_reach_head_and_match_the_models(db: Database) -> None:
    assert migrate.current_revision(db.engine) == migrate.head_revision(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations drifted: {diff}"


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision(db.engine)


def _append(db: Database, n: int) -> None:
    log = AuditLog(b"k" * 32, FixedClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    for i in range(n):
        with db.transaction() as session:
            log.append(session, system_context(f"r{i}"), AuditRecord(action="test.event"))


def test_audit_rows_cannot_be_updated_or_deleted(db: Database) -> None:
    _append(db, 2)
    for stmt in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(stmt))
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 2


def test_audit_chain_links_every_event(db: Database) -> None:
    _append(db, 5)
    with db.transaction() as session:
        rows = session.query(AuditEvent).order_by(AuditEvent.seq).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row.prev_hash == prev.hash
    for row in rows:
        assert chain_hash(b"k" * 32, row) == row.hash
    rows[2].reason = "tampered"
    assert chain_hash(b"k" * 32, rows[2]) != rows[2].hash


def test_timestamps_round_trip_as_utc(db: Database) -> None:
    _append(db, 1)
    with db.transaction() as session:
        row = session.query(AuditEvent).one()
    assert row.event_time == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_orm_guard_fails_closed_and_checks_writes(db: Database) -> None:
    import uuid

    from sqlalchemy import select

    from vault_server.core.errors import InternalError
    from vault_server.storage.models import Credential, Workspace
    from vault_server.storage.tenant import bind_workspace

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    with db.transaction() as session:
        for uid, rid in zip(ids, ("ws-a", "ws-b"), strict=True):
            session.add(Workspace(id=uid, resource_id=rid, display_name="", state="active",
                                  freeze_reason="", frozen_by="", create_time=now, update_time=now))  # fmt: skip
    for uid in ids:
        with db.transaction() as session:
            bind_workspace(session, uid)
            session.add(Credential(
                id=str(uuid.uuid4()), workspace_id=uid, resource_id="c", display_name="",
                broker="binance_spot", environment="live", key_algorithm="hmac_sha256", state="active",
                api_key_hint="", scopes=[], venue_scopes=[], single_permission_tier=False,
                current_version=0, policy={}, create_time=now, update_time=now, revision=1,
            ))  # fmt: skip
    with db.transaction() as session:  # never bound: sees nothing
        assert session.execute(select(Credential)).scalars().all() == []
    with db.transaction() as session:
        bind_workspace(session, ids[0])
        rows = session.execute(select(Credential)).scalars().all()
        assert [r.workspace_id for r in rows] == [ids[0]]
        # A filter naming B is still ANDed with A's criterion.
        assert (
            session.execute(select(Credential).where(Credential.workspace_id == ids[1]))
            .scalars()
            .all()
            == []
        )
        with pytest.raises(InternalError):
            bind_workspace(session, ids[1])  # one workspace per unit of work
    with pytest.raises(InternalError), db.transaction() as session:
        bind_workspace(session, ids[0])
        session.add(Credential(
            id=str(uuid.uuid4()), workspace_id=ids[1], resource_id="evil", display_name="",
            broker="binance_spot", environment="live", key_algorithm="hmac_sha256", state="active",
            api_key_hint="", scopes=[], venue_scopes=[], single_permission_tier=False,
            current_version=0, policy={}, create_time=now, update_time=now, revision=1,
        ))  # fmt: skip
