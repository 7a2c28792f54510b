"""Which database errors mean "this transaction lost a race", not "the database is broken".

A transaction that PostgreSQL aborts to break a deadlock (SQLSTATE 40P01) or a serialization
failure (40001) did nothing durable and holds no locks any more: running the same work again is
safe and usually succeeds at once. Every other error is a real failure.
"""

from __future__ import annotations

RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a DBAPI error, looking through SQLAlchemy wrappers and causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            state = getattr(candidate, "sqlstate", None)
            if isinstance(state, str) and state:
                return state
        current = current.__cause__ or current.__context__
    return ""


def lost_a_race(exc: BaseException) -> bool:
    """True for a deadlock victim or a serialization failure (safe to run again)."""
    return sqlstate(exc) in RETRYABLE_SQLSTATES
