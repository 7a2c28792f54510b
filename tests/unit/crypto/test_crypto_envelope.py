"""Envelope v1: layout, binding, tampering of every field, key commitment, rewrap, DEK cache."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.unit.crypto.crypto_testkit import (
    CountingRandom,
    envelope_fields,
    flip,
    make_local,
    replace_field,
)
from vault_server.core.clock import FixedClock, SystemRandom
from vault_server.core.errors import (
    IntegrityCheckFailed,
    InternalError,
    InvalidArgument,
    KeyProviderUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.crypto import envelope
from vault_server.crypto.dek_cache import DekCache
from vault_server.crypto.envelope import EnvelopeBinding, EnvelopeHeader
from vault_server.crypto.providers.base import WrappedDek
from vault_server.crypto.providers.local import LocalKeyProvider

BINDING = EnvelopeBinding("6f1c1a52-ws", "0c7d2e90-cred", 3)
SECRET = Secret(b"api-secret-\x00\xff-passphrase")


def seal(provider: LocalKeyProvider, binding: EnvelopeBinding = BINDING) -> bytes:
    return envelope.seal(SECRET, binding, provider, SystemRandom())


def open_(blob: bytes, provider: LocalKeyProvider, binding: EnvelopeBinding = BINDING) -> Secret:
    return envelope.open_envelope(blob, binding, {provider.provider_id: provider})


# --- round trip and layout ------------------------------------------------------------------------
def test_round_trip_and_header(local: LocalKeyProvider) -> None:
    blob = seal(local)
    assert open_(blob, local) == SECRET
    assert envelope.parse_header(blob) == EnvelopeHeader(1, "local", 1)


def test_layout_matches_the_documented_format(local: LocalKeyProvider) -> None:
    blob = seal(local)
    f = envelope_fields(blob)
    assert blob[f["magic"]] == b"PVE"
    assert blob[f["format_version"]] == b"\x01"
    assert blob[f["provider_id"]] == b"local"
    assert blob[f["kek_version"]] == struct.pack(">I", 1)
    assert len(blob[f["ciphertext"]]) == len(SECRET) + 16
    assert b"api-secret" not in blob


def test_empty_and_maximum_plaintext(local: LocalKeyProvider) -> None:
    for size in (0, envelope.MAX_PLAINTEXT):
        plain = Secret(b"\x5a" * size)
        blob = envelope.seal(plain, BINDING, local, SystemRandom())
        assert envelope.open_envelope(blob, BINDING, {"local": local}) == plain


def test_oversized_plaintext_refused(local: LocalKeyProvider) -> None:
    with pytest.raises(InvalidArgument) as info:
        envelope.seal(Secret(b"x" * (envelope.MAX_PLAINTEXT + 1)), BINDING, local, SystemRandom())
    assert info.value.field == "plaintext"


@pytest.mark.parametrize(
    ("ws", "cred", "version", "field"),
    [
        ("", "c", 1, "binding.workspace_id"),
        ("w", "", 1, "binding.credential_id"),
        ("w" * 256, "c", 1, "binding.workspace_id"),
        ("w", "c", 0, "binding.credential_version"),
        ("w", "c", 1 << 32, "binding.credential_version"),
        ("w", "c", True, "binding.credential_version"),
    ],
)
def test_binding_validated(ws: str, cred: str, version: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        EnvelopeBinding(ws, cred, version)
    assert info.value.field == field


def test_aad_layout() -> None:
    binding = EnvelopeBinding("ws", "cred", 7)
    assert envelope.data_aad(binding) == b"PVE\x01data\x00\x02ws\x00\x04cred\x00\x00\x00\x07"
    assert envelope.wrap_aad(binding, "p1") == (
        b"PVE\x01wrap\x00\x02ws\x00\x04cred\x00\x00\x00\x07\x02p1"
    )


def test_aad_fields_cannot_be_shifted_between_ids() -> None:
    """Length prefixes: ("ab", "c") and ("a", "bc") give different AADs."""
    assert envelope.data_aad(EnvelopeBinding("ab", "c", 1)) != envelope.data_aad(
        EnvelopeBinding("a", "bc", 1)
    )


# --- binding --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "moved",
    [
        EnvelopeBinding("other-ws", BINDING.credential_id, BINDING.credential_version),
        EnvelopeBinding(BINDING.workspace_id, "other-cred", BINDING.credential_version),
        EnvelopeBinding(BINDING.workspace_id, BINDING.credential_id, 4),
    ],
    ids=["workspace", "credential", "version"],
)
def test_blob_moved_to_another_binding_fails(
    local: LocalKeyProvider, moved: EnvelopeBinding
) -> None:
    blob = seal(local)
    with pytest.raises(IntegrityCheckFailed) as info:
        open_(blob, local, moved)
    assert info.value.message == "wrapped key failed authentication"
    with pytest.raises(IntegrityCheckFailed):
        envelope.rewrap(blob, moved, {"local": local}, local)


# --- tampering ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["wrapped_dek", "commitment", "nonce", "ciphertext", "kek_version", "magic"]
)
def test_flipping_any_field_fails(local: LocalKeyProvider, name: str) -> None:
    blob = seal(local)
    f = envelope_fields(blob)
    for index in (f[name].start, f[name].stop - 1):
        with pytest.raises(IntegrityCheckFailed):
            open_(flip(blob, index), local)


def test_tampered_tag_is_caught_by_gcm_after_commitment(local: LocalKeyProvider) -> None:
    blob = seal(local)
    with pytest.raises(IntegrityCheckFailed) as info:
        open_(flip(blob, len(blob) - 1), local)
    assert info.value.message == "ciphertext failed authentication"


def test_tampered_commitment_is_refused_before_decrypting(local: LocalKeyProvider) -> None:
    blob = seal(local)
    f = envelope_fields(blob)
    with pytest.raises(IntegrityCheckFailed) as info:
        open_(flip(blob, f["commitment"].start), local)
    assert info.value.message == "envelope key commitment does not match"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("format_version", b"\x02"),
        ("format_version", b"\x00"),
        ("provider_id_len", b"\x00"),
        ("provider_id_len", b"\x41"),  # 65 > max
        ("provider_id_len", b"\x06"),  # claims more than there is
        ("provider_id_len", b"\x04"),  # claims less
        ("kek_version", b"\x00\x00\x00\x00"),
        ("wrapped_dek_len", b"\x00\x00"),
        ("wrapped_dek_len", b"\x10\x01"),  # 4097 > max
        ("wrapped_dek_len", b"\x00\x01"),
        ("ciphertext_len", b"\x00\x00\x00\x0f"),  # shorter than a tag
        ("ciphertext_len", b"\x00\x01\x00\x11"),  # 64 KiB + 17 > max
        ("ciphertext_len", b"\xff\xff\xff\xff"),
        ("provider_id", b"LOCAL"),  # not a valid id
        ("provider_id", b"loc\xffl"),  # not ASCII
    ],
)
def test_bad_header_and_length_fields_fail(
    local: LocalKeyProvider, name: str, value: bytes
) -> None:
    blob = seal(local)
    bad = replace_field(blob, envelope_fields(blob), name, value)
    with pytest.raises(IntegrityCheckFailed):
        envelope.parse_header(bad)
    with pytest.raises(IntegrityCheckFailed):
        open_(bad, local)


def test_trailing_and_missing_bytes_fail(local: LocalKeyProvider) -> None:
    blob = seal(local)
    for bad in (blob + b"\x00", blob[:-1], blob[:10], b"", b"PVE"):
        with pytest.raises(IntegrityCheckFailed):
            envelope.parse_header(bad)


def test_kek_version_swap_is_refused_by_the_provider(local: LocalKeyProvider) -> None:
    local.rotate()
    blob = seal(local)  # wrapped under version 2
    f = envelope_fields(blob)
    bad = replace_field(blob, f, "kek_version", struct.pack(">I", 1))
    with pytest.raises(IntegrityCheckFailed) as info:
        open_(bad, local)
    assert info.value.message == "wrapped key failed authentication"


def test_unknown_provider_is_unavailable_not_tampering(local: LocalKeyProvider) -> None:
    blob = seal(local)
    with pytest.raises(KeyProviderUnavailable) as info:
        envelope.open_envelope(blob, BINDING, {})
    assert info.value.metadata == {"providerId": "local"}


# --- key commitment -------------------------------------------------------------------------------
def test_substituted_wrapped_dek_is_rejected_by_the_commitment(local: LocalKeyProvider) -> None:
    """Same binding, two seals: B's wrapped DEK unwraps fine under A's binding, so only the
    commitment check stands between an attacker with DB write access and a DEK swap."""
    a, b = seal(local), seal(local)
    fa, fb = envelope_fields(a), envelope_fields(b)
    swapped = (
        a[: fa["wrapped_dek_len"].start] + b[fb["wrapped_dek_len"].start : fb["commitment"].start]
    )
    swapped += a[fa["commitment"].start :]
    with pytest.raises(IntegrityCheckFailed) as info:
        open_(swapped, local)
    assert info.value.message == "envelope key commitment does not match"


def test_commitment_swapped_along_with_dek_then_gcm_fails(local: LocalKeyProvider) -> None:
    a, b = seal(local), seal(local)
    fa, fb = envelope_fields(a), envelope_fields(b)
    mixed = a[: fa["wrapped_dek_len"].start] + b[fb["wrapped_dek_len"].start : fb["nonce"].start]
    mixed += a[fa["nonce"].start :]
    with pytest.raises(IntegrityCheckFailed) as info:
        open_(mixed, local)
    assert info.value.message == "ciphertext failed authentication"


# --- rewrap ---------------------------------------------------------------------------------------
def test_rewrap_after_rotation_keeps_data_bytes(local: LocalKeyProvider) -> None:
    blob = seal(local)
    assert local.rotate() == 2
    new = envelope.rewrap(blob, BINDING, {"local": local}, local)
    assert envelope.parse_header(new) == EnvelopeHeader(1, "local", 2)
    f_old, f_new = envelope_fields(blob), envelope_fields(new)
    for name in ("commitment", "nonce", "ciphertext"):
        assert blob[f_old[name]] == new[f_new[name]]
    assert open_(new, local) == SECRET
    assert open_(blob, local) == SECRET  # the old one still opens until version 1 is retired
    local.retire(1)
    with pytest.raises(IntegrityCheckFailed):
        open_(blob, local)
    assert open_(new, local) == SECRET


def test_rewrap_to_another_provider(tmp_path: Path, local: LocalKeyProvider) -> None:
    other = make_local(tmp_path, "other")
    blob = seal(local)
    moved = envelope.rewrap(blob, BINDING, {"local": local}, other)
    assert envelope.parse_header(moved).provider_id == "other"
    assert envelope.open_envelope(moved, BINDING, {"other": other}) == SECRET
    with pytest.raises(KeyProviderUnavailable):
        envelope.open_envelope(moved, BINDING, {"local": local})


def test_migration_refuses_a_corrupt_row(tmp_path: Path, local: LocalKeyProvider) -> None:
    other = make_local(tmp_path, "other")
    blob = seal(local)
    bad = flip(blob, envelope_fields(blob)["commitment"].start)
    with pytest.raises(IntegrityCheckFailed):
        envelope.rewrap(bad, BINDING, {"local": local}, other)


@pytest.mark.parametrize(
    "wrapped",
    [WrappedDek("someone-else", 1, b"x"), WrappedDek("liar", 0, b"x"), WrappedDek("liar", 1, b"")],
)
def test_provider_returning_unusable_wrap_is_an_internal_error(wrapped: WrappedDek) -> None:
    class Liar:  # a provider double: the envelope, not the provider, is under test here
        provider_id = "liar"
        kind = "local"

        def wrap(self, dek: Secret, aad: bytes) -> WrappedDek:
            return wrapped

    with pytest.raises(InternalError):
        envelope.seal(SECRET, BINDING, Liar(), SystemRandom())  # type: ignore[arg-type]


# --- randomness -----------------------------------------------------------------------------------
def test_nonces_and_deks_unique_over_many_seals(local: LocalKeyProvider) -> None:
    nonces, commitments = set(), set()
    for _ in range(1000):
        blob = seal(local)
        f = envelope_fields(blob)
        nonces.add(blob[f["nonce"]])
        commitments.add(blob[f["commitment"]])  # same AAD: equal only if the DEK repeated
    assert len(nonces) == 1000
    assert len(commitments) == 1000


def test_seal_is_deterministic_under_injected_randomness(local: LocalKeyProvider) -> None:
    a = envelope.seal(SECRET, BINDING, local, CountingRandom(b"s"))
    b = envelope.seal(SECRET, BINDING, local, CountingRandom(b"s"))
    fa, fb = envelope_fields(a), envelope_fields(b)
    assert a[fa["commitment"]] == b[fb["commitment"]]
    assert a[fa["ciphertext"]] == b[fb["ciphertext"]]


# --- DEK cache ------------------------------------------------------------------------------------
def test_cache_hit_needs_no_provider(local: LocalKeyProvider, clock: FixedClock) -> None:
    cache = DekCache(max_entries=10, max_age_s=60, max_uses=100, clock=clock)
    blob = seal(local)
    assert envelope.open_envelope(blob, BINDING, {"local": local}, cache=cache) == SECRET
    assert len(cache) == 1
    assert envelope.open_envelope(blob, BINDING, {}, cache=cache) == SECRET  # no KMS call
    cache.flush()
    with pytest.raises(KeyProviderUnavailable):
        envelope.open_envelope(blob, BINDING, {}, cache=cache)


def test_cache_never_answers_for_another_binding(
    local: LocalKeyProvider, clock: FixedClock
) -> None:
    cache = DekCache(max_entries=10, max_age_s=60, max_uses=100, clock=clock)
    blob = seal(local)
    envelope.open_envelope(blob, BINDING, {"local": local}, cache=cache)
    moved = EnvelopeBinding("other-ws", BINDING.credential_id, BINDING.credential_version)
    with pytest.raises(KeyProviderUnavailable):  # a miss: it had to ask a provider
        envelope.open_envelope(blob, moved, {}, cache=cache)


def test_failed_open_is_not_cached(local: LocalKeyProvider, clock: FixedClock) -> None:
    cache = DekCache(max_entries=10, max_age_s=60, max_uses=100, clock=clock)
    blob = seal(local)
    with pytest.raises(IntegrityCheckFailed):
        envelope.open_envelope(flip(blob, len(blob) - 1), BINDING, {"local": local}, cache=cache)
    assert len(cache) == 0
