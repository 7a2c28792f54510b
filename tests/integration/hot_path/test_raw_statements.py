"""``storage.raw_sql``: a statement run raw stores exactly what SQLAlchemy would store.

An audit event and a replay claim are written once through SQLAlchemy Core and once through a
``Prepared`` statement on a ``BatchConnection``; read back through the ORM, the two rows are equal
in every column but the key (timezone-aware datetimes, JSON details, NULLs). On PostgreSQL the
same statements are compiled for the psycopg dialect (named parameters)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.dialects import postgresql

from tests.support import pg
from vault_server.storage.models import AuditChainHead, AuditEvent, Base, Workspace
from vault_server.storage.raw_sql import BatchConnection, Prepared
from vault_server.storage.repositories import sign_path as repo

NOW = dt.datetime(2026, 12, 2, 5, 6, 7, 123456, tzinfo=dt.UTC)


def _event(seq: int) -> dict[str, object]:
    return {
        "chain_id": "ws-1", "seq": seq, "event_time": NOW, "workspace_id": None,
        "workspace": "workspaces/a", "credential": "", "action": "credential.use",
        "outcome": "success", "actor_type": "service", "actor_id": "router", "on_behalf_of": "",
        "peer": "unix", "reason": "r", "routing_context": "", "request_id": "q",
        "method": "/m", "error_reason": "", "details": {"b": "2", "a": "1"},
        "prev_hash": "0" * 64, "hash": f"{seq:064d}",
    }  # fmt: skip


def test_a_raw_insert_stores_what_core_stores(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'raw.db'}")
    Base.metadata.create_all(engine, tables=[AuditEvent.__table__])  # type: ignore[list-item]
    with engine.begin() as conn:
        conn.execute(repo._EVENTS_INSERT, [_event(1)])
    raw = BatchConnection(engine)
    try:
        raw.begin(5000)
        repo.insert_events(raw, [_event(2)])
        repo.insert_events(raw, [_event(3), _event(4)])  # executemany
        raw.commit()
    finally:
        raw.close()
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.seq)).mappings().all()
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    columns = [c for c in rows[0] if c not in ("id", "seq", "hash")]
    for row in rows[1:]:
        assert {c: row[c] for c in columns} == {c: rows[0][c] for c in columns}
    assert rows[1]["event_time"] == NOW and rows[1]["details"] == {"a": "1", "b": "2"}
    engine.dispose()


def test_result_processors_turn_sqlite_text_back_into_aware_datetimes(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'raw.db'}")
    stmt = Prepared(
        repo._CLAIM,
        engine.dialect,
        result_types=(repo._orders.c.id.type, repo._orders.c.expire_time.type),
    )
    assert stmt.row((7, "2026-12-02 05:06:07.123456")) == (7, NOW)
    assert stmt.row(None) is None
    engine.dispose()


def test_postgres_statements_bind_by_name_with_the_same_processors() -> None:
    stmt = Prepared(repo._CLAIM_PG, postgresql.psycopg.dialect(), column_keys=repo._CLAIM_COLUMNS)
    assert "%(workspace_id)s" in stmt.sql and "ON CONFLICT" in stmt.sql and "RETURNING" in stmt.sql
    params = stmt.params(
        {
            "workspace_id": "w", "credential_id": "c", "client_order_id": "o",
            "sign_time": NOW, "expire_time": NOW + dt.timedelta(seconds=5),
        }
    )  # fmt: skip
    assert isinstance(params, dict)
    assert params["sign_time"] == NOW  # aware, UTC: what UtcDateTime hands PostgreSQL


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_epoch_and_head_read_together_match_the_separate_reads(
    tmp_path: Path, backend: str
) -> None:
    """The batch's first read: on SQLite one joined statement, on PostgreSQL the locked head
    read apart. Same answers as the single reads: a head, no head yet, no workspace."""
    url = f"sqlite:///{tmp_path / 'raw.db'}" if backend == "sqlite" else pg.create_database()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        tables = [Workspace.__table__, AuditChainHead.__table__]
        Base.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
        with engine.begin() as conn:
            for ws_id, epoch in (("ws-with-head", 7), ("ws-no-head", 3)):
                conn.execute(
                    Workspace.__table__.insert(),  # type: ignore[attr-defined]
                    {"id": ws_id, "resource_id": ws_id, "state": "active", "cache_epoch": epoch,
                     "create_time": NOW, "update_time": NOW},
                )  # fmt: skip
            conn.execute(
                AuditChainHead.__table__.insert(),  # type: ignore[attr-defined]
                {"chain_id": "ws-with-head", "workspace_id": "ws-with-head", "seq": 41,
                 "hash": "a" * 64},
            )  # fmt: skip
        raw = BatchConnection(engine)
        try:
            raw.begin(5000)
            got = {ws: repo.epoch_and_head(raw, ws) for ws in ("ws-with-head", "ws-no-head")}
            got["gone"] = repo.epoch_and_head(raw, "gone")
            apart = {
                ws: (repo.epoch(raw, ws), repo.chain_head(raw, ws))
                for ws in ("ws-with-head", "ws-no-head", "gone")
            }
            raw.commit()
        finally:
            raw.close()
        assert (
            got
            == apart
            == {
                "ws-with-head": (7, (41, "a" * 64)),
                "ws-no-head": (3, None),
                "gone": (None, None),
            }
        )
    finally:
        engine.dispose()
        if backend == "postgres":
            pg.drop_database(url)
