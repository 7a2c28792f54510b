"""Engine, sessions and the one unit-of-work helper every domain call runs inside.

SQLite (WAL, foreign keys on, ``BEGIN IMMEDIATE`` for writers so concurrent writers queue on the
busy timeout instead of failing on lock upgrade) is the embedded default; PostgreSQL (psycopg 3)
is selected by URL. On PostgreSQL each transaction sets ``app.workspace_id`` with ``SET LOCAL``
semantics (``set_config(..., true)``) for row-level security, and ``statement_timeout`` from the
request deadline so storage never outlives the RPC.

Sessions are synchronous; the RPC layer runs units of work on a bounded thread pool so the gRPC
event loop never blocks on I/O.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from vault_server.core.errors import StorageUnavailable, VaultError
from vault_server.storage import tenant  # noqa: F401 - registers the ORM tenant guard


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` URLs and route them to psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Database:
    """Owns the engine and opens transactions.

    Args:
        url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql://...``).
        pool_size: connections kept open (PostgreSQL); matches the storage thread pool.
        busy_timeout_ms: how long a SQLite writer waits for the write lock.
    """

    def __init__(self, url: str, *, pool_size: int = 8, busy_timeout_ms: int = 5000) -> None:
        self.url = normalize_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "postgresql":
            # +2 beyond the old overflow: the group committer and the LISTEN connection each
            # keep one for the life of the process.
            kwargs.update(pool_size=pool_size, max_overflow=4, pool_timeout=5)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, busy_timeout_ms)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextlib.contextmanager
    def transaction(
        self,
        *,
        timeout_s: float | None = None,
        read_only: bool = False,
        snapshot: bool = False,
    ) -> Iterator[Session]:
        """Open a session in one transaction; commit on success, roll back on any error.

        Args:
            timeout_s: remaining request deadline; bounds every statement.
            read_only: the transaction only reads (on SQLite it then does not take the writer
                lock; a write in it may fail with SQLITE_BUSY).
            snapshot: every statement sees the same snapshot (PostgreSQL REPEATABLE READ; a
                SQLite transaction reads one snapshot anyway), e.g. to read several workspaces,
                binding each in turn, as of one moment.

        Raises:
            StorageUnavailable: the database failed or timed out (wrapped, never leaked).
        """
        session = self._sessions()
        try:
            with session.begin():
                options: dict[str, Any] = dict(READ_ONLY) if read_only else {}
                if snapshot and self.is_postgres:
                    options["isolation_level"] = "REPEATABLE READ"
                if options:  # before any statement: the connection begins with the options
                    session.connection(execution_options=options)
                if self.is_postgres:
                    _set_local(session, timeout_s)
                yield session
            _run_hooks(session, _AFTER_COMMIT)
        except VaultError:
            raise
        except DBAPIError as exc:
            _run_hooks(session, _AFTER_FAILURE)
            raise StorageUnavailable(
                "the database failed or timed out", metadata={"sqlstate": _sqlstate(exc)}
            ) from exc
        except SQLAlchemyError as exc:
            _run_hooks(session, _AFTER_FAILURE)
            raise StorageUnavailable("the database failed") from exc
        finally:
            session.close()

    def ping(self) -> bool:
        """True when a trivial query succeeds (readiness)."""
        try:
            with self.engine.connect().execution_options(**READ_ONLY) as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


_AFTER_COMMIT = "pipvault_after_commit"
_AFTER_FAILURE = "pipvault_after_storage_failure"


def after_commit(session: Session, key: object, hook: Callable[[], None]) -> None:
    """Call ``hook`` once after this ``transaction`` commits (one hook per ``key``)."""
    session.info.setdefault(_AFTER_COMMIT, {})[key] = hook


def after_storage_failure(session: Session, key: object, hook: Callable[[], None]) -> None:
    """Call ``hook`` once if this ``transaction`` fails in the database (a failed statement or
    commit: a full disk, a lost connection), not for a domain error that rolls it back."""
    session.info.setdefault(_AFTER_FAILURE, {})[key] = hook


def _run_hooks(session: Session, which: str) -> None:
    hooks: dict[object, Callable[[], None]] = session.info.pop(which, {})
    session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_AFTER_FAILURE, None)
    for hook in hooks.values():
        hook()


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


def _set_local(session: Session, timeout_s: float | None) -> None:
    if timeout_s is not None:
        ms = max(1, int(timeout_s * 1000))
        session.execute(text(f"SET LOCAL statement_timeout = {ms}"))
        session.execute(text(f"SET LOCAL lock_timeout = {ms}"))


READ_ONLY_OPTION = "pipvault_read_only"
READ_ONLY = {READ_ONLY_OPTION: True}


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            # A read never needs the writer lock: taking it would make the periodic readers
            # (epoch poll, readiness) queue behind - and hold up - the group committer.
            conn.exec_driver_sql("BEGIN")
            return
        # Take the write lock up front: a deferred transaction that later writes can fail with
        # SQLITE_BUSY on lock upgrade regardless of busy_timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
