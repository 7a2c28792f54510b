"""Issue 21 envelopes in the key census, KEK rotation and provider migration: a venue session
(tenant table, RLS by workspace, bound to its credential session and generation) and a platform
application (global table, bound to its id and version) are counted under their KEK version,
rewrapped by a rotation and by a migration exactly like credential versions (batches spanning
kinds, compare-and-set) and still open afterwards; a session renewal that replaces the envelope
between the rewrap's read and its write wins. On SQLite and on PostgreSQL as the app role."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.support.custody import make_workspace, onboard
from tests.support.vault import RunningVault, iter_audit, start_vault
from vault_server.brokers.base import Environment, Venue
from vault_server.core.secret import Secret
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.domain._call import system_context
from vault_server.keys import platform_application_binding, session_binding
from vault_server.keys._manager import Sealed
from vault_server.keys._rewrap import Progress
from vault_server.sessions._applications import PlatformApplications
from vault_server.sessions._store import Renewed, SessionKey, SessionStore
from vault_server.storage.models import CredentialVersion, PlatformApplication, VenueSession
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace

TOKENS = b'{"access_token": "at-1", "refresh_token": "rt-1"}'
CLIENT_SECRET = b"ctrader-client-secret"
APP_ID = "ctrader-live"
GENERATION = 3


def _ctx() -> Any:
    return system_context("key rewrap test")


def _uid(app: Any) -> str:
    with app.db.transaction() as session:
        ((uid, _rid),) = ws_repo.all_ids(session)
        return str(uid)


def _populate(vault: RunningVault) -> tuple[str, str]:
    """Two credential versions, a live session on the first (generation 3, its lease held by
    ``replica-b``), an ended session (no envelope) on the second, and a platform application:
    four live envelopes. Returns (workspace uid, the session's credential id)."""
    app = vault.app
    make_workspace(vault, "ws-a")
    for i in range(2):
        onboard(vault, "ws-a", f"c{i}", f"K{i}" * 10, secrets.token_hex(16))
    uid = _uid(app)
    with app.db.transaction() as session:
        bind_workspace(session, uid)
        cids = sorted(session.execute(select(CredentialVersion.credential_id)).scalars().all())
    sealed = app.keys.seal(Secret(TOKENS), session_binding(uid, cids[0], 1, GENERATION))
    now = app.clock.now()
    with app.db.transaction() as session:
        bind_workspace(session, uid)
        for cid, s in ((cids[0], sealed), (cids[1], None)):
            session.add(
                VenueSession(
                    credential_id=cid, credential_version=1, workspace_id=uid,
                    state="active" if s else "idle", generation=GENERATION if s else 0,
                    envelope=s.blob if s else None, provider_id=s.provider_id if s else "",
                    kek_version=s.kek_version if s else 0, lease_owner="replica-b",
                    lease_until=now + dt.timedelta(minutes=1), lease_kind="refresh",
                    failures=0, last_error="", update_time=now,
                )
            )  # fmt: skip
    # As ``SetPlatformApplication`` stores it (the RPC refuses cTrader while it is only planned).
    pa = app.keys.seal(Secret(CLIENT_SECRET), platform_application_binding(APP_ID, 1))
    with app.db.transaction() as session:
        session.add(
            PlatformApplication(
                id=APP_ID, broker="ctrader", environment="live", client_id="client-1",
                version=1, envelope=pa.blob, provider_id=pa.provider_id,
                kek_version=pa.kek_version, update_time=now,
            )
        )  # fmt: skip
    return uid, cids[0]


def _session_row(app: Any, uid: str, cid: str) -> VenueSession:
    with app.db.transaction() as session:
        bind_workspace(session, uid)
        row = session.get(VenueSession, (cid, 1))
        assert row is not None
        session.expunge(row)
        return row


def _app_row(app: Any) -> PlatformApplication:
    with app.db.transaction() as session:
        row = session.get(PlatformApplication, APP_ID)
        assert row is not None
        session.expunge(row)
        return row


def _all_open(app: Any, uid: str, cid: str) -> dict[str, tuple[str, int]]:
    """Opens every live envelope with the KeyManager and its binding; (provider, KEK version)
    per envelope."""
    found: dict[str, tuple[str, int]] = {}
    with app.db.transaction() as session:
        bind_workspace(session, uid)
        for v in session.execute(select(CredentialVersion)).scalars():
            app.keys.open(v.envelope, EnvelopeBinding(uid, v.credential_id, v.version))
            found[v.id] = (v.provider_id, v.kek_version)
    row = _session_row(app, uid, cid)
    assert row.envelope is not None
    opened = app.keys.open(row.envelope, session_binding(uid, cid, 1, row.generation))
    assert opened.reveal() == TOKENS
    found["session"] = (row.provider_id, row.kek_version)
    pa = _app_row(app)
    assert app.keys.open(
        pa.envelope, platform_application_binding(APP_ID, pa.version)
    ).reveal() == (CLIENT_SECRET)
    # and through the sessions' own reader (a fresh one: nothing cached)
    fresh = PlatformApplications(app.db, app.audit, app.keys, app.clock)
    assert fresh.get(Venue.CTRADER, Environment.LIVE).client_secret.reveal() == CLIENT_SECRET
    found["application"] = (pa.provider_id, pa.kek_version)
    return found


def test_rotation_counts_and_rewraps_sessions_and_platform_applications(
    vault_any_db: RunningVault,
) -> None:
    app = vault_any_db.app
    uid, cid = _populate(vault_any_db)
    assert app.keys.census() == {("local", 1): 4}  # the ended session holds no envelope
    assert app.keys.rotate("local") == 2
    status = {v.version: v.ciphertext_count for v in app.keys.status()[0].versions}
    assert status == {2: 0, 1: 4}  # version 1 may not be retired yet

    # Batches of 3: [c0, c1, session], [application]: one batch spans two kinds.
    steps = list(app.key_admin._rewrap.rotation(_ctx(), "local", 3))

    assert [s.migrated for s in steps] == [0, 3, 4, 4] and steps[-1] == Progress(4, 4, True)
    assert app.keys.census() == {("local", 2): 4}
    assert set(_all_open(app, uid, cid).values()) == {("local", 2)}
    assert _session_row(app, uid, cid).generation == GENERATION  # only the wrapped key moved
    assert _app_row(app).version == 1
    rewrap = [e.details for e in iter_audit(app) if e.action == "key.rewrap"][-1]
    assert (rewrap["total"], rewrap["count"], rewrap["failed"]) == ("4", "4", "0")


def test_a_concurrent_session_renewal_wins_the_compare_and_set(
    vault_any_db: RunningVault,
) -> None:
    app = vault_any_db.app
    uid, cid = _populate(vault_any_db)
    app.keys.rotate("local")
    store = SessionStore(app.db, app.audit, None)
    key = SessionKey(uid, "workspaces/ws-a", cid, "workspaces/ws-a/credentials/c0", 1)
    rewrap_reserved = app.keys.rewrap_reserved
    renewed: list[bytes] = []

    def racing(blob: bytes, binding: EnvelopeBinding, target: Any) -> Sealed:
        if "#session" in binding.credential_id and not renewed:
            # replica-b's refresh lands while the rewrap batch is in flight
            sealed = app.keys.seal(Secret(TOKENS), session_binding(uid, cid, 1, GENERATION + 1))
            now = app.clock.now()
            out = Renewed(sealed.blob, now + dt.timedelta(hours=1), None,
                          sealed.provider_id, sealed.kek_version)  # fmt: skip
            assert store.renewed(_ctx(), key, "replica-b", out, now, "refresh", {}) == 4
            renewed.append(sealed.blob)
        done: Sealed = rewrap_reserved(blob, binding, target)
        return done

    app.keys.rewrap_reserved = racing
    try:
        steps = list(app.key_admin._rewrap.rotation(_ctx(), "local", 500))
    finally:
        del app.keys.rewrap_reserved

    assert renewed
    # The batch stored 3 of its 4 rows: the session keeps the engine's envelope (sealed under
    # the new version anyway), not the rewrap of the old one.
    assert [s.migrated for s in steps] == [0, 3, 4] and steps[-1] == Progress(4, 4, True)
    row = _session_row(app, uid, cid)
    assert row.generation == GENERATION + 1 and row.envelope == renewed[0]
    assert app.keys.census() == {("local", 2): 4}
    assert set(_all_open(app, uid, cid).values()) == {("local", 2)}


def test_migration_moves_sessions_and_platform_applications_and_audits_them(
    tmp_path: Path, vault_database_url: str
) -> None:
    home = tmp_path / "home"
    keys = {
        "providers": {
            "local": f"local://{home / 'keyring.json'}",
            "neo": f"local://{home / 'neo-keyring.json'}",
        },
        "primary": "local",
    }
    vault = start_vault(home, vault_database_url, keys=keys)
    try:
        app = vault.app
        uid, cid = _populate(vault)
        assert app.keys.census() == {("local", 1): 4}

        steps = list(app.key_admin.start_migration(_ctx(), "neo", 2))

        assert steps[-1] == Progress(4, 4, True)
        assert app.keys.census() == {("neo", 1): 4}
        assert set(_all_open(app, uid, cid).values()) == {("neo", 1)}
        events = [e.details for e in iter_audit(app) if e.action == "key.migrate"]
        assert [e["stage"] for e in events] == ["started", "finished"]
        assert (events[1]["from"], events[1]["to"], events[1]["count"]) == ("local", "neo:1", "4")
        assert (events[1]["total"], events[1]["migrated"]) == ("4", "4")
        # a rerun finds nothing left to move (resumable: only what is still to do)
        again = list(app.key_admin.start_migration(_ctx(), "neo", 2))
        assert again[0] == Progress(4, 4, True) and again[-1] == Progress(4, 4, True)
    finally:
        vault.stop()


def test_an_interrupted_rotation_resumes_with_the_sessions_and_applications_left(
    vault_any_db: RunningVault,
) -> None:
    app = vault_any_db.app
    uid, cid = _populate(vault_any_db)
    app.keys.rotate("local")
    run = app.key_admin._rewrap.rotation(_ctx(), "local", 2)
    assert next(run) == Progress(4, 0, False)
    assert next(run) == Progress(4, 2, False)  # the two credential versions, committed
    run.close()  # the process is gone (its unused wrap reservation only overcounts)
    assert app.keys.census() == {("local", 2): 2, ("local", 1): 2}

    steps = list(app.key_admin._rewrap.rotation(_ctx(), "local", 2))

    assert steps[0] == Progress(4, 2, False) and steps[-1] == Progress(4, 4, True)
    assert [s.migrated for s in steps[1:-1]] == [4]  # one batch: the session and the application
    assert set(_all_open(app, uid, cid).values()) == {("local", 2)}
