"""Envelopes through OpenBao transit: seal/open, binding, rotation rewrap, local <-> transit
migration, and DEK-cache opens that need no KMS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.integration.crypto.openbao import OpenBao, transit_policy
from vault_server.core.clock import FixedClock, SystemRandom
from vault_server.core.errors import IntegrityCheckFailed, KeyProviderUnavailable
from vault_server.core.secret import Secret
from vault_server.crypto import envelope
from vault_server.crypto.dek_cache import DekCache
from vault_server.crypto.envelope import EnvelopeBinding, EnvelopeHeader
from vault_server.crypto.providers import init_local_keyring, new_key_provider
from vault_server.crypto.providers.base import KeyProvider

pytestmark = pytest.mark.openbao

BINDING = EnvelopeBinding("ws-7d0c", "cred-51aa", 2)
SECRET = Secret(b"-----BEGIN " + b"PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")


def transit(openbao: OpenBao, key: str, provider_id: str = "kms") -> KeyProvider:
    token = openbao.create_token(f"env-{key}", transit_policy("transit", key))
    return new_key_provider(
        f"vault-transit://transit/keys/{key}",
        provider_id,
        address=openbao.address,
        token=token,
        timeout=5.0,
    )


def local(tmp_path: Path, provider_id: str = "local") -> KeyProvider:
    path = tmp_path / "keyring.json"
    init_local_keyring(path)
    return new_key_provider(f"local://{path}", provider_id)


def data_part(blob: bytes) -> bytes:
    """Commitment, nonce and ciphertext: everything after the wrapped DEK."""
    header = envelope.parse_header(blob)
    offset = 3 + 1 + 1 + len(header.provider_id) + 4
    wrapped_len = int.from_bytes(blob[offset : offset + 2], "big")
    return blob[offset + 2 + wrapped_len :]


def test_seal_open_and_binding(openbao: OpenBao, transit_key: str) -> None:
    kms = transit(openbao, transit_key)
    blob = envelope.seal(SECRET, BINDING, kms, SystemRandom())
    assert envelope.parse_header(blob) == EnvelopeHeader(1, "kms", 1)
    assert envelope.open_envelope(blob, BINDING, {"kms": kms}) == SECRET
    for moved in (
        EnvelopeBinding("ws-other", BINDING.credential_id, 2),
        EnvelopeBinding(BINDING.workspace_id, "cred-other", 2),
        EnvelopeBinding(BINDING.workspace_id, BINDING.credential_id, 3),
    ):
        with pytest.raises(IntegrityCheckFailed):
            envelope.open_envelope(blob, moved, {"kms": kms})


def test_rotation_rewrap_keeps_the_data_ciphertext(openbao: OpenBao, transit_key: str) -> None:
    kms = transit(openbao, transit_key)
    blob = envelope.seal(SECRET, BINDING, kms, SystemRandom())
    assert kms.rotate() == 2
    new = envelope.rewrap(blob, BINDING, {"kms": kms}, kms)
    assert envelope.parse_header(new).kek_version == 2
    assert data_part(new) == data_part(blob)
    assert envelope.open_envelope(new, BINDING, {"kms": kms}) == SECRET
    kms.retire(1)
    with pytest.raises(IntegrityCheckFailed):
        envelope.open_envelope(blob, BINDING, {"kms": kms})
    assert envelope.open_envelope(new, BINDING, {"kms": kms}) == SECRET


def test_local_to_transit_migration_and_back(
    openbao: OpenBao, transit_key: str, tmp_path: Path
) -> None:
    old, kms = local(tmp_path), transit(openbao, transit_key)
    providers = {"local": old, "kms": kms}
    blob = envelope.seal(SECRET, BINDING, old, SystemRandom())
    migrated = envelope.rewrap(blob, BINDING, providers, kms)
    assert envelope.parse_header(migrated) == EnvelopeHeader(1, "kms", 1)
    assert data_part(migrated) == data_part(blob)
    assert envelope.open_envelope(migrated, BINDING, {"kms": kms}) == SECRET  # no local needed
    back = envelope.rewrap(migrated, BINDING, providers, old)
    assert envelope.parse_header(back).provider_id == "local"
    assert envelope.open_envelope(back, BINDING, {"local": old}) == SECRET
    with pytest.raises(IntegrityCheckFailed):  # migrating under the wrong binding
        envelope.rewrap(blob, EnvelopeBinding("ws-x", "cred-51aa", 2), providers, kms)


def test_cached_opens_survive_a_kms_outage(own_openbao: OpenBao) -> None:
    own_openbao.create_transit_key("kek")
    kms = transit(own_openbao, "kek")
    clock = FixedClock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    cache = DekCache(max_entries=16, max_age_s=300, max_uses=1000, clock=clock)
    blob = envelope.seal(SECRET, BINDING, kms, SystemRandom())
    assert envelope.open_envelope(blob, BINDING, {"kms": kms}, cache=cache) == SECRET
    own_openbao.stop()
    for _ in range(3):  # steady state: no KMS call
        assert envelope.open_envelope(blob, BINDING, {"kms": kms}, cache=cache) == SECRET
    clock.advance(300)  # entry expired: must ask the (stopped) KMS, and fails closed
    with pytest.raises(KeyProviderUnavailable):
        envelope.open_envelope(blob, BINDING, {"kms": kms}, cache=cache)
