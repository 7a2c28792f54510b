"""Schema and storage guarantees on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from vault_server.core.clock import FixedClock
from vault_server.services.audit_log import AuditLog, AuditRecord, chain_hash
from vault_server.services.call import system_context
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
