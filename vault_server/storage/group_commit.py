"""Group commit: many callers' durable writes share one transaction and one fsync.

Callers ``submit`` an item and await its outcome. One writer thread takes every item queued so
far (up to ``max_batch``), opens one transaction on its own raw connection (a
``storage.raw_sql.BatchConnection``: statements compiled once, no per-statement SQLAlchemy
machinery), hands the whole batch to ``apply(conn, items)`` - which returns one outcome per
item, in order, and must leave no write behind for an item it fails - and commits. Only then is
any outcome released: a caller never sees a result whose writes are not durable. If ``apply``
raises or the commit fails, every item in the batch fails with ``on_batch_failure(exc)`` and
nothing of the batch survives - unless the transaction only lost a race (``retry(exc)``: a
PostgreSQL deadlock victim or serialization failure, see ``storage.conflicts``): then the
whole batch is rolled back and applied again on a fresh transaction, at most
``max_attempts`` times, before anyone is told anything.

Items of one batch are applied in submission order, so per-chain sequence order follows arrival.
``submit_all`` queues many items as one bundle: they are never split across transactions (a
bundle larger than ``max_batch`` gets a transaction of its own), so a fan-out call's items are
durable together or not at all, and its caller gets every outcome at once (failures as values).
Callers waiting on the event loop are woken with ``call_soon_threadsafe``; the loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from vault_server.core.errors import AuditUnavailable
from vault_server.observability.logging import get_logger
from vault_server.storage.raw_sql import BatchConnection

_log = get_logger("pipvault.group_commit")

T = TypeVar("T")
R = TypeVar("R")

ApplyBatch = Callable[[BatchConnection, Sequence[T]], Sequence[R | BaseException]]


@dataclass
class _Waiter(Generic[T]):
    items: Sequence[T]  # one item, or a bundle (``bundle``) applied in the same transaction
    queued: float
    bundle: bool = False
    future: Future[Any] | None = None  # a thread waits (submit_sync / submit_future)
    loop: asyncio.AbstractEventLoop | None = None  # or a coroutine on this loop
    afuture: asyncio.Future[Any] | None = None


@dataclass(frozen=True)
class BatchReport:
    size: int
    ok: bool
    waits: tuple[float, ...]  # per item: queued to durable (or failed), seconds
    attempts: int = 1  # transactions it took (more than one: it lost a race and was retried)


class CommitterClosed(AuditUnavailable):
    """Submitted after ``close``: nothing can be made durable any more."""


class GroupCommitter(Generic[T, R]):
    """One writer thread, one connection, one transaction per batch (see module docstring).

    Args:
        engine: where to write; the committer keeps one connection of its own.
        apply: runs a batch inside the open transaction.
        on_batch_failure: the exception every item of a failed batch receives.
        on_batch: observer called after each batch (metrics, readiness accounting).
        max_batch: most items per transaction.
        statement_timeout_ms: PostgreSQL bound on every statement of a batch.
        sqlite_autocheckpoint_pages: SQLite WAL size at which a batch's commit checkpoints
            (default: SQLite's own; see ``storage.wal_checkpoint``).
        retry: whether a failed transaction only lost a race and may run again.
        max_attempts: most transactions one batch may take (bounds ``retry``).
    """

    def __init__(
        self,
        engine: Engine,
        apply: ApplyBatch[T, R],
        *,
        on_batch_failure: Callable[[BaseException], BaseException],
        on_batch: Callable[[BatchReport], None] | None = None,
        max_batch: int = 256,
        statement_timeout_ms: int = 5000,
        name: str = "pipvault-commit",
        sqlite_autocheckpoint_pages: int | None = None,
        retry: Callable[[BaseException], bool] | None = None,
        max_attempts: int = 3,
    ) -> None:
        self._engine = engine
        self._apply = apply
        self._fail = on_batch_failure
        self._observe = on_batch
        self._max = max_batch
        self._timeout_ms = int(statement_timeout_ms)
        self._autocheckpoint = sqlite_autocheckpoint_pages
        self._retry = retry
        self._attempts = max(1, max_attempts)
        self._queue: queue.SimpleQueue[_Waiter[T] | None] = queue.SimpleQueue()
        self._conn: BatchConnection | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # --- callers ----------------------------------------------------------------------------
    def submit_future(self, item: T) -> Future[R]:
        self._check_open()
        fut: Future[R] = Future()
        self._queue.put(_Waiter((item,), time.monotonic(), future=fut))
        return fut

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait (without blocking the loop) until its batch is durable."""
        self._check_open()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._queue.put(_Waiter((item,), time.monotonic(), loop=loop, afuture=fut))
        return await fut

    async def submit_all(self, items: Sequence[T]) -> list[R | BaseException]:
        """Queue ``items`` as one bundle (one transaction) and wait until it is durable; each
        item's outcome is returned in order, a failed one as its exception."""
        self._check_open()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[R | BaseException]] = loop.create_future()
        waiter = _Waiter(tuple(items), time.monotonic(), bundle=True, loop=loop, afuture=fut)
        self._queue.put(waiter)
        return await fut

    def _check_open(self) -> None:
        if self._closed:
            raise CommitterClosed("the vault is shutting down: nothing more can be audited")

    def submit_sync(self, item: T, timeout_s: float | None = None) -> R:
        return self.submit_future(item).result(timeout=timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Finish what is queued, then stop the writer and release its connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)

    # --- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            size = len(first.items)
            while size < self._max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                size += len(nxt.items)
            try:
                self._commit(batch)
            except Exception:  # never let the writer die: every later caller would hang
                _log.exception("group_commit.writer_error", size=size)
        if self._conn is not None:
            with contextlib.suppress(Exception):  # shutting down: nothing is left to commit
                self._conn.close()
            self._conn = None

    def _connection(self) -> BatchConnection:
        if self._conn is None:
            self._conn = BatchConnection(
                self._engine, sqlite_autocheckpoint_pages=self._autocheckpoint
            )
        return self._conn

    def _commit(self, batch: list[_Waiter[T]]) -> None:
        outcomes: Sequence[R | BaseException] = ()
        items = [item for w in batch for item in w.items]
        attempt, ok = 0, False
        while not ok:
            attempt += 1
            try:
                outcomes = self._transaction(items)
                ok = True
            except BaseException as exc:  # fan the failure out to every caller
                self._drop_connection()
                if attempt < self._attempts and self._retry is not None and self._retry(exc):
                    _log.info("group_commit.retry", size=len(items), attempt=attempt)
                    continue
                error = self._fail(exc)
                outcomes = [error] * len(items)
                break
        if self._observe is not None:
            done = time.monotonic()
            waits = tuple(done - w.queued for w in batch for _ in w.items)
            try:
                self._observe(BatchReport(len(items), ok, waits, attempt))
            except Exception:  # metrics must not keep a signature from its caller
                _log.exception("group_commit.observer_error")
        # Threads are released directly; each event loop is woken once per batch.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        at = 0
        for waiter in batch:
            n = len(waiter.items)
            outcome: Any = list(outcomes[at : at + n]) if waiter.bundle else outcomes[at]
            at += n
            if waiter.future is not None:
                if waiter.future.set_running_or_notify_cancel():
                    if isinstance(outcome, BaseException):
                        waiter.future.set_exception(outcome)
                    else:
                        waiter.future.set_result(outcome)
            elif waiter.loop is not None and waiter.afuture is not None:
                by_loop.setdefault(waiter.loop, []).append((waiter.afuture, outcome))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, settled)

    def _transaction(self, items: list[T]) -> Sequence[R | BaseException]:
        conn = self._connection()
        conn.begin(self._timeout_ms)
        outcomes = self._apply(conn, items)
        if len(outcomes) != len(items):
            raise RuntimeError("the batch returned the wrong number of outcomes")
        conn.commit()
        return outcomes

    def _drop_connection(self) -> None:
        """After a failed batch: roll back whatever it wrote and start the next on a new
        connection (the old one's state is unknown)."""
        if self._conn is not None:
            self._conn.discard()
            self._conn = None


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for fut, outcome in settled:
        if fut.done():  # the caller went away (deadline, cancellation); its writes stand
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
