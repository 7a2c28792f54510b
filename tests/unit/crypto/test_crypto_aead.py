"""AesGcm: published known answers, fail-fast construction, tamper detection, round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.crypto.crypto_testkit import CountingRandom, ScriptedRandom, flip
from vault_server.core.clock import SystemRandom
from vault_server.core.errors import IntegrityCheckFailed, InternalError, InvalidArgument
from vault_server.core.secret import Secret
from vault_server.crypto.aead import NONCE_SIZE, TAG_SIZE, Aead, AesGcm

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "crypto_gcm_vectors.json").read_text()
)["vectors"]
KEY = Secret(bytes(range(32)))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_known_answer_encrypt(vector: dict[str, Any]) -> None:
    iv = bytes.fromhex(vector["iv"])
    aead = AesGcm(Secret(bytes.fromhex(vector["key"])), ScriptedRandom(iv))
    out = aead.encrypt(bytes.fromhex(vector["plaintext"]), bytes.fromhex(vector["aad"]))
    assert out == iv + bytes.fromhex(vector["ciphertext"]) + bytes.fromhex(vector["tag"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_known_answer_decrypt_and_tamper(vector: dict[str, Any]) -> None:
    aead = AesGcm(Secret(bytes.fromhex(vector["key"])), SystemRandom())
    sealed = bytes.fromhex(vector["iv"] + vector["ciphertext"] + vector["tag"])
    aad = bytes.fromhex(vector["aad"])
    assert aead.decrypt(sealed, aad) == bytes.fromhex(vector["plaintext"])
    for index in range(len(sealed)):  # every single bit-flip position class: nonce, ct, tag
        with pytest.raises(IntegrityCheckFailed):
            aead.decrypt(flip(sealed, index, 0x80), aad)


def test_is_an_aead() -> None:
    aead: Aead = AesGcm(KEY, SystemRandom())
    assert aead.decrypt(aead.encrypt(b"x", b"ad"), b"ad") == b"x"


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_key_size_checked_at_construction(size: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        AesGcm(Secret(b"k" * size), SystemRandom())
    assert info.value.field == "key"


def test_raw_bytes_key_refused() -> None:
    with pytest.raises(InternalError):
        AesGcm(bytes(32), SystemRandom())  # type: ignore[arg-type]


def test_short_nonce_from_random_refused() -> None:
    class Short:
        def bytes(self, n: int) -> bytes:
            return b"\x00" * (n - 1)

    with pytest.raises(InternalError):
        AesGcm(KEY, Short()).encrypt(b"x", b"")


def test_output_layout_nonce_ct_tag() -> None:
    nonce = b"\x07" * NONCE_SIZE
    out = AesGcm(KEY, ScriptedRandom(nonce)).encrypt(b"hello", b"")
    assert out[:NONCE_SIZE] == nonce
    assert len(out) == NONCE_SIZE + 5 + TAG_SIZE


@pytest.mark.parametrize(
    "part", ["nonce", "ciphertext", "tag", "aad", "truncated", "extended", "empty", "short"]
)
def test_tampering_fails_with_generic_integrity_error(part: str) -> None:
    aead = AesGcm(KEY, CountingRandom())
    sealed = aead.encrypt(b"secret api key", b"binding")
    aad = b"binding"
    if part == "nonce":
        sealed = flip(sealed, 0)
    elif part == "ciphertext":
        sealed = flip(sealed, NONCE_SIZE + 1)
    elif part == "tag":
        sealed = flip(sealed, len(sealed) - 1)
    elif part == "aad":
        aad = b"bindinG"
    elif part == "truncated":
        sealed = sealed[:-1]
    elif part == "extended":
        sealed = sealed + b"\x00"
    elif part == "empty":
        sealed = b""
    else:
        sealed = sealed[: NONCE_SIZE + TAG_SIZE - 1]
    with pytest.raises(IntegrityCheckFailed) as info:
        aead.decrypt(sealed, aad)
    assert info.value.message == "ciphertext failed authentication"
    assert info.value.__cause__ is None  # no library exception chained or shown
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_wrong_key_fails() -> None:
    sealed = AesGcm(KEY, SystemRandom()).encrypt(b"x", b"")
    with pytest.raises(IntegrityCheckFailed):
        AesGcm(Secret(bytes(32)), SystemRandom()).decrypt(sealed, b"")


def test_nonces_are_fresh_per_call() -> None:
    aead = AesGcm(KEY, SystemRandom())
    nonces = {aead.encrypt(b"same", b"same")[:NONCE_SIZE] for _ in range(2000)}
    assert len(nonces) == 2000


def test_repr_hides_key() -> None:
    assert repr(AesGcm(Secret(b"\xab" * 32), SystemRandom())) == "AesGcm(key=***)"


@given(plaintext=st.binary(max_size=2048), aad=st.binary(max_size=256))
def test_round_trip(plaintext: bytes, aad: bytes) -> None:
    aead = AesGcm(KEY, SystemRandom())
    assert aead.decrypt(aead.encrypt(plaintext, aad), aad) == plaintext


@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64), other=st.binary(max_size=64))
def test_aad_mismatch_always_fails(plaintext: bytes, aad: bytes, other: bytes) -> None:
    if other == aad:
        other = aad + b"\x00"
    aead = AesGcm(KEY, SystemRandom())
    with pytest.raises(IntegrityCheckFailed):
        aead.decrypt(aead.encrypt(plaintext, aad), other)
