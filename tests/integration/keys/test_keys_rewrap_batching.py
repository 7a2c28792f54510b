"""Rewrap in batches (issue 9): a batch of N rewraps counts its wraps in ONE transaction, not N;
the wrap limit still rotates the KEK when it is crossed inside a batch; compare-and-set, the
cache epoch bump per stored batch and failure reporting survive the batching. On SQLite and on
PostgreSQL as the app role (row-level security: a batch spans workspaces, each bound in turn)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from tests.support.custody import make_workspace, onboard
from tests.support.vault import RunningVault, iter_audit
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.domain._call import system_context
from vault_server.keys._manager import Sealed
from vault_server.keys._rewrap import Progress
from vault_server.storage import invalidation
from vault_server.storage.models import CredentialVersion, KekState
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace


@contextmanager
def kek_state_commits(app: Any) -> Iterator[list[int]]:
    """Counts committed transactions that wrote the ``kek_state`` table (wrap reservations,
    the give-back at the end, rotations): ``[count]``."""
    engine = app.db.engine
    seen = [0]

    def on_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.lstrip().split(None, 3)
        if words and words[0].upper() in ("UPDATE", "INSERT") and "kek_state" in statement:
            conn.info["kek_write"] = True

    def on_commit(conn: Any) -> None:
        if conn.info.pop("kek_write", False):
            seen[0] += 1

    def on_rollback(conn: Any) -> None:
        conn.info.pop("kek_write", None)

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "rollback", on_rollback)


def _populate(vault: RunningVault, workspaces: int, per_workspace: int) -> None:
    for w in range(workspaces):
        make_workspace(vault, f"ws-{w}")
        for i in range(per_workspace):
            onboard(vault, f"ws-{w}", f"c{i}", f"K{w}x{i}" * 5, secrets.token_hex(16))


def _rewrap(app: Any, batch_size: int) -> list[Progress]:
    return list(app.key_admin._rewrap.rotation(system_context("rewrap test"), "local", batch_size))


def _kek_states(app: Any) -> dict[int, tuple[str, int]]:
    with app.db.transaction() as session:
        rows = session.execute(select(KekState).where(KekState.provider_id == "local")).scalars()
        return {r.kek_version: (r.state, r.wrap_count) for r in rows}


def _workspace_uids(app: Any) -> list[str]:
    with app.db.transaction() as session:
        return [uid for uid, _rid in ws_repo.all_ids(session)]


def _all_open(app: Any) -> int:
    opened = 0
    for uid in _workspace_uids(app):
        with app.db.transaction() as session:
            bind_workspace(session, uid)
            versions = session.execute(
                select(CredentialVersion).where(CredentialVersion.envelope.is_not(None))
            ).scalars()
            for v in versions:
                assert v.envelope is not None
                app.keys.open(v.envelope, EnvelopeBinding(uid, v.credential_id, v.version))
                opened += 1
    return opened


def test_a_batch_of_rewraps_costs_one_wrap_reservation_not_one_per_key(
    vault_any_db: RunningVault,
) -> None:
    app = vault_any_db.app
    _populate(vault_any_db, workspaces=3, per_workspace=4)  # 12 keys under KEK version 1
    assert app.keys.rotate("local") == 2
    uids = _workspace_uids(app)
    epochs_before = invalidation.read_epochs(app.db.engine)

    with kek_state_commits(app) as commits:
        steps = _rewrap(app, batch_size=500)

    assert steps[-1] == Progress(12, 12, True)
    assert app.keys.census() == {("local", 2): 12}
    # One reservation for all 12 wraps, plus one give-back of the 488 reserved and not used;
    # counting per key would have been 12 transactions.
    assert commits[0] == 2
    assert _kek_states(app)[2] == ("active", 12)  # exact: counted first, unused given back
    # One stored batch spanning the three workspaces: one epoch bump each.
    epochs = invalidation.read_epochs(app.db.engine)
    assert [epochs[u] - epochs_before[u] for u in uids] == [1, 1, 1]
    assert _all_open(app) == 12

    # Batches of 5 over workspaces of 4: [ws0 x4, ws1 x1], [ws1 x3, ws2 x2], [ws2 x2].
    assert app.keys.rotate("local") == 3
    epochs_before = epochs
    with kek_state_commits(app) as commits:
        steps = _rewrap(app, batch_size=5)
    assert [s.migrated for s in steps] == [0, 5, 10, 12, 12] and steps[-1].done
    assert commits[0] == 3 + 1  # a reservation per batch, then the give-back of 3
    assert _kek_states(app)[3] == ("active", 12)
    epochs = invalidation.read_epochs(app.db.engine)
    assert [epochs[u] - epochs_before[u] for u in uids] == [1, 2, 2]
    assert _all_open(app) == 12


def test_the_wrap_limit_still_rotates_the_kek_inside_a_batch(vault_any_db: RunningVault) -> None:
    app = vault_any_db.app
    _populate(vault_any_db, workspaces=1, per_workspace=12)
    assert app.keys.rotate("local") == 2
    app.keys.wrap_limit = 5

    with kek_state_commits(app) as commits:
        steps = _rewrap(app, batch_size=500)

    # Version 2 takes 5 wraps and is retired; version 3 takes 5 and is retired; version 4
    # takes the last 2 (3 of its 5 reserved wraps are given back).
    assert steps[-1] == Progress(12, 12, True)
    assert app.keys.census() == {("local", 2): 5, ("local", 3): 5, ("local", 4): 2}
    states = _kek_states(app)
    assert states[2] == ("decrypt_only", 5)
    assert states[3] == ("decrypt_only", 5)
    assert states[4] == ("active", 2)
    assert app.keys.provider("local").active_version() == 4
    assert commits[0] == 3 + 1  # three reservations (two of them rotating), one give-back
    assert _all_open(app) == 12

    # A rerun targets version 4: the 10 keys under 2 and 3 move (3 fill version 4 up to its
    # limit, 5 go to 5, 2 to 6); it ends too.
    again = _rewrap(app, batch_size=500)
    assert again[0] == Progress(12, 2, False) and again[-1] == Progress(12, 12, True)
    assert app.keys.census() == {("local", 4): 5, ("local", 5): 5, ("local", 6): 2}
    assert _all_open(app) == 12


def test_compare_and_set_lets_a_concurrent_change_win(vault_any_db: RunningVault) -> None:
    app = vault_any_db.app
    _populate(vault_any_db, workspaces=1, per_workspace=3)
    app.keys.rotate("local")
    rewrap_reserved = app.keys.rewrap_reserved
    destroyed: list[str] = []

    def racing(blob: bytes, binding: EnvelopeBinding, target: Any) -> Sealed:
        if not destroyed:  # while the batch is in flight, another key of it is destroyed
            with app.db.transaction() as session:
                bind_workspace(session, binding.workspace_id)
                other = (
                    session.execute(
                        select(CredentialVersion).where(
                            CredentialVersion.credential_id != binding.credential_id
                        )
                    )
                    .scalars()
                    .first()
                )
                assert other is not None
                other.envelope = None
                destroyed.append(other.id)
        sealed: Sealed = rewrap_reserved(blob, binding, target)
        return sealed

    app.keys.rewrap_reserved = racing
    try:
        steps = _rewrap(app, batch_size=500)
    finally:
        del app.keys.rewrap_reserved
    # The batch stored 2 of its 3 rows: the destroyed one was not brought back.
    assert [s.migrated for s in steps] == [0, 2, 2]
    assert steps[-1] == Progress(2, 2, True)
    assert app.keys.census() == {("local", 2): 2}
    (uid,) = _workspace_uids(app)
    with app.db.transaction() as session:
        bind_workspace(session, uid)
        gone = session.get(CredentialVersion, destroyed[0])
        assert gone is not None and gone.envelope is None


def test_a_key_that_fails_is_counted_once_and_the_rest_is_rewrapped(
    vault_any_db: RunningVault,
) -> None:
    app = vault_any_db.app
    _populate(vault_any_db, workspaces=2, per_workspace=3)
    app.keys.rotate("local")
    uid = _workspace_uids(app)[0]
    with app.db.transaction() as session:
        bind_workspace(session, uid)
        victim = session.execute(select(CredentialVersion)).scalars().first()
        assert victim is not None and victim.envelope is not None
        blob = bytearray(victim.envelope)
        blob[12] ^= 0x01  # inside the wrapped DEK ("PVE", 1, len, "local", u32, u16, ...)
        victim.envelope = bytes(blob)

    steps = _rewrap(app, batch_size=2)

    assert steps[-1] == Progress(6, 5, False)
    assert app.keys.census() == {("local", 1): 1, ("local", 2): 5}
    details = [e.details for e in iter_audit(app) if e.action == "key.rewrap"]
    assert details[-1]["failed"] == "1" and details[-1]["migrated"] == "5"


def test_workspaces_per_transaction_is_bounded_and_empty_stretches_are_skipped(
    vault_any_db: RunningVault, monkeypatch: Any
) -> None:
    from vault_server.keys import _rewrap as rewrap

    app = vault_any_db.app
    for w in range(5):
        make_workspace(vault_any_db, f"ws-{w}")
    uids = _workspace_uids(app)
    # Keys in the 2nd and 5th workspace (by uid order) only: the others are stretches with
    # nothing to do.
    for n, uid in enumerate(uids):
        if n in (1, 4):
            rid = _resource_id(app, uid)
            for i in range(3):
                onboard(vault_any_db, rid, f"c{i}", f"K{n}x{i}" * 5, secrets.token_hex(16))
    app.keys.rotate("local")
    monkeypatch.setattr(rewrap, "WORKSPACES_PER_TRANSACTION", 2)

    steps = _rewrap(app, batch_size=500)

    assert steps[0] == Progress(6, 0, False) and steps[-1] == Progress(6, 6, True)
    assert [s.migrated for s in steps[1:-1]] == [3, 6]  # one batch per stretch with keys
    assert app.keys.census() == {("local", 2): 6}
    assert _all_open(app) == 6


def _resource_id(app: Any, uid: str) -> str:
    with app.db.transaction() as session:
        return dict(ws_repo.all_ids(session))[uid]
