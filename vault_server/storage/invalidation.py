"""The cache epoch: one counter per workspace, bumped in the same transaction as every change a
cached signing state depends on, and the channels that tell other replicas about it.

What counts as a change (checked on every ORM flush, so no call site can forget it): a
credential's state, current version or policy; a credential version's envelope (promotion,
destruction, rewrap); a routing context's state or expiry (end, renew); a workspace's freeze
state or expiry. Statements that bypass the ORM flush (the rewrap's Core batches) call ``bump``
themselves.

Correctness never depends on the notifications: the signing batch re-reads the epoch of every
workspace it writes for inside its own transaction and refuses to release a signature computed
from an older epoch. Notifications (PostgreSQL ``LISTEN/NOTIFY`` on ``pipvault_cache``, or
polling the epochs) only keep replicas from doing work they would have to redo.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, event, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import get_history

from vault_server.observability.logging import get_logger
from vault_server.storage.database import READ_ONLY
from vault_server.storage.models import Credential, CredentialVersion, RoutingContext, Workspace
from vault_server.storage.tenant import CrossWorkspaceJob, bound_workspace, declare_job

_log = get_logger("pipvault.cache")
CHANNEL = "pipvault_cache"
KEYS_SUFFIX = ":keys"  # notification payload suffix: drop cached data keys as well
_PENDING = "pipvault_epoch_pending"

# Attributes whose change invalidates a cached signing state, per mapped class.
_WATCHED: dict[type, tuple[str, ...]] = {
    Credential: ("state", "current_version", "policy", "broker", "key_algorithm"),
    CredentialVersion: ("envelope", "state"),
    RoutingContext: ("state", "expire_time", "owner", "credential_id"),
    Workspace: ("state", "freeze_expire_time"),
}

_workspaces = cast(Table, Workspace.__table__)
_BUMP = (
    update(_workspaces)
    .where(_workspaces.c.id.in_(bindparam("ids", expanding=True)))
    .values(cache_epoch=_workspaces.c.cache_epoch + 1)
)

Listener = Callable[[frozenset[str]], None]
_BIND = text("SELECT set_config('app.workspace_id', :ws, true)")
_listeners: weakref.WeakKeyDictionary[Engine, list[Listener]] = weakref.WeakKeyDictionary()
_listeners_lock = threading.Lock()


def add_commit_listener(engine: Engine, listener: Listener) -> None:
    """Call ``listener(workspace_ids)`` after a transaction on ``engine`` bumped their epochs."""
    with _listeners_lock:
        _listeners.setdefault(engine, []).append(listener)


def remove_commit_listeners(engine: Engine) -> None:
    with _listeners_lock:
        _listeners.pop(engine, None)


def bump(session: Session, workspace_ids: Iterable[str], *, keys: bool = True) -> None:
    """Bump the epochs now, in the session's transaction (and notify replicas on commit).

    ``keys``: the change also concerns key material or whether it may be used (revocation,
    freeze, promotion, rewrap), so replicas drop those workspaces' cached data keys too; a
    routing-context change (renew, end) only drops cached states.
    """
    ids = sorted(set(workspace_ids))
    if not ids:
        return
    conn = session.connection()
    bound = bound_workspace(session)
    if conn.dialect.name != "postgresql" or ids == [bound]:
        conn.execute(_BUMP, {"ids": ids})
    else:  # row-level security: each workspace's row changes only while it is bound
        for ws_id in ids:
            conn.execute(_BIND, {"ws": ws_id})
            conn.execute(_BUMP, {"ids": [ws_id]})
        conn.execute(_BIND, {"ws": bound or ""})
    if conn.dialect.name == "postgresql":
        for ws_id in ids:
            payload = f"{ws_id}{KEYS_SUFFIX}" if keys else ws_id
            conn.execute(text("SELECT pg_notify(:ch, :ws)"), {"ch": CHANNEL, "ws": payload})
    pending: set[str] = session.info.setdefault(_PENDING, set())
    pending.update(ids)


def _workspace_of(obj: object) -> str | None:
    if isinstance(obj, Workspace):
        return obj.id
    ws = getattr(obj, "workspace_id", None)
    return ws if isinstance(ws, str) else None


def _changed(obj: object, attrs: tuple[str, ...]) -> bool:
    return any(get_history(obj, a).has_changes() for a in attrs)


@event.listens_for(Session, "after_flush")
def _bump_on_change(session: Session, _flush: UOWTransaction) -> None:
    ids: set[str] = set()
    key_ids: set[str] = set()
    for obj in (*session.dirty, *session.deleted):
        attrs = _WATCHED.get(type(obj))
        if attrs is None:
            continue
        ws = _workspace_of(obj)
        if ws is not None and (obj in session.deleted or _changed(obj, attrs)):
            (ids if isinstance(obj, RoutingContext) else key_ids).add(ws)
    if key_ids:
        bump(session, key_ids)
    if ids - key_ids:
        bump(session, ids - key_ids, keys=False)


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    ids = session.info.pop(_PENDING, None)
    if not ids:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
    with _listeners_lock:
        listeners = list(_listeners.get(engine, ())) if engine is not None else []
    for listener in listeners:
        listener(frozenset(ids))


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)


def read_epochs(engine: Engine) -> dict[str, int]:
    """Every workspace's epoch (the polling fallback; through the workspace directory)."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        declare_job(conn, CrossWorkspaceJob.WORKSPACE_DIRECTORY)
        rows = conn.execute(select(_workspaces.c.id, _workspaces.c.cache_epoch)).all()
    return {str(r[0]): int(r[1]) for r in rows}


