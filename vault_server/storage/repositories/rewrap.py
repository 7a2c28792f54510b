"""Plain SQLAlchemy Core statements for rewrapping data keys (``keys/_rewrap.py``) and counting
them (the key census), over every table that holds envelopes.

Three tables hold envelopes (a *kind* each): ``credential_versions`` and ``venue_sessions``
(tenant tables, row-level security by workspace) and ``platform_applications`` (global, one row
per venue and environment; its rows belong to the pseudo-workspace ``GLOBAL``). Each row is read
with a keyset position ``(key, number)``: ``(id, 0)`` for a credential version or a platform
application, ``(credential_id, credential_version)`` for a session.

A rewrap reads batches of wrapped keys (only the columns it needs, never ORM objects; a batch may
span workspaces) and writes each batch back in one transaction with one ``executemany``
compare-and-set ``UPDATE`` per (kind, workspace): a row is replaced only if its envelope is still
the one that was read, so a concurrent rotation, promotion, destruction or session renewal (a new
envelope, a new generation) wins. Like the signing batch (``sign_path``), these statements bypass
the ORM tenant guard, so every tenant statement names its workspace itself, and on PostgreSQL
``bind`` scopes the transaction to a workspace (row-level security) before that workspace's
statements: a transaction spanning workspaces binds each in turn, never bypassing RLS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from vault_server.storage.models import CredentialVersion, PlatformApplication, VenueSession

CREDENTIAL_VERSIONS = "credential_versions"
VENUE_SESSIONS = "venue_sessions"
PLATFORM_APPLICATIONS = "platform_applications"
#: Tenant tables, walked workspace after workspace (in this order).
TENANT_KINDS = (CREDENTIAL_VERSIONS, VENUE_SESSIONS)
#: Global tables, walked once after the tenant tables.
GLOBAL_KINDS = (PLATFORM_APPLICATIONS,)
GLOBAL = ""  # the workspace of a global table's rows (binds no tenant)

_BIND = text("SELECT set_config('app.workspace_id', :ws, true)")


@dataclass(frozen=True)
class _Spec:
    """Where one kind keeps its envelopes: the keyset columns, what the binding needs."""

    table: Table
    key: ColumnElement[Any]  # first keyset column (a string)
    number: ColumnElement[Any] | None  # second keyset column (an integer), if the key has two
    owner: ColumnElement[Any]  # the credential id (a global row: its id)
    version: ColumnElement[Any]  # the binding's version (credential version, generation, ...)
    tenant: bool

    def scope(self) -> list[ColumnElement[bool]]:
        return [self.table.c.workspace_id == bindparam("ws")] if self.tenant else []

    def after(self) -> ColumnElement[bool]:
        later = self.key > bindparam("after")
        if self.number is None:
            return later
        return or_(later, and_(self.key == bindparam("after"), self.number > bindparam("no")))

    def live_after(self) -> Select[Any]:
        t = self.table
        number = self.number if self.number is not None else literal(0, Integer)
        order = [self.key] if self.number is None else [self.key, self.number]
        return (
            select(self.key, number, self.owner, self.version, t.c.envelope)
            .where(*self.scope(), self.after(), t.c.envelope.is_not(None))
            .order_by(*order)
        )

    def same_row(self) -> list[ColumnElement[bool]]:
        row = [self.key == bindparam("row_id")]
        if self.number is not None:
            row.append(self.number == bindparam("row_no"))
        return [*self.scope(), *row]


def _spec(model: type, key: str, number: str | None, owner: str, version: str) -> _Spec:
    t = cast(Table, model.__table__)  # type: ignore[attr-defined]
    return _Spec(
        t, t.c[key], t.c[number] if number else None, t.c[owner], t.c[version],
        "workspace_id" in t.c,
    )  # fmt: skip


_SPECS = {
    CREDENTIAL_VERSIONS: _spec(CredentialVersion, "id", None, "credential_id", "version"),
    VENUE_SESSIONS: _spec(
        VenueSession, "credential_id", "credential_version", "credential_id", "generation"
    ),
    PLATFORM_APPLICATIONS: _spec(PlatformApplication, "id", None, "id", "version"),
}


def _pending_stmt(kind: str, migration: bool) -> Select[Any]:
    spec = _SPECS[kind]
    c = spec.table.c
    if migration:
        # A migration: only what other providers wrap (the target's own older versions are its
        # rotation's business).
        return spec.live_after().where(c.provider_id != bindparam("provider"))
    # A KEK rotation: only what the provider itself wraps, under an older version.
    return spec.live_after().where(
        c.provider_id == bindparam("provider"), c.kek_version < bindparam("version")
    )


def _replace_stmt(kind: str) -> Any:
    # Compare-and-set on the envelope read; bind names differ from the column names (Core
    # reserves those in UPDATE ... VALUES).
    spec = _SPECS[kind]
    return (
        update(spec.table)
        .where(*spec.same_row(), spec.table.c.envelope == bindparam("old_envelope"))
        .values(
            envelope=bindparam("new_envelope"),
            provider_id=bindparam("new_provider"),
            kek_version=bindparam("new_version"),
        )
    )


def _census_stmt(kind: str) -> Select[Any]:
    spec = _SPECS[kind]
    c = spec.table.c
    return (
        select(c.provider_id, c.kek_version, func.count())
        .where(*spec.scope(), c.envelope.is_not(None))
        .group_by(c.provider_id, c.kek_version)
    )


def _current_stmt(kind: str) -> Select[Any]:
    spec = _SPECS[kind]
    number = spec.number if spec.number is not None else literal(0, Integer)
    return select(spec.key, number, spec.table.c.envelope).where(
        *spec.scope(), spec.key.in_(bindparam("ids", expanding=True))
    )


_PENDING = {(k, m): _pending_stmt(k, m) for k in _SPECS for m in (False, True)}
_REPLACE = {k: _replace_stmt(k) for k in _SPECS}
_CENSUS = {k: _census_stmt(k) for k in _SPECS}
_CURRENT = {k: _current_stmt(k) for k in _SPECS}


@dataclass(frozen=True, slots=True)
class PendingKey:
    """One envelope whose wrapped key is not yet under the target KEK: a credential version
    (``version``: its number), a session (``row_no``: its credential version, ``version``: its
    generation) or a platform application (``credential_id``: its id, ``version``: its
    version; ``workspace_id``: ``GLOBAL``)."""

    workspace_id: str
    row_id: str
    credential_id: str
    version: int
    envelope: bytes
    kind: str = CREDENTIAL_VERSIONS
    row_no: int = 0

    @property
    def position(self) -> tuple[str, int]:
        """Its keyset position within its (kind, workspace)."""
        return self.row_id, self.row_no


@dataclass(frozen=True, slots=True)
class Replacement:
    """A rewrapped envelope for a row, to be stored only if ``old_envelope`` is current."""

    workspace_id: str
    row_id: str
    old_envelope: bytes
    new_envelope: bytes
    provider_id: str
    kek_version: int
    kind: str = CREDENTIAL_VERSIONS
    row_no: int = 0


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
    after: tuple[str, int] | str,
    limit: int,
    kind: str = CREDENTIAL_VERSIONS,
) -> list[PendingKey]:
    """Up to ``limit`` live wrapped keys of ``kind`` in workspace ``ws`` (bound first; ``GLOBAL``
    for a global kind) positioned after ``after`` (keyset order) still to do: for a rotation
    (``migration`` false) those wrapped by ``provider_id`` under a KEK version older than
    ``version``; for a migration those wrapped by any other provider. Never both: rotating a
    provider must not pull other providers' keys."""
    key, no = (after, 0) if isinstance(after, str) else after
    rows = conn.execute(
        _PENDING[(kind, migration)].limit(limit),
        {"ws": ws, "after": key, "no": no, "provider": provider_id, "version": version},
    )
    return [
        PendingKey(ws, str(r[0]), str(r[2]), int(r[3]), bytes(r[4]), kind, int(r[1])) for r in rows
    ]


