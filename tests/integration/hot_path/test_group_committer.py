"""The group committer on a real SQLite file: batching, ordering, failure fan-out, and that no
outcome is released before its batch is durable."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from vault_server.storage.group_commit import BatchReport, GroupCommitter
from vault_server.storage.raw_sql import BatchConnection

_INSERT = text("INSERT INTO t VALUES (:n, :b)")


class Boom(Exception):
    pass


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'gc.db'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, batch INTEGER)"))
    yield eng
    eng.dispose()


class Recorder:
    """``apply``: insert each item (an int) with the batch number; a gate can hold a batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_batch_with: BaseException | None = None

    def __call__(self, conn: BatchConnection, items: Sequence[int]) -> list[int | BaseException]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(list(items))
        out: list[int | BaseException] = []
        for n in items:
            if n < 0:
                out.append(ValueError(f"item {n} refused"))  # item-level failure, nothing written
                continue
            conn.execute(conn.prepare(_INSERT), {"n": n, "b": len(self.batches)})
            out.append(n * 10)
        if self.fail_batch_with is not None:
            raise self.fail_batch_with
        return out


def _rows(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        return {int(n): int(b) for n, b in conn.execute(text("SELECT n, batch FROM t"))}


def test_items_queued_while_a_batch_commits_share_the_next_transaction(engine: Engine) -> None:
    rec, reports = Recorder(), list[BatchReport]()
    committer = GroupCommitter(
        engine, rec, on_batch_failure=lambda e: Boom(), on_batch=reports.append
    )
    try:
        rec.gate.clear()
        first = committer.submit_future(1)
        assert rec.entered.wait(5)  # the writer holds batch 1 open
        later = [committer.submit_future(n) for n in range(2, 12)]
        rec.gate.set()
        assert first.result(5) == 10
        assert [f.result(5) for f in later] == [n * 10 for n in range(2, 12)]
    finally:
        committer.close()
    assert rec.batches == [[1], list(range(2, 12))]  # arrival order kept inside the batch
    assert _rows(engine) == {1: 1, **dict.fromkeys(range(2, 12), 2)}
    assert [(r.size, r.ok) for r in reports] == [(1, True), (10, True)]


def test_a_failed_batch_fails_every_item_and_writes_nothing(engine: Engine) -> None:
    rec, reports = Recorder(), list[BatchReport]()
    committer = GroupCommitter(
        engine, rec, on_batch_failure=lambda e: Boom(type(e).__name__), on_batch=reports.append
    )
    try:
        rec.gate.clear()
        holder = committer.submit_future(1)
        assert rec.entered.wait(5)
        doomed = [committer.submit_future(n) for n in (2, 3, 4)]
        rec.fail_batch_with = RuntimeError("disk full")  # raised after the inserts of batch 1
        rec.gate.set()
        for fut in (holder, *doomed):
            with pytest.raises(Boom):
                fut.result(5)
        rec.fail_batch_with = None
        assert committer.submit_sync(5, timeout_s=5) == 50  # the writer recovers
    finally:
        committer.close()
    assert _rows(engine) == {5: 3}  # nothing of the failed batches survived
    assert [r.ok for r in reports] == [False, False, True]


def test_an_item_failure_fails_only_that_item(engine: Engine) -> None:
    rec = Recorder()
    committer = GroupCommitter(engine, rec, on_batch_failure=lambda e: Boom())
    try:
        rec.gate.clear()
        futures = [committer.submit_future(1)]
        assert rec.entered.wait(5)
        futures += [committer.submit_future(n) for n in (2, -3, 4)]
        rec.gate.set()
        assert futures[0].result(5) == 10 and futures[1].result(5) == 20
        with pytest.raises(ValueError, match="item -3 refused"):
            futures[2].result(5)
        assert futures[3].result(5) == 40
    finally:
        committer.close()
    assert sorted(_rows(engine)) == [1, 2, 4]


def test_an_outcome_is_released_only_after_its_commit(engine: Engine) -> None:
    seen: list[bool] = []

    def apply(conn: BatchConnection, items: Sequence[int]) -> list[int | BaseException]:
        for n in items:
            conn.execute(conn.prepare(_INSERT), {"n": n, "b": 0})
        return list(items)

    committer: GroupCommitter[int, int] = GroupCommitter(
        engine, apply, on_batch_failure=lambda e: Boom()
    )
    try:
        for n in range(20):
            committer.submit_sync(n, timeout_s=5)
            seen.append(n in _rows(engine))  # another connection already sees the row
    finally:
        committer.close()
    assert seen == [True] * 20


async def test_async_callers_are_woken_on_their_loop(engine: Engine) -> None:
    import asyncio

    rec = Recorder()
    committer = GroupCommitter(engine, rec, on_batch_failure=lambda e: Boom())
    try:
        results = await asyncio.gather(*(committer.submit(n) for n in range(1, 33)))
    finally:
        committer.close()
    assert results == [n * 10 for n in range(1, 33)]
    assert sum(len(b) for b in rec.batches) == 32
    assert len(_rows(engine)) == 32


def test_closed_committer_refuses_new_items(engine: Engine) -> None:
    committer = GroupCommitter(engine, Recorder(), on_batch_failure=lambda e: Boom())
    committer.close()
    from vault_server.storage.group_commit import CommitterClosed

    with pytest.raises(CommitterClosed):
        committer.submit_future(1)


def test_a_failing_observer_neither_kills_the_writer_nor_withholds_results(engine: Engine) -> None:
    def observer(_report: BatchReport) -> None:
        raise RuntimeError("metrics backend down")

    committer = GroupCommitter(
        engine, Recorder(), on_batch_failure=lambda e: Boom(), on_batch=observer
    )
    try:
        assert [committer.submit_sync(n, timeout_s=5) for n in (1, 2, 3)] == [10, 20, 30]
    finally:
        committer.close()
    assert sorted(_rows(engine)) == [1, 2, 3]


def test_the_committer_leaves_wal_checkpoints_to_the_checkpoint_thread(tmp_path: Path) -> None:
    """With SQLite's default threshold (1,000 pages) the committer's own commits would
    checkpoint and reset the WAL; raised, they never do - the WAL checkpointer thread does,
    without the writer lock."""
    from vault_server.storage.wal_checkpoint import WalCheckpointer

    eng = create_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with eng.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, batch INTEGER)"))
    committer = GroupCommitter(
        eng, Recorder(), on_batch_failure=lambda e: Boom(), sqlite_autocheckpoint_pages=10_000
    )
    try:
        for n in range(1100):  # one batch each: one commit, at least one WAL frame each
            committer.submit_sync(n, timeout_s=10)
    finally:
        committer.close()
    busy, frames, done = WalCheckpointer(eng).checkpoint()
    assert busy == 0 and frames >= 1100, frames  # never checkpointed (nor reset) by the commits
    assert done == frames
    assert len(_rows(eng)) == 1100
    eng.dispose()
