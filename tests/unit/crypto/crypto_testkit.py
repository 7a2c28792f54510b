"""Helpers shared by the crypto unit tests (deterministic randomness, envelope field offsets)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from vault_server.crypto.providers import init_local_keyring, new_key_provider
from vault_server.crypto.providers.local import LocalKeyProvider


class CountingRandom:
    """Deterministic, never-repeating bytes (SHA-256 over a counter): reproducible tests."""

    def __init__(self, seed: bytes = b"pipvault-test") -> None:
        self._seed = seed
        self._n = 0

    def bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self._n += 1
            out += hashlib.sha256(self._seed + struct.pack(">Q", self._n)).digest()
        return out[:n]


class ScriptedRandom:
    """Returns the given byte strings in order (pins nonces and keys for known answers)."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def bytes(self, n: int) -> bytes:
        chunk = self._chunks.pop(0)
        assert len(chunk) == n, f"scripted {len(chunk)} bytes, asked for {n}"
        return chunk


def make_local(directory: Path, provider_id: str = "local") -> LocalKeyProvider:
    """A real local provider on a fresh 0600 keyring in ``directory``."""
    path = directory / f"{provider_id}-keyring.json"
    init_local_keyring(path)
    provider = new_key_provider(f"local://{path}", provider_id)
    assert isinstance(provider, LocalKeyProvider)
    return provider


def envelope_fields(blob: bytes) -> dict[str, slice]:
    """Byte ranges of each v1 field, computed from the documented layout (independently of the
    codec under test)."""
    out: dict[str, slice] = {}
    pos = 0

    def field(name: str, size: int) -> int:
        nonlocal pos
        out[name] = slice(pos, pos + size)
        pos += size
        return int.from_bytes(blob[out[name]], "big")

    field("magic", 3)
    field("format_version", 1)
    pid_len = field("provider_id_len", 1)
    field("provider_id", pid_len)
    field("kek_version", 4)
    wrapped_len = field("wrapped_dek_len", 2)
    field("wrapped_dek", wrapped_len)
    field("commitment", 32)
    field("nonce", 12)
    ct_len = field("ciphertext_len", 4)
    field("ciphertext", ct_len)
    assert pos == len(blob), "layout does not cover the envelope exactly"
    return out


def replace_field(blob: bytes, fields: dict[str, slice], name: str, value: bytes) -> bytes:
    s = fields[name]
    return blob[: s.start] + value + blob[s.stop :]


def flip(data: bytes, index: int = 0, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]
