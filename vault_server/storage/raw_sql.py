"""Statements compiled once, run on a raw DBAPI connection: the group committer's fast lane.

SQLAlchemy Core costs tens of microseconds per ``execute`` (compiled-cache lookup, execution
context, result wrapping, events) - more than SQLite needs to run the statement. The signing
batch runs a handful of statements per signature on one connection it owns, so it compiles each
Core statement once per dialect (``Prepared``: the SQL text, the parameter order and the column
types' bind processors, exactly as SQLAlchemy would apply them) and runs it on the driver's
cursor. Schema, types and SQL stay defined in one place (the models and Core statements); only
the per-call machinery is skipped. Everything else in the vault keeps using SQLAlchemy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any]


class Prepared:
    """One Core statement compiled for one dialect, with its bind processors resolved.

    ``column_keys`` names the columns an INSERT/UPDATE sets (as ``Connection.execute`` would
    infer from the parameters); ``result_types`` gives the result processors of selected columns
    that need one (e.g. datetimes stored as text on SQLite).
    """

    __slots__ = ("_names", "_positional", "_processors", "_results", "sql")

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        *,
        column_keys: Sequence[str] | None = None,
        result_types: Sequence[Any] = (),
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys else None
        )
        assert isinstance(compiled, SQLCompiler)
        self.sql: str = compiled.string
        self._positional = bool(compiled.positional)
        binds: Mapping[str, BindParameter[Any]] = compiled.binds
        names = list(compiled.positiontup or ()) if self._positional else list(binds)
        self._names: tuple[str, ...] = tuple(names)
        processors: dict[str, Processor] = {}
        for name in names:
            bind = binds[name]
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                processors[name] = proc
        self._processors = processors
        self._results = tuple(
            t.dialect_impl(dialect).result_processor(dialect, None) for t in result_types
        )

    def params(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        procs = self._processors
        if self._positional:
            return tuple(procs[n](values[n]) if n in procs else values[n] for n in self._names)
        return {n: procs[n](values[n]) if n in procs else values[n] for n in self._names}

    def row(self, raw: Sequence[Any] | None) -> tuple[Any, ...] | None:
        """Apply the result processors to a fetched row (columns without one pass through)."""
        if raw is None:
            return None
        if not self._results:
            return tuple(raw)
        out = list(raw)
        for i, proc in enumerate(self._results):
            if proc is not None and out[i] is not None:
                out[i] = proc(out[i])
        return tuple(out)


class BatchConnection:
    """A DBAPI connection of the engine's pool, used with explicit transactions.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock up front (the engine's connections run in
    the driver's autocommit mode, see ``storage.database``) and ``COMMIT`` is the fsync.
    PostgreSQL: the driver opens the transaction at the first statement; the statement and lock
    timeouts are set for it alone (``SET LOCAL``).
    """

    def __init__(self, engine: Engine, *, sqlite_autocheckpoint_pages: int | None = None) -> None:
        self.dialect: Dialect = engine.dialect
        self.is_postgres = engine.dialect.name == "postgresql"
        self._raw = engine.raw_connection()
        self._cursor = self._raw.cursor()
        if sqlite_autocheckpoint_pages is not None and engine.dialect.name == "sqlite":
            # Per connection: see storage.wal_checkpoint.
            self._cursor.execute(f"PRAGMA wal_autocheckpoint={int(sqlite_autocheckpoint_pages)}")
        self._prepared: dict[int, tuple[ClauseElement, Prepared]] = {}
        self._pipeline: Any = None  # PostgreSQL: the open transaction's pipeline

    def prepare(self, statement: ClauseElement, **options: Any) -> Prepared:
        """The statement compiled for this connection's dialect (once per statement object)."""
        hit = self._prepared.get(id(statement))
        if hit is not None and hit[0] is statement:
            return hit[1]
        prepared = Prepared(statement, self.dialect, **options)
        self._prepared[id(statement)] = (statement, prepared)  # keeps ``statement`` alive
        return prepared

    def begin(self, timeout_ms: int) -> None:
        if self.is_postgres:
            # Pipeline mode: statements whose result nobody reads (the RLS binding, inserts,
            # updates) are sent without waiting for their answer; the next read waits for all.
            # A batch spanning many workspaces then costs a few round trips per workspace.
            driver = self._raw.driver_connection
            assert driver is not None  # a checked-out pool connection
            self._pipeline = driver.pipeline()
            self._pipeline.__enter__()
            ms = int(timeout_ms)
            self._cursor.execute(f"SET LOCAL statement_timeout = {ms}")
            self._cursor.execute(f"SET LOCAL lock_timeout = {ms}")
        else:
            self._cursor.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.is_postgres:
            self._end_pipeline(None)  # raises the first error of what was still in flight
            self._raw.commit()
        else:
            self._cursor.execute("COMMIT")

    def _end_pipeline(self, error: BaseException | None) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.__exit__(type(error) if error else None, error, None)

    def execute(self, stmt: Prepared, values: Mapping[str, Any]) -> Any:
        self._cursor.execute(stmt.sql, stmt.params(values))
        return self._cursor

    def executemany(self, stmt: Prepared, rows: Iterable[Mapping[str, Any]]) -> None:
        params: list[Any] = [stmt.params(r) for r in rows]
        self._cursor.executemany(stmt.sql, params)

    def first(self, stmt: Prepared, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        self._cursor.execute(stmt.sql, stmt.params(values))
        return stmt.row(self._cursor.fetchone())

    def all(self, stmt: Prepared, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        self._cursor.execute(stmt.sql, stmt.params(values))
        return [row for raw in self._cursor.fetchall() if (row := stmt.row(raw)) is not None]

    def scalar(self, stmt: Prepared, values: Mapping[str, Any]) -> Any:
        row = self.first(stmt, values)
        return None if row is None else row[0]

    def discard(self) -> None:
        """Roll back and drop the connection (after a failure its state is unknown)."""
        with contextlib.suppress(Exception):  # a pipeline broken by the failure
            self._end_pipeline(RuntimeError("discarded"))
        with contextlib.suppress(Exception):  # the connection may already be gone
            self._raw.rollback()
        with contextlib.suppress(Exception):
            self._raw.invalidate()

    def close(self) -> None:
        try:
            self._raw.rollback()
        finally:
            self._raw.close()
