"""Plain SQLAlchemy Core statements for the signing batch (no ORM on the hot path).

Each function runs on the group committer's connection inside its open transaction. Statements
are built once at import and compiled once per dialect (SQLAlchemy's compiled cache). On
PostgreSQL every statement runs under row-level security: ``bind`` sets ``app.workspace_id`` for
the rest of the transaction before a workspace's statements (a batch spanning workspaces binds
each in turn, never bypassing RLS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from vault_server.storage.models import (
    AuditChainHead,
    AuditEvent,
    SignedOrder,
    VenueNonce,
    Workspace,
)

_ws = cast(Table, Workspace.__table__)
_orders = cast(Table, SignedOrder.__table__)
_nonces = cast(Table, VenueNonce.__table__)
_events = cast(Table, AuditEvent.__table__)
_heads = cast(Table, AuditChainHead.__table__)

_BIND = text("SELECT set_config('app.workspace_id', :ws, true)")
_EPOCH = select(_ws.c.cache_epoch).where(_ws.c.id == bindparam("ws"))
_HEAD = select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain_id == bindparam("chain"))
_HEAD_LOCKED = _HEAD.with_for_update()
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
_NONCE_UPDATE = (
    update(_nonces)
    .where(_nonces.c.workspace_id == bindparam("ws"), _nonces.c.credential_id == bindparam("cred"))
    .values(last_nonce=bindparam("nonce"))
)


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def bind(conn: Connection, workspace_id: str) -> None:
    """Scope the rest of the transaction to one workspace (PostgreSQL row-level security)."""
    if _pg(conn):
        conn.execute(_BIND, {"ws": workspace_id})


def epoch(conn: Connection, workspace_id: str) -> int | None:
    value = conn.execute(_EPOCH, {"ws": workspace_id}).scalar_one_or_none()
    return None if value is None else int(value)


def chain_head(conn: Connection, chain_id: str) -> tuple[int, str] | None:
    """The chain's head, locked until commit on PostgreSQL (SQLite's writer lock covers it)."""
    stmt = _HEAD_LOCKED if _pg(conn) else _HEAD
    row = conn.execute(stmt, {"chain": chain_id}).first()
    return None if row is None else (int(row[0]), str(row[1]))


def save_head(
    conn: Connection, chain_id: str, workspace_id: str | None, seq: int, hash_: str, *, new: bool
) -> None:
    if new:
        conn.execute(
            _HEADS_INSERT,
            {"chain_id": chain_id, "workspace_id": workspace_id, "seq": seq, "hash": hash_},
        )
    else:
        conn.execute(_HEAD_UPDATE, {"chain": chain_id, "seq": seq, "hash": hash_})


def insert_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    conn.execute(_EVENTS_INSERT, list(rows))


def orders_since(
    conn: Connection, workspace_id: str, credential_id: str, since: dt.datetime
) -> int:
    return int(
        conn.execute(
            _RATE, {"ws": workspace_id, "cred": credential_id, "since": since}
        ).scalar_one()
    )


def find_claim(
    conn: Connection, workspace_id: str, credential_id: str, client_order_id: str
) -> tuple[int, dt.datetime] | None:
    params = {"ws": workspace_id, "cred": credential_id, "coid": client_order_id}
    stmt = _CLAIM.with_for_update() if _pg(conn) else _CLAIM
    row = conn.execute(stmt, params).first()
    if row is None:
        return None
    expire = row[1] if row[1].tzinfo is not None else row[1].replace(tzinfo=dt.UTC)
    return int(row[0]), expire


def tombstone_claim(conn: Connection, row_id: int) -> None:
    # "~" is not a client order id character, so the tombstone never collides with one.
    conn.execute(_TOMBSTONE, {"row_id": row_id, "tomb": f"~{row_id}"})


def insert_claim(
    conn: Connection,
    workspace_id: str,
    credential_id: str,
    client_order_id: str,
    sign_time: dt.datetime,
    expire_time: dt.datetime,
) -> bool:
    """Claim the id; False when another writer holds it (the unique constraint, never an error
    that would abort the shared transaction)."""
    stmt = _CLAIM_PG if _pg(conn) else _CLAIM_SQLITE
    params = {
        "workspace_id": workspace_id,
        "credential_id": credential_id,
        "client_order_id": client_order_id,
        "sign_time": sign_time,
        "expire_time": expire_time,
    }
    return conn.execute(stmt, params).first() is not None


def next_nonce(conn: Connection, workspace_id: str, credential_id: str, now_ms: int) -> int:
    """Reserve the credential's next venue nonce: ``max(last + 1, now_ms)``, persisted."""
    params: dict[str, Any] = {"ws": workspace_id, "cred": credential_id}
    stmt = _NONCE.with_for_update() if _pg(conn) else _NONCE
    last = conn.execute(stmt, params).scalar_one_or_none()
    if last is None:
        nonce = now_ms
        conn.execute(
            _NONCES_INSERT,
            {"credential_id": credential_id, "workspace_id": workspace_id, "last_nonce": nonce},
        )
        return nonce
    nonce = max(int(last) + 1, now_ms)
    conn.execute(_NONCE_UPDATE, {**params, "nonce": nonce})
    return nonce