def live_counts(conn: Connection, ws: str) -> list[tuple[str, int, int]]:
    """(provider, KEK version, live ciphertexts) of workspace ``ws`` (bound first), over every
    tenant table (a pair may appear once per table)."""
    return [
        (str(p), int(v), int(n))
        for kind in TENANT_KINDS
        for p, v, n in conn.execute(_CENSUS[kind], {"ws": ws})
    ]


def global_counts(conn: Connection) -> list[tuple[str, int, int]]:
    """(provider, KEK version, live ciphertexts) of the global tables."""
    return [
        (str(p), int(v), int(n)) for kind in GLOBAL_KINDS for p, v, n in conn.execute(_CENSUS[kind])
    ]


def replace(conn: Connection, batch: Iterable[Replacement]) -> dict[str, int]:
    """Store a batch, one compare-and-set ``executemany`` per (kind, workspace), binding each
    first; returns how many rows changed per workspace (only workspaces with a change; a global
    table's under ``GLOBAL``)."""
    changed: dict[str, int] = {}
    for (kind, ws), group in groupby(batch, key=lambda r: (r.kind, r.workspace_id)):
        n = _replace_one(conn, kind, ws, list(group))
        if n:
            changed[ws] = changed.get(ws, 0) + n
    return changed


def _replace_one(conn: Connection, kind: str, ws: str, batch: Sequence[Replacement]) -> int:
    bind(conn, ws)
    params = [
        {
            "ws": ws,
            "row_id": r.row_id,
            "row_no": r.row_no,
            "old_envelope": r.old_envelope,
            "new_envelope": r.new_envelope,
            "new_provider": r.provider_id,
            "new_version": r.kek_version,
        }
        for r in batch
    ]
    result = conn.execute(_REPLACE[kind], params)
    if conn.dialect.supports_sane_multi_rowcount:
        return int(result.rowcount)
    # A driver that cannot sum rowcounts over executemany: count the rows that now hold our
    # envelope (each new envelope has a fresh random wrap nonce, so equality means we won).
    ours = {(r.row_id, r.row_no): r.new_envelope for r in batch}
    ids = sorted({r.row_id for r in batch})
    current = conn.execute(_CURRENT[kind], {"ws": ws, "ids": ids})
    return sum(
        1
        for row_id, row_no, env in current
        if env is not None and bytes(env) == ours.get((str(row_id), int(row_no)))
    )
