"""Plain SQLAlchemy Core statements for rewrapping data keys (``keys/_rewrap.py``).

A rewrap reads batches of wrapped keys (only the columns it needs, never ORM objects; a batch may
span workspaces) and writes each batch back in one transaction with one ``executemany``
compare-and-set ``UPDATE`` per workspace: a row is replaced only if its envelope is still the one
that was read, so a concurrent rotation, promotion or destruction wins. Like the signing batch
(``sign_path``), these statements bypass the ORM tenant guard, so every one of them names its
workspace itself, and on PostgreSQL ``bind`` scopes the transaction to a workspace (row-level
security) before that workspace's statements: a transaction spanning workspaces binds each in
turn, never bypassing RLS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import cast

from sqlalchemy import Connection, Table, bindparam, func, select, text, update

from vault_server.storage.models import CredentialVersion

_cv = cast(Table, CredentialVersion.__table__)

_BIND = text("SELECT set_config('app.workspace_id', :ws, true)")

_LIVE_AFTER = (
    select(_cv.c.id, _cv.c.credential_id, _cv.c.version, _cv.c.envelope)
    .where(
        _cv.c.workspace_id == bindparam("ws"),
        _cv.c.id > bindparam("after"),
        _cv.c.envelope.is_not(None),
    )
    .order_by(_cv.c.id)
)
# A KEK rotation: only what the provider itself wraps, under an older version.
_PENDING_ROTATION = _LIVE_AFTER.where(
    _cv.c.provider_id == bindparam("provider"), _cv.c.kek_version < bindparam("version")
)
# A migration: only what other providers wrap (the target's own older versions are its
# rotation's business).
_PENDING_MIGRATION = _LIVE_AFTER.where(_cv.c.provider_id != bindparam("provider"))
# Compare-and-set on the envelope read; bind names differ from the column names (Core reserves
# those in UPDATE ... VALUES).
_REPLACE = (
    update(_cv)
    .where(
        _cv.c.workspace_id == bindparam("ws"),
        _cv.c.id == bindparam("row_id"),
        _cv.c.envelope == bindparam("old_envelope"),
    )
    .values(
        envelope=bindparam("new_envelope"),
        provider_id=bindparam("new_provider"),
        kek_version=bindparam("new_version"),
    )
)
_CENSUS = (
    select(_cv.c.provider_id, _cv.c.kek_version, func.count())
    .where(_cv.c.workspace_id == bindparam("ws"), _cv.c.envelope.is_not(None))
    .group_by(_cv.c.provider_id, _cv.c.kek_version)
)
_CURRENT = select(_cv.c.id, _cv.c.envelope).where(
    _cv.c.workspace_id == bindparam("ws"), _cv.c.id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True, slots=True)
class PendingKey:
    """One credential version whose wrapped key is not yet under the target KEK."""

    workspace_id: str
    row_id: str
    credential_id: str
    version: int
    envelope: bytes


@dataclass(frozen=True, slots=True)
class Replacement:
    """A rewrapped envelope for ``row_id``, to be stored only if ``old_envelope`` is current."""

    workspace_id: str
    row_id: str
    old_envelope: bytes
    new_envelope: bytes
    provider_id: str
    kek_version: int


def bind(conn: Connection, workspace_id: str) -> None:
    """Scope the rest of the transaction to one workspace (PostgreSQL row-level security)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_BIND, {"ws": workspace_id})


def pending(
    conn: Connection,
    ws: str,
    provider_id: str,
    version: int,
    *,
    migration: bool,
    after: str,
    limit: int,
) -> list[PendingKey]:
    """Up to ``limit`` live wrapped keys of workspace ``ws`` (bound first) with an id after
    ``after`` (keyset order) still to do: for a rotation (``migration`` false) those wrapped by
    ``provider_id`` under a KEK version older than ``version``; for a migration those wrapped by
    any other provider. Never both: rotating a provider must not pull other providers' keys."""
    stmt = _PENDING_MIGRATION if migration else _PENDING_ROTATION
    rows = conn.execute(
        stmt.limit(limit),
        {"ws": ws, "after": after, "provider": provider_id, "version": version},
    )
    return [PendingKey(ws, str(r[0]), str(r[1]), int(r[2]), bytes(r[3])) for r in rows]


def live_counts(conn: Connection, ws: str) -> list[tuple[str, int, int]]:
    """(provider, KEK version, live ciphertexts) of workspace ``ws`` (bound first)."""
    return [(str(p), int(v), int(n)) for p, v, n in conn.execute(_CENSUS, {"ws": ws})]


def replace(conn: Connection, batch: Iterable[Replacement]) -> dict[str, int]:
    """Store a batch, one compare-and-set ``executemany`` per workspace (binding each first);
    returns how many rows changed per workspace (only workspaces with a change)."""
    changed: dict[str, int] = {}
    for ws, group in groupby(batch, key=lambda r: r.workspace_id):
        n = _replace_one(conn, ws, list(group))
        if n:
            changed[ws] = changed.get(ws, 0) + n
    return changed


def _replace_one(conn: Connection, ws: str, batch: Sequence[Replacement]) -> int:
    bind(conn, ws)
    params = [
        {
            "ws": ws,
            "row_id": r.row_id,
            "old_envelope": r.old_envelope,
            "new_envelope": r.new_envelope,
            "new_provider": r.provider_id,
            "new_version": r.kek_version,
        }
        for r in batch
    ]
    result = conn.execute(_REPLACE, params)
    if conn.dialect.supports_sane_multi_rowcount:
        return int(result.rowcount)
    # A driver that cannot sum rowcounts over executemany: count the rows that now hold our
    # envelope (each new envelope has a fresh random wrap nonce, so equality means we won).
    ours = {r.row_id: r.new_envelope for r in batch}
    current = conn.execute(_CURRENT, {"ws": ws, "ids": list(ours)})
    return sum(1 for row_id, env in current if env is not None and bytes(env) == ours[row_id])