class EpochWatcher:
    """Tells ``on_change(workspace_ids, keys)`` when other processes bump epochs.

    On PostgreSQL one dedicated connection LISTENs (reconnecting after failures); every
    ``poll_interval_s`` the epochs are also compared (the fallback, and the only channel on
    SQLite). ``keys`` says whether cached data keys of those workspaces must go too: from a
    notification's payload; always for a change found by polling where nothing LISTENs (polling
    cannot tell a routing renewal from a revocation), never where LISTEN already delivers key
    flushes. After a reconnect ``on_change(None, True)``: anything may have changed.
    """

    def __init__(
        self,
        engine: Engine,
        on_change: Callable[[frozenset[str] | None, bool], None],
        *,
        poll_interval_s: float = 1.0,
        listen: bool = True,
    ) -> None:
        self._engine = engine
        self._on_change = on_change
        self._poll = poll_interval_s
        self._listen = listen and engine.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._epochs: dict[str, int] | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._poll_loop, name="pipvault-epochs")]
        if self._listen:
            self._threads.append(threading.Thread(target=self._listen_loop, name="pipvault-notify"))
        for t in self._threads:
            t.daemon = True
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def poll_once(self) -> None:
        try:
            now = read_epochs(self._engine)
        except SQLAlchemyError:
            return
        before, self._epochs = self._epochs, now
        if before is None:
            return
        changed = frozenset(ws for ws, n in now.items() if before.get(ws) != n)
        if changed:
            self._on_change(changed, not self._listen)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll):
            self.poll_once()

    def _listen_loop(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self._listen_once(reconnected=not first)
            except Exception as exc:  # any driver failure: reconnect after a pause
                _log.warning("cache.listen_reconnect", error=type(exc).__name__)
            first = False
            self._stop.wait(min(self._poll, 1.0))

    def _listen_once(self, *, reconnected: bool) -> None:
        raw: Any = self._engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            dbapi.autocommit = True
            dbapi.execute(f"LISTEN {CHANNEL}")
            if reconnected:
                self._on_change(None, True)
            while not self._stop.is_set():
                payloads = {n.payload for n in dbapi.notifies(timeout=0.5, stop_after=256)}
                keyed = {p.removesuffix(KEYS_SUFFIX) for p in payloads if p.endswith(KEYS_SUFFIX)}
                plain = {p for p in payloads if not p.endswith(KEYS_SUFFIX)} - keyed
                if keyed:
                    self._on_change(frozenset(keyed), True)
                if plain:
                    self._on_change(frozenset(plain), False)
        finally:
            raw.invalidate()
