"""Issue 19 §3: rotating a provider rewraps only the keys that provider already wraps; keys move
between providers only through ``MigrateKeys``, audited as a migration (from, to, count).

For every ordered pair (A, B) of the four provider kinds (local keyring, OpenBao transit, moto's
AWS KMS, a SoftHSM2 token): a vault with A primary seals keys on A, migrates them to B, seals more
on A; rotating B then moves only B's keys (to B's new version) and leaves A's byte for byte, and
rotating A moves only A's. The back ends are started once for the module (their KEKs just gain
versions pair after pair); each pair gets a vault and a database of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipsync.vault.v1 import key_service_pb2 as kpb
from pipsync.vault.v1 import key_service_pb2_grpc as kgrpc
from sqlalchemy import select

from tests.integration.keys.backends import Backends, start_backends
from tests.integration.keys.kms_fixtures import SoftHsmToken
from tests.support.custody import make_workspace, onboard
from tests.support.vault import RunningVault, iter_audit, start_vault
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.storage.models import CredentialVersion
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace

KINDS = ("local", "transit", "aws", "hsm")
PAIRS = [(a, b) for a in KINDS for b in KINDS if a != b]
PER_SIDE = 2  # keys on each provider of a pair


@pytest.fixture(scope="module")
def backends(
    tmp_path_factory: pytest.TempPathFactory, softhsm_tokens: Iterator[SoftHsmToken]
) -> Iterator[Backends]:
    token = next(softhsm_tokens)
    started = start_backends(KINDS, tmp_path_factory.mktemp("rotation-scope"), "local", token)
    try:
        yield started
    finally:
        started.stop()


def _settings(backends: Backends, pair: tuple[str, str], home: Path) -> dict[str, Any]:
    """The shared back ends' settings, narrowed to the pair, A primary, a keyring of its own."""
    providers = {pid: uri for pid, uri in backends.keys["providers"].items() if pid in pair}
    if "local" in providers:
        providers["local"] = f"local://{home / 'keyring.json'}"
    return {**backends.keys, "providers": providers, "primary": pair[0]}


def _census(vault: RunningVault) -> dict[tuple[str, int], int]:
    status = kgrpc.KeyServiceStub(vault.channel()).GetKeyStatus(
        kpb.GetKeyStatusRequest(), metadata=vault.md(), timeout=30
    )
    return {
        (p.provider_id, v.version): v.ciphertext_count
        for p in status.providers
        for v in p.versions
        if v.ciphertext_count
    }


def _envelopes(vault: RunningVault) -> dict[str, tuple[str, int, bytes]]:
    """Every live wrapped key: row id -> (provider, KEK version, envelope)."""
    app = vault.app
    out: dict[str, tuple[str, int, bytes]] = {}
    with app.db.transaction() as session:
        uids = [uid for uid, _rid in ws_repo.all_ids(session)]
    for uid in uids:
        with app.db.transaction() as session:
            bind_workspace(session, uid)
            for v in session.execute(
                select(CredentialVersion).where(CredentialVersion.envelope.is_not(None))
            ).scalars():
                # every key still opens, whichever provider wraps it
                app.keys.open(v.envelope, EnvelopeBinding(uid, v.credential_id, v.version))
                out[v.id] = (v.provider_id, v.kek_version, bytes(v.envelope))
    return out


def _rotate(vault: RunningVault, provider: str) -> kpb.RotateKeyEncryptionKeyResponse:
    return kgrpc.KeyServiceStub(vault.channel()).RotateKeyEncryptionKey(
        kpb.RotateKeyEncryptionKeyRequest(provider_id=provider, reason="scheduled rotation"),
        metadata=vault.md(), timeout=60,
    )  # fmt: skip


def _moved(
    before: dict[str, tuple[str, int, bytes]], after: dict[str, tuple[str, int, bytes]]
) -> dict[str, tuple[str, int]]:
    assert before.keys() == after.keys()
    return {rid: after[rid][:2] for rid in before if after[rid][2] != before[rid][2]}


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_rotation_moves_only_its_own_keys_and_migration_is_audited(
    backends: Backends, tmp_path: Path, pair: tuple[str, str]
) -> None:
    a, b = pair
    home = tmp_path / "home"
    vault = start_vault(home, keys=_settings(backends, pair, home))
    try:
        make_workspace(vault, "ws-a")
        for i in range(PER_SIDE):
            onboard(vault, "ws-a", f"b{i}", f"B{i}" * 10, secrets.token_hex(16))
        keys = kgrpc.KeyServiceStub(vault.channel())
        progress = list(
            keys.MigrateKeys(
                kpb.MigrateKeysRequest(target_provider_id=b, reason="move to the new KMS"),
                metadata=vault.md(), timeout=60,
            )
        )  # fmt: skip
        assert progress[-1].done and progress[-1].migrated == PER_SIDE
        for i in range(PER_SIDE):  # sealed by the primary, A
            onboard(vault, "ws-a", f"a{i}", f"A{i}" * 10, secrets.token_hex(16))
        start = _envelopes(vault)
        on_a = {rid for rid, (p, _v, _e) in start.items() if p == a}
        on_b = {rid for rid, (p, _v, _e) in start.items() if p == b}
        assert len(on_a) == len(on_b) == PER_SIDE
        b_version = max(v for p, v, _e in start.values() if p == b)

        rotated = _rotate(vault, b)
        assert rotated.new_version > b_version and rotated.rewrapped == PER_SIDE
        after_b = _envelopes(vault)
        assert _moved(start, after_b) == dict.fromkeys(on_b, (b, rotated.new_version))
        census = _census(vault)
        assert sum(n for (p, _v), n in census.items() if p == a) == PER_SIDE
        assert census.get((b, rotated.new_version)) == PER_SIDE

        a_version = max(v for p, v, _e in start.values() if p == a)
        rotated_a = _rotate(vault, a)
        assert rotated_a.new_version > a_version and rotated_a.rewrapped == PER_SIDE
        after_a = _envelopes(vault)
        assert _moved(after_b, after_a) == dict.fromkeys(on_a, (a, rotated_a.new_version))

        events = [e for e in iter_audit(vault.app) if e.action.startswith("key.")]
        assert [e.action for e in events] == [
            "key.migrate", "key.migrate", "key.rotate", "key.rewrap", "key.rotate", "key.rewrap",
        ]  # fmt: skip
        started, finished = events[0].details, events[1].details
        assert (started["stage"], started["from"], started["to"]) == (
            "started",
            a,
            f"{b}:{b_version}",
        )
        assert (finished["stage"], finished["from"], finished["to"], finished["count"]) == (
            "finished", a, f"{b}:{b_version}", str(PER_SIDE),
        )  # fmt: skip
        rewraps = [e.details for e in events if e.action == "key.rewrap"]
        assert [(d["target"], d["count"]) for d in rewraps] == [
            (f"{b}:{rotated.new_version}", str(PER_SIDE)),
            (f"{a}:{rotated_a.new_version}", str(PER_SIDE)),
        ]
    finally:
        vault.stop()
