"""Row-level security on ``workspaces`` and ``pager_outbox``, attacked with raw SQL as the
server's app role: a transaction bound to workspace A can neither see nor change workspace B's
row or B's pages, and the named cross-workspace jobs get only the commands they need, only while
bound to no workspace (migration 0005)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from tests.support import pg

pytestmark = pytest.mark.postgres

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def dbs() -> Iterator[tuple[str, str]]:
    admin, app = pg.provisioned_database()
    try:
        yield admin, app
    finally:
        pg.drop_database(admin)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _seed(admin: str) -> tuple[str, str]:
    """Workspace A (active) and B (frozen), one pending page each and one system page."""
    ids = (str(uuid.uuid4()), str(uuid.uuid4()))
    with psycopg.connect(_plain(admin), autocommit=True) as conn:
        for ws, name, state in zip(ids, ("ws-a", "ws-b"), ("active", "frozen"), strict=True):
            conn.execute(
                "INSERT INTO workspaces (id, resource_id, display_name, state, freeze_reason, "
                "frozen_by, create_time, update_time, revision) "
                "VALUES (%s, %s, '', %s, 'incident', 'sec', %s, %s, 1)",
                (ws, name, state, NOW, NOW),
            )
        for ws in (*ids, None):
            conn.execute(
                "INSERT INTO pager_outbox (workspace_id, dedup_key, payload, create_time, "
                "attempts, next_attempt_time, last_error) VALUES (%s, %s, %s, %s, 0, %s, '')",
                (ws, f"key-{ws}", json.dumps({"summary": "x"}), NOW, NOW),
            )
    return ids


def _bind(conn: psycopg.Connection, ws: str, job: str = "") -> None:
    conn.execute("SELECT set_config('app.workspace_id', %s, true)", (ws,))
    conn.execute("SELECT set_config('app.cross_workspace_job', %s, true)", (job,))


def _count(conn: psycopg.Connection, sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("job", ["", "workspace_directory", "pager_sender", "pager_prune"])
def test_bound_to_a_cannot_see_or_touch_b_workspace_or_pages(
    dbs: tuple[str, str], job: str
) -> None:
    """Bound to A (with or without a job name set: a job never widens a bound transaction)."""
    admin, app = dbs
    ws_a, ws_b = _seed(admin)
    with psycopg.connect(_plain(app)) as conn:
        with conn.transaction():
            _bind(conn, ws_a, job)
            assert _count(conn, "SELECT count(*) FROM workspaces WHERE id = %s", ws_b) == 0
            assert conn.execute("SELECT id FROM workspaces").fetchall() == [(ws_a,)]
            unfreeze = conn.execute(
                "UPDATE workspaces SET state = 'active', freeze_reason = '' WHERE id = %s",
                (ws_b,),
            )
            assert unfreeze.rowcount == 0
            assert conn.execute("DELETE FROM workspaces WHERE id = %s", (ws_b,)).rowcount == 0

            assert (
                _count(conn, "SELECT count(*) FROM pager_outbox WHERE workspace_id = %s", ws_b) == 0
            )
            assert conn.execute("SELECT workspace_id FROM pager_outbox").fetchall() == [(ws_a,)]
            delivered = conn.execute(
                "UPDATE pager_outbox SET delivered_time = now() WHERE workspace_id = %s", (ws_b,)
            )
            assert delivered.rowcount == 0
            gone = conn.execute(
                "DELETE FROM pager_outbox WHERE workspace_id IS DISTINCT FROM %s", (ws_a,)
            )
            assert gone.rowcount == 0
            # A transaction's own pages: enqueue and look up only; delivery belongs to the sender.
            assert (
                conn.execute(
                    "UPDATE pager_outbox SET attempts = 9 WHERE workspace_id = %s", (ws_a,)
                ).rowcount
                == 0
            )
        for statement, params in (
            (
                "INSERT INTO workspaces (id, resource_id, display_name, state, freeze_reason, "
                "frozen_by, create_time, update_time, revision) "
                "VALUES (%s, 'ws-evil', '', 'active', '', '', now(), now(), 1)",
                (str(uuid.uuid4()),),
            ),
            (
                "INSERT INTO pager_outbox (workspace_id, dedup_key, payload, create_time, "
                "attempts, next_attempt_time, last_error) VALUES (%s, 'k', '{}', now(), 0, now(), '')",
                (ws_b,),
            ),
        ):
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                _bind(conn, ws_a, job)
                conn.execute(statement, params)
    with psycopg.connect(_plain(admin)) as conn:
        assert conn.execute(
            "SELECT state, freeze_reason FROM workspaces WHERE id = %s", (ws_b,)
        ).fetchone() == (
            "frozen",
            "incident",
        )
        assert (
            _count(
                conn,
                "SELECT count(*) FROM pager_outbox WHERE delivered_time IS NULL AND attempts = 0",
            )
            == 3
        )
        assert _count(conn, "SELECT count(*) FROM workspaces") == 2


def test_unbound_transactions_get_only_their_named_job(dbs: tuple[str, str]) -> None:
    admin, app = dbs
    _ws_a, ws_b = _seed(admin)
    with psycopg.connect(_plain(app)) as conn:
        with conn.transaction():  # no workspace, no job: no workspace row, no workspace's page
            assert _count(conn, "SELECT count(*) FROM workspaces") == 0
            assert conn.execute("UPDATE workspaces SET state = 'active'").rowcount == 0
            assert conn.execute("SELECT workspace_id FROM pager_outbox").fetchall() == [(None,)]
            assert conn.execute("UPDATE pager_outbox SET attempts = 1").rowcount == 0
            assert conn.execute("DELETE FROM pager_outbox").rowcount == 0
        with conn.transaction():  # the directory: read workspace rows, change none
            _bind(conn, "", "workspace_directory")
            assert _count(conn, "SELECT count(*) FROM workspaces") == 2
            assert conn.execute("UPDATE workspaces SET state = 'active'").rowcount == 0
            assert conn.execute("DELETE FROM workspaces").rowcount == 0
            assert conn.execute("UPDATE pager_outbox SET attempts = 1").rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            _bind(conn, "", "workspace_directory")  # nor insert one
            conn.execute(
                "INSERT INTO workspaces (id, resource_id, display_name, state, freeze_reason, "
                "frozen_by, create_time, update_time, revision) "
                "VALUES (%s, 'ws-c', '', 'active', '', '', now(), now(), 1)",
                (str(uuid.uuid4()),),
            )
        with conn.transaction():  # the sender: claim and mark every page, delete none
            _bind(conn, "", "pager_sender")
            assert _count(conn, "SELECT count(*) FROM pager_outbox") == 3
            assert conn.execute("SELECT id FROM pager_outbox FOR UPDATE SKIP LOCKED").rowcount == 3
            assert conn.execute("UPDATE pager_outbox SET attempts = 1").rowcount == 3
            assert conn.execute("DELETE FROM pager_outbox").rowcount == 0
            assert _count(conn, "SELECT count(*) FROM workspaces") == 0
        with conn.transaction():  # pruning: delete pages, change none
            _bind(conn, "", "pager_prune")
            assert conn.execute("UPDATE pager_outbox SET attempts = 2").rowcount == 0
            assert (
                conn.execute("DELETE FROM pager_outbox WHERE workspace_id = %s", (ws_b,)).rowcount
                == 1
            )
        with conn.transaction():  # an unknown job name is no job at all
            _bind(conn, "", "sweeper")
            assert _count(conn, "SELECT count(*) FROM workspaces") == 0
            assert conn.execute("UPDATE pager_outbox SET attempts = 3").rowcount == 0
    with psycopg.connect(_plain(admin)) as conn:
        assert conn.execute("SELECT state FROM workspaces ORDER BY resource_id").fetchall() == [
            ("active",),
            ("frozen",),
        ]
        left = conn.execute("SELECT attempts FROM pager_outbox ORDER BY id").fetchall()
        assert left == [(1,), (1,)]  # A's page and the system page


def test_the_policies_in_the_catalog_name_the_session_workspace(dbs: tuple[str, str]) -> None:
    """No allow-all policy is left on a table that holds workspace rows or pages."""
    admin, _app = dbs
    with psycopg.connect(_plain(admin)) as conn:
        rows = conn.execute(
            "SELECT tablename, policyname, cmd, coalesce(qual, ''), coalesce(with_check, '') "
            "FROM pg_policies WHERE tablename IN ('workspaces', 'pager_outbox')"
        ).fetchall()
    assert rows
    for table, name, _cmd, qual, check in rows:
        for expr in (qual, check):
            assert expr.strip("() ") != "true", f"{table}.{name} allows every row"
        assert "app.workspace_id" in qual + check, f"{table}.{name} ignores the bound workspace"
