"""The signing batch's statements: SQLAlchemy Core, compiled once, run raw (no ORM, no per-call
SQLAlchemy execution machinery on the hot path; see ``storage.raw_sql``).

Each function runs on the group committer's ``BatchConnection`` inside its open transaction. On
PostgreSQL every statement runs under row-level security: ``bind`` sets ``app.workspace_id`` for
the rest of the transaction before a workspace's statements (a batch spanning workspaces binds
each in turn, never bypassing RLS).

Lock order (PostgreSQL; SQLite's one writer lock makes every transaction serial). Every
transaction that writes for a workspace takes its locks in one global order, so two replicas'
batches, or a batch and a revoke or freeze, can wait for each other but never deadlock:

1. workspaces in ascending id order (a batch spanning workspaces handles them sorted);
2. per workspace: its ``workspaces`` row first - the signing batch ``FOR SHARE`` (batches do not
   block each other), an admin change ``FOR NO KEY UPDATE`` or the epoch bump's ``UPDATE`` -
   then its rows (credentials, routing contexts: ``FOR NO KEY UPDATE``, which leaves the
   foreign-key ``KEY SHARE`` locks of the batch's inserts free), then its audit chain head
   (``FOR UPDATE``), last.

Reading the epoch under ``FOR SHARE`` is also what keeps a revoke from being outrun: a batch
cannot read a workspace's epoch while a revoke or freeze that bumps it is uncommitted; it waits
and then reads the bumped epoch (READ COMMITTED re-reads the row it waited for), so a signature
computed before the kill switch is refused as stale, and one whose batch won the row lock is
committed - and ordered in the chain - before the kill switch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from vault_server.storage.models import (
    AuditChainHead,
    AuditEvent,
    SignedOrder,
    VenueNonce,
    Workspace,
)
from vault_server.storage.raw_sql import BatchConnection

_ws = cast(Table, Workspace.__table__)
_orders = cast(Table, SignedOrder.__table__)
_nonces = cast(Table, VenueNonce.__table__)
_events = cast(Table, AuditEvent.__table__)
_heads = cast(Table, AuditChainHead.__table__)

_BIND = text("SELECT set_config('app.workspace_id', :ws, true)")
_EPOCH = select(_ws.c.cache_epoch).where(_ws.c.id == bindparam("ws"))
_EPOCH_SHARED = _EPOCH.with_for_update(read=True)  # FOR SHARE: waits for a revoke or freeze
_HEAD = select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain_id == bindparam("chain"))
_HEAD_LOCKED = _HEAD.with_for_update()
# SQLite: the epoch and the chain head in one statement (the writer lock, taken by the batch's
# BEGIN IMMEDIATE, already covers the head; PostgreSQL cannot lock the nullable side of an
# outer join, so it reads them apart).
_EPOCH_AND_HEAD = (
    select(_ws.c.cache_epoch, _heads.c.seq, _heads.c.hash)
    .select_from(_ws.outerjoin(_heads, _heads.c.chain_id == bindparam("chain")))
    .where(_ws.c.id == bindparam("ws"))
)
_HEAD_UPDATE = (
    update(_heads)
    .where(_heads.c.chain_id == bindparam("chain"))
    .values(seq=bindparam("seq"), hash=bindparam("hash"))
)
_RATE = (
    select(func.count())
    .select_from(_orders)
    .where(
        _orders.c.workspace_id == bindparam("ws"),
        _orders.c.credential_id == bindparam("cred"),
        _orders.c.sign_time > bindparam("since", type_=_orders.c.sign_time.type),
    )
)
_CLAIM = select(_orders.c.id, _orders.c.expire_time).where(
    _orders.c.workspace_id == bindparam("ws"),
    _orders.c.credential_id == bindparam("cred"),
    _orders.c.client_order_id == bindparam("coid"),
)
_CLAIM_LOCKED = _CLAIM.with_for_update()
_TOMBSTONE = (
    update(_orders)
    .where(_orders.c.id == bindparam("row_id"))
    .values(client_order_id=bindparam("tomb"))
)
_CLAIM_KEY = ["workspace_id", "credential_id", "client_order_id"]
# RETURNING tells a conflict apart reliably (rowcount is not, with implicit returning).
_CLAIM_PG = (
    postgresql.insert(_orders)
    .on_conflict_do_nothing(index_elements=_CLAIM_KEY)
    .returning(_orders.c.id)
)
_CLAIM_SQLITE = (
    sqlite.insert(_orders).on_conflict_do_nothing(index_elements=_CLAIM_KEY).returning(_orders.c.id)
)
_EVENTS_INSERT = _events.insert()
_HEADS_INSERT = _heads.insert()
_NONCES_INSERT = _nonces.insert()
_NONCE = select(_nonces.c.last_nonce).where(
    _nonces.c.workspace_id == bindparam("ws"), _nonces.c.credential_id == bindparam("cred")
)
_NONCE_LOCKED = _NONCE.with_for_update()
_NONCE_UPDATE = (
    update(_nonces)
    .where(_nonces.c.workspace_id == bindparam("ws"), _nonces.c.credential_id == bindparam("cred"))
    .values(last_nonce=bindparam("nonce"))
)


# The columns each INSERT sets (a prepared INSERT is compiled for one fixed set of columns).
EVENT_COLUMNS = (
    "chain_id", "seq", "event_time", "workspace_id", "workspace", "credential", "action",
    "outcome", "actor_type", "actor_id", "on_behalf_of", "peer", "reason", "routing_context",
    "request_id", "method", "error_reason", "details", "prev_hash", "hash",
)  # fmt: skip
_CLAIM_COLUMNS = ("workspace_id", "credential_id", "client_order_id", "sign_time", "expire_time")
_HEAD_COLUMNS = ("chain_id", "workspace_id", "seq", "hash")
_NONCE_COLUMNS = ("credential_id", "workspace_id", "last_nonce")


def bind(conn: BatchConnection, workspace_id: str) -> None:
    """Scope the rest of the transaction to one workspace (PostgreSQL row-level security)."""
    if conn.is_postgres:
        conn.execute(conn.prepare(_BIND), {"ws": workspace_id})


def epoch(conn: BatchConnection, workspace_id: str) -> int | None:
    value = conn.scalar(conn.prepare(_EPOCH), {"ws": workspace_id})
    return None if value is None else int(value)


def epoch_and_head(
    conn: BatchConnection, workspace_id: str
) -> tuple[int | None, tuple[int, str] | None]:
    """The workspace's cache epoch and its audit chain head (None: no event yet), both locked
    until commit in the global lock order (module docstring): the workspace row shared, then
    the head. ``(None, None)`` when the workspace is gone (every signature of it is stale, so
    its head is never needed)."""
    if conn.is_postgres:
        value = conn.scalar(conn.prepare(_EPOCH_SHARED), {"ws": workspace_id})
        if value is None:
            return None, None
        return int(value), chain_head(conn, workspace_id)
    row = conn.first(conn.prepare(_EPOCH_AND_HEAD), {"ws": workspace_id, "chain": workspace_id})
    if row is None:
        return None, None
    head = None if row[1] is None else (int(row[1]), str(row[2]))
    return int(row[0]), head


def chain_head(conn: BatchConnection, chain_id: str) -> tuple[int, str] | None:
    """The chain's head, locked until commit on PostgreSQL (SQLite's writer lock covers it)."""
    stmt = conn.prepare(_HEAD_LOCKED if conn.is_postgres else _HEAD)
    row = conn.first(stmt, {"chain": chain_id})
    return None if row is None else (int(row[0]), str(row[1]))


def save_head(
    conn: BatchConnection,
    chain_id: str,
    workspace_id: str | None,
    seq: int,
    hash_: str,
    *,
    new: bool,
) -> None:
    if new:
        conn.execute(
            conn.prepare(_HEADS_INSERT, column_keys=_HEAD_COLUMNS),
            {"chain_id": chain_id, "workspace_id": workspace_id, "seq": seq, "hash": hash_},
        )
    else:
        conn.execute(conn.prepare(_HEAD_UPDATE), {"chain": chain_id, "seq": seq, "hash": hash_})


def insert_events(conn: BatchConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Append events (each row has exactly ``EVENT_COLUMNS``)."""
    stmt = conn.prepare(_EVENTS_INSERT, column_keys=EVENT_COLUMNS)
    if len(rows) == 1:
        conn.execute(stmt, rows[0])
    else:
        conn.executemany(stmt, rows)


