"""The local key provider: private files, atomic rotation, old versions, env-var keyrings."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from tests.unit.crypto.crypto_testkit import CountingRandom
from vault_server.core.clock import FixedClock
from vault_server.core.errors import (
    AlreadyExists,
    IntegrityCheckFailed,
    InvalidArgument,
    KeyProviderUnavailable,
    OperationNotSupported,
)
from vault_server.core.secret import Secret
from vault_server.crypto.providers import (
    KekState,
    generate_keyring_document,
    init_local_keyring,
    new_key_provider,
)
from vault_server.crypto.providers.base import WrappedDek
from vault_server.crypto.providers.local import LocalKeyProvider

DEK = Secret(b"\x11" * 32)
AAD = b"wrap-aad"


def load(path: Path, provider_id: str = "local") -> LocalKeyProvider:
    provider = new_key_provider(f"local://{path}", provider_id)
    assert isinstance(provider, LocalKeyProvider)
    return provider


def keys_in(path: Path) -> list[str]:
    return [v["key"] for v in json.loads(path.read_text())["versions"] if v["key"]]


# --- files ----------------------------------------------------------------------------------------
def test_init_creates_a_private_file(tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "sub" / "keyring.json"
    init_local_keyring(path, clock=clock)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == "pipvault-keyring-v1"
    assert doc["versions"][0]["version"] == 1
    assert doc["versions"][0]["state"] == "active"
    assert doc["versions"][0]["created"] == "2025-01-02T03:04:05Z"
    assert len(base64.b64decode(doc["versions"][0]["key"])) == 32
    assert [p.name for p in path.parent.iterdir()] == ["keyring.json"]  # no temp file left


def test_init_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        init_local_keyring(tmp_path / "k.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.json").stat().st_mode) == 0o600


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    init_local_keyring(path)
    before = path.read_bytes()
    with pytest.raises(AlreadyExists):
        init_local_keyring(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o620])
def test_group_or_world_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keyring.json"
    init_local_keyring(path)
    path.chmod(mode)
    with pytest.raises(KeyProviderUnavailable) as info:
        load(path)
    assert "chmod 600" in info.value.message
    assert str(path) in info.value.message


def test_mode_0400_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    init_local_keyring(path)
    path.chmod(0o400)
    assert load(path).active_version() == 1


def test_missing_file_and_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyProviderUnavailable):
        load(tmp_path / "nope.json")
    with pytest.raises(KeyProviderUnavailable) as info:
        load(tmp_path)
    assert "not a regular file" in info.value.message
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyProviderUnavailable) as info:
        load(fifo)  # must not block waiting for a writer
    assert "not a regular file" in info.value.message


def test_permission_change_after_start_fails_closed_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    init_local_keyring(path)
    provider = load(path)
    path.chmod(0o644)
    os.utime(path, ns=(0, 0))  # changes the file identity, so the provider reloads
    with pytest.raises(KeyProviderUnavailable):
        provider.wrap(DEK, AAD)


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        "[]",
        '{"format": "other", "versions": []}',
        '{"format": "pipvault-keyring-v1", "versions": []}',
        '{"format": "pipvault-keyring-v1", "versions": [1]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": 1, "state": "active",'
        ' "created": "2025-01-01T00:00:00Z", "key": "c2hvcnQ="}]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": 1, "state": "active",'
        ' "created": "2025-01-01T00:00:00", "key": "%s"}]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": 1, "state": "weird",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": 1, "state": "decrypt_only",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": 2, "state": "active",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}, {"version": 1, "state": "active",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": 1, "state": "active",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}, {"version": 1, "state": "active",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": 1, "state": "retired",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}, {"version": 2, "state": "active",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}]}',
        '{"format": "pipvault-keyring-v1", "versions": [{"version": true, "state": "active",'
        ' "created": "2025-01-01T00:00:00Z", "key": "%s"}]}',
    ],
)
def test_malformed_keyrings_refused_without_echoing_keys(tmp_path: Path, doc: str) -> None:
    key = base64.b64encode(b"\x42" * 32).decode()
    text = doc.replace("%s", key)
    path = tmp_path / "keyring.json"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(KeyProviderUnavailable) as info:
        load(path)
    assert key not in str(info.value)
    assert key not in repr(info.value)
    assert info.value.__cause__ is None


# --- wrap / unwrap / rotate -----------------------------------------------------------------------
def test_wrap_unwrap_and_aad_binding(local: LocalKeyProvider) -> None:
    wrapped = local.wrap(DEK, AAD)
    assert wrapped.provider_id == "local"
    assert wrapped.kek_version == 1
    assert local.unwrap(wrapped, AAD) == DEK
    with pytest.raises(IntegrityCheckFailed):
        local.unwrap(wrapped, AAD + b"x")
    with pytest.raises(IntegrityCheckFailed):
        local.unwrap(WrappedDek("other", 1, wrapped.blob), AAD)
    with pytest.raises(IntegrityCheckFailed):
        local.unwrap(WrappedDek("local", 9, wrapped.blob), AAD)
    with pytest.raises(IntegrityCheckFailed):
        local.unwrap(WrappedDek("local", 1, wrapped.blob[:-1]), AAD)


def test_rotate_keeps_old_versions_decryptable(local: LocalKeyProvider, tmp_path: Path) -> None:
    path = tmp_path / "local-keyring.json"
    old = local.wrap(DEK, AAD)
    assert local.rotate() == 2
    assert local.rotate() == 3
    new = local.wrap(DEK, AAD)
    assert new.kek_version == 3
    assert local.unwrap(old, AAD) == DEK
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "local-keyring.json",
        "local-keyring.json.lock",
    ]
    status = local.status()
    assert status.active_version == 3
    assert [(v.version, v.state) for v in status.versions] == [
        (3, KekState.ACTIVE),
        (2, KekState.DECRYPT_ONLY),
        (1, KekState.DECRYPT_ONLY),
    ]
    reloaded = load(path)  # persisted
    assert reloaded.unwrap(old, AAD) == DEK
    assert reloaded.unwrap(new, AAD) == DEK


def test_rewrap_moves_to_the_active_version(local: LocalKeyProvider) -> None:
    old = local.wrap(DEK, AAD)
    local.rotate()
    new = local.rewrap(old, AAD)
    assert new.kek_version == 2
    assert local.unwrap(new, AAD) == DEK


def test_rotation_by_another_process_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    init_local_keyring(path)
    a, b = load(path), load(path)
    assert b.rotate() == 2
    wrapped = b.wrap(DEK, AAD)
    assert a.unwrap(wrapped, AAD) == DEK  # unknown version: a reloads
    assert a.active_version() == 2
    assert a.rotate() == 3  # a re-reads under the lock instead of clobbering b's version
    assert [v.version for v in load(path).status().versions] == [3, 2, 1]


def test_retire(local: LocalKeyProvider, tmp_path: Path) -> None:
    old = local.wrap(DEK, AAD)
    local.rotate()
    with pytest.raises(InvalidArgument) as info:
        local.retire(2)
    assert info.value.field == "version"
    with pytest.raises(InvalidArgument):
        local.retire(7)
    local.retire(1)
    local.retire(1)  # idempotent
    with pytest.raises(IntegrityCheckFailed) as err:
        local.unwrap(old, AAD)
    assert err.value.message == "wrapped key's KEK version is retired"
    doc = json.loads((tmp_path / "local-keyring.json").read_text())
    assert doc["versions"][0] == {
        "version": 1,
        "state": "retired",
        "created": doc["versions"][0]["created"],
        "key": None,
    }
    assert local.status().versions[-1].state == KekState.RETIRED


def test_wrap_nonces_are_unique(local: LocalKeyProvider) -> None:
    blobs = {local.wrap(DEK, AAD).blob[:12] for _ in range(2000)}
    assert len(blobs) == 2000


# --- environment keyrings -------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["raw", "base64"])
def test_env_keyring(encoding: str, clock: FixedClock) -> None:
    doc = generate_keyring_document(clock=clock, random=CountingRandom())
    value = doc.reveal_text() if encoding == "raw" else base64.b64encode(doc.reveal()).decode()
    provider = new_key_provider(
        "local+env://PIPVAULT_TEST_KEYRING", "envring", environ={"PIPVAULT_TEST_KEYRING": value}
    )
    wrapped = provider.wrap(DEK, AAD)
    assert provider.unwrap(wrapped, AAD) == DEK
    assert provider.status().active_version == 1
    with pytest.raises(OperationNotSupported) as info:
        provider.rotate()
    assert "$PIPVAULT_TEST_KEYRING" in info.value.message
    assert "read-only" in info.value.message
    with pytest.raises(OperationNotSupported):
        provider.retire(1)


def test_env_keyring_from_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPVAULT_TEST_KEYRING2", generate_keyring_document().reveal_text())
    provider = new_key_provider("local+env://PIPVAULT_TEST_KEYRING2", "envring")
    assert provider.unwrap(provider.wrap(DEK, AAD), AAD) == DEK


@pytest.mark.parametrize("value", ["", "   ", "%%%not-base64", base64.b64encode(b"[]").decode()])
def test_env_keyring_missing_or_bad(value: str) -> None:
    with pytest.raises(KeyProviderUnavailable) as info:
        new_key_provider("local+env://RING", "envring", environ={"RING": value})
    assert "$RING" in info.value.message


def test_env_keyring_unset() -> None:
    with pytest.raises(KeyProviderUnavailable) as info:
        new_key_provider("local+env://RING", "envring", environ={})
    assert info.value.message == "local keyring $RING: variable is not set"


def test_keys_never_in_repr_or_status(local: LocalKeyProvider, tmp_path: Path) -> None:
    local.rotate()
    text = repr(local) + repr(local.status()) + repr(local.wrap(DEK, AAD))
    for key in keys_in(tmp_path / "local-keyring.json"):
        assert key not in text
        assert base64.b64decode(key).hex() not in text
