"""The cache epoch and its channels on real databases: a relevant ORM change bumps the epoch in
its own transaction (and a rolled-back one does not), a committed bump reaches listeners of the
same engine, another process's bump is heard by polling (SQLite, PostgreSQL) and by LISTEN/NOTIFY
alone (PostgreSQL, polling switched off)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.support import pg
from vault_server.storage import invalidation, migrate
from vault_server.storage.database import Database
from vault_server.storage.models import Workspace
from vault_server.storage.tenant import bind_workspace


@pytest.fixture
def db(vault_database_url: str) -> Iterator[Database]:
    database = Database(vault_database_url)
    if not database.is_postgres:
        migrate.upgrade(database.engine)
    yield database
    invalidation.remove_commit_listeners(database.engine)
    database.dispose()


def _workspace(db: Database) -> str:
    now = dt.datetime.now(dt.UTC)
    ws_id = str(uuid.uuid4())
    with db.transaction() as session:
        bind_workspace(session, ws_id)  # row-level security: a workspace row is its own
        session.add(
            Workspace(
                id=ws_id, resource_id=f"ws-{ws_id[:8]}", state="active", create_time=now,
                update_time=now,
            )
        )  # fmt: skip
    return ws_id


def _epoch(db: Database, ws_id: str) -> int:
    with db.transaction() as session:
        bind_workspace(session, ws_id)
        return int(
            session.execute(select(Workspace.cache_epoch).where(Workspace.id == ws_id)).scalar_one()
        )


def _set_state(db: Database, ws_id: str, state: str, *, fail: bool = False) -> None:
    class Abort(Exception):
        pass

    try:
        with db.transaction() as session:
            bind_workspace(session, ws_id)
            ws = session.get(Workspace, ws_id)
            assert ws is not None
            ws.state = state
            session.flush()
            if fail:
                raise Abort
    except Abort:
        pass


def test_a_relevant_change_bumps_the_epoch_in_its_own_transaction(db: Database) -> None:
    heard: list[frozenset[str]] = []
    invalidation.add_commit_listener(db.engine, heard.append)
    ws_id = _workspace(db)
    assert _epoch(db, ws_id) == 0 and heard == []  # creating is no change to a cached state
    _set_state(db, ws_id, "frozen", fail=True)
    assert _epoch(db, ws_id) == 0 and heard == []  # rolled back with the change
    _set_state(db, ws_id, "frozen")
    assert _epoch(db, ws_id) == 1 and heard == [frozenset({ws_id})]
    with db.transaction() as session:
        bind_workspace(session, ws_id)
        ws = session.get(Workspace, ws_id)
        assert ws is not None
        ws.display_name = "renamed"  # not something a signature depends on
    assert _epoch(db, ws_id) == 1


def test_another_process_bump_is_heard_by_polling(db: Database) -> None:
    ws_id = _workspace(db)
    heard = threading.Event()
    got: list[tuple[frozenset[str] | None, bool]] = []

    def on_change(ids: frozenset[str] | None, keys: bool) -> None:
        got.append((ids, keys))
        heard.set()

    watcher = invalidation.EpochWatcher(db.engine, on_change, poll_interval_s=0.1, listen=False)
    watcher.start()
    try:
        other = Database(db.url)  # another engine: its commits reach no listener of ours
        try:
            assert not heard.wait(0.5)
            _set_state(other, ws_id, "frozen")
        finally:
            other.dispose()
        assert heard.wait(5)
    finally:
        watcher.stop()
    assert got == [(frozenset({ws_id}), True)]  # polling cannot tell: data keys go too


@pytest.mark.postgres
def test_a_notification_alone_reaches_another_replica() -> None:
    admin, app_url = pg.provisioned_database()
    db, other = Database(app_url), Database(app_url)
    heard = threading.Event()
    got: list[tuple[frozenset[str] | None, bool]] = []

    def on_change(ids: frozenset[str] | None, keys: bool) -> None:
        got.append((ids, keys))
        heard.set()

    # Polling every hour: only LISTEN can deliver within the test.
    watcher = invalidation.EpochWatcher(db.engine, on_change, poll_interval_s=3600)
    try:
        ws_id = _workspace(db)
        watcher.start()
        for _ in range(50):  # the LISTEN connection is up once a probe bump arrives
            with other.transaction() as session:
                invalidation.bump(session, ["probe"])
            if heard.wait(0.1):
                break
        assert heard.is_set()
        heard.clear()
        got.clear()
        _set_state(other, ws_id, "frozen")
        assert heard.wait(5)
        assert got == [(frozenset({ws_id}), True)]  # a freeze: cached data keys go as well
        heard.clear()
        got.clear()
        with other.transaction() as session:  # what a routing renewal or end sends
            invalidation.bump(session, [ws_id], keys=False)
        assert heard.wait(5)
        assert got == [(frozenset({ws_id}), False)]  # states only: data keys stay cached
    finally:
        watcher.stop()
        other.dispose()
        db.dispose()
        pg.drop_database(admin)
