"""KEK lifecycle: usage-bound rotation, online rewrap with census, and kill -9 mid-rewrap."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from pipsync.vault.v1 import key_service_pb2 as kpb
from pipsync.vault.v1 import key_service_pb2_grpc as kgrpc

from tests.support.custody import make_workspace, onboard
from tests.support.errors import expect_error
from tests.support.rotation_worker import build
from tests.support.vault import RunningVault, iter_audit, start_vault
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.storage.models import Credential, CredentialVersion
from vault_server.storage.tenant import bind_workspace

ROOT = Path(__file__).resolve().parents[3]


def test_wrap_counter_rotates_far_below_the_limit(tmp_path: Path) -> None:
    vault = start_vault(tmp_path / "home", keys={"wrap_limit": 3})
    try:
        make_workspace(vault, "ws-a")
        refs = [
            onboard(vault, "ws-a", f"c{i}", f"K{i}" * 10, secrets.token_hex(16))
            .versions[0]
            .kek_reference
            for i in range(7)
        ]
        assert refs == ["local:1"] * 3 + ["local:2"] * 3 + ["local:3"]
        status = kgrpc.KeyServiceStub(vault.channel()).GetKeyStatus(
            kpb.GetKeyStatusRequest(), metadata=vault.md(), timeout=10
        )
        versions = {v.version: v for v in status.providers[0].versions}
        assert (
            versions[1].wrap_count == 3 and versions[1].state == kpb.KekVersion.STATE_DECRYPT_ONLY
        )
        assert versions[3].wrap_count == 1 and versions[3].state == kpb.KekVersion.STATE_ACTIVE
        assert [versions[v].ciphertext_count for v in (1, 2, 3)] == [3, 3, 1]
        assert all(v.wrap_limit == 3 for v in versions.values())
    finally:
        vault.stop()


def test_rotation_rewraps_everything_online_and_is_audited(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    for ws in ("ws-a", "ws-b"):
        for i in range(3):
            onboard(vault, ws, f"c{i}", f"K{i}" * 10, secrets.token_hex(16))
    stub = kgrpc.KeyServiceStub(vault.channel())
    scoped = expect_error(
        stub.RotateKeyEncryptionKey,
        kpb.RotateKeyEncryptionKeyRequest(reason="x"),
        metadata=vault.md("security-a"),
        timeout=10,
    )
    assert scoped.reason == "ROLE_REQUIRED"  # a workspace-scoped principal cannot touch global keys
    rotated = stub.RotateKeyEncryptionKey(
        kpb.RotateKeyEncryptionKeyRequest(reason="annual"), metadata=vault.md(), timeout=60
    )
    assert rotated.new_version == 2 and rotated.rewrapped == 6
    counts = {v.version: v.ciphertext_count for v in rotated.provider.versions}
    assert counts == {2: 6, 1: 0}
    actions = [e.action for e in iter_audit(vault.app) if e.action.startswith("key.")]
    assert actions == ["key.rotate", "key.rewrap"]
    _all_decrypt(vault.app)


def _all_decrypt(app) -> int:  # type: ignore[no-untyped-def]
    """Every live ciphertext opens; returns how many."""
    from sqlalchemy import select

    from vault_server.storage.repositories import workspaces as ws_repo

    opened = 0
    with app.db.transaction() as session:
        workspaces = ws_repo.all_ids(session)
    for uid, _rid in workspaces:
        with app.db.transaction() as session:
            bind_workspace(session, uid)
            for v in session.execute(
                select(CredentialVersion).where(CredentialVersion.envelope.is_not(None))
            ).scalars():
                cred = session.get(Credential, v.credential_id)
                assert cred is not None
                app.keys.open(v.envelope, EnvelopeBinding(uid, cred.id, v.version))
                opened += 1
    return opened


def test_kill_9_in_the_middle_of_rewrap_loses_nothing_and_resumes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    n = 300
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.rotation_worker", str(home), str(n)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    killed_at = None
    for line in proc.stdout:
        if line.startswith("progress "):
            migrated = int(line.split()[1].split("/")[0])
            if 0 < migrated < n:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = migrated
                break
    proc.wait(30)
    assert killed_at is not None, "the worker finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    app = build(home)
    try:
        census = app.keys.census()
        assert sum(census.values()) == n  # one live ciphertext per credential, none lost
        assert census.get(("local", 2), 0) >= killed_at and census.get(("local", 1), 0) > 0
        assert _all_decrypt(app) == n  # a mix of old and new, all readable
        steps = list(app.key_admin._rewrap.rotation(_ctx(), "local"))
        assert steps[-1].done and steps[-1].migrated == n
        assert app.keys.census() == {("local", 2): n}
        assert _all_decrypt(app) == n
    finally:
        app.db.dispose()


def _ctx():  # type: ignore[no-untyped-def]
    from vault_server.domain._call import system_context

    return system_context("resume rotation")