def orders_since(
    conn: BatchConnection, workspace_id: str, credential_id: str, since: dt.datetime
) -> int:
    params = {"ws": workspace_id, "cred": credential_id, "since": since}
    return int(conn.scalar(conn.prepare(_RATE), params))


def find_claim(
    conn: BatchConnection, workspace_id: str, credential_id: str, client_order_id: str
) -> tuple[int, dt.datetime] | None:
    params = {"ws": workspace_id, "cred": credential_id, "coid": client_order_id}
    stmt = conn.prepare(
        _CLAIM_LOCKED if conn.is_postgres else _CLAIM,
        result_types=(_orders.c.id.type, _orders.c.expire_time.type),
    )
    row = conn.first(stmt, params)
    if row is None:
        return None
    expire: dt.datetime = row[1]
    return int(row[0]), expire if expire.tzinfo is not None else expire.replace(tzinfo=dt.UTC)


def tombstone_claim(conn: BatchConnection, row_id: int) -> None:
    # "~" is not a client order id character, so the tombstone never collides with one.
    conn.execute(conn.prepare(_TOMBSTONE), {"row_id": row_id, "tomb": f"~{row_id}"})


def insert_claim(
    conn: BatchConnection,
    workspace_id: str,
    credential_id: str,
    client_order_id: str,
    sign_time: dt.datetime,
    expire_time: dt.datetime,
) -> bool:
    """Claim the id; False when another writer holds it (the unique constraint, never an error
    that would abort the shared transaction)."""
    stmt = conn.prepare(
        _CLAIM_PG if conn.is_postgres else _CLAIM_SQLITE, column_keys=_CLAIM_COLUMNS
    )
    params = {
        "workspace_id": workspace_id,
        "credential_id": credential_id,
        "client_order_id": client_order_id,
        "sign_time": sign_time,
        "expire_time": expire_time,
    }
    return conn.first(stmt, params) is not None


# Multi-row claim statements, one per (dialect, row count); a batch is cut into these sizes so
# a handful of compiled statements serve any batch.
_CLAIM_CHUNKS = (256, 128, 64, 32, 16, 8, 4, 2, 1)
_claims_many: dict[tuple[bool, int], Any] = {}


def _claims_statement(postgres: bool, rows: int) -> Any:
    stmt = _claims_many.get((postgres, rows))
    if stmt is None:
        values = [
            {c: bindparam(f"{c}_{i}", type_=_orders.c[c].type) for c in _CLAIM_COLUMNS}
            for i in range(rows)
        ]
        insert = postgresql.insert(_orders) if postgres else sqlite.insert(_orders)
        stmt = (
            insert.values(values)
            .on_conflict_do_nothing(index_elements=_CLAIM_KEY)
            .returning(_orders.c.credential_id, _orders.c.client_order_id)
        )
        _claims_many[(postgres, rows)] = stmt
    return stmt


def insert_claims(conn: BatchConnection, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    """Claim many ids (each row has ``_CLAIM_COLUMNS``; no two share a key) in a few
    multi-row statements; returns the ``(credential_id, client_order_id)`` pairs claimed - the
    others are held already (the caller settles those one by one, as ``insert_claim``)."""
    claimed: set[tuple[str, str]] = set()
    at = 0
    for size in _CLAIM_CHUNKS:
        while len(rows) - at >= size:
            chunk = rows[at : at + size]
            at += size
            stmt = conn.prepare(_claims_statement(conn.is_postgres, size))
            params = {f"{c}_{i}": row[c] for i, row in enumerate(chunk) for c in _CLAIM_COLUMNS}
            claimed.update((str(r[0]), str(r[1])) for r in conn.all(stmt, params))
    return claimed


def next_nonce(conn: BatchConnection, workspace_id: str, credential_id: str, now_ms: int) -> int:
    """Reserve the credential's next venue nonce: ``max(last + 1, now_ms)``, persisted."""
    params: dict[str, Any] = {"ws": workspace_id, "cred": credential_id}
    last = conn.scalar(conn.prepare(_NONCE_LOCKED if conn.is_postgres else _NONCE), params)
    if last is None:
        nonce = now_ms
        conn.execute(
            conn.prepare(_NONCES_INSERT, column_keys=_NONCE_COLUMNS),
            {"credential_id": credential_id, "workspace_id": workspace_id, "last_nonce": nonce},
        )
        return nonce
    nonce = max(int(last) + 1, now_ms)
    conn.execute(conn.prepare(_NONCE_UPDATE), {**params, "nonce": nonce})
    return nonce
