"""Wire format and associated data of the v1 envelope (see ``envelope`` for the layout).

Pure functions over bytes: no keys, no providers. ``decode`` checks every length before slicing
and rejects trailing bytes; every failure is ``IntegrityCheckFailed`` with a generic message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from vault_server.core.errors import IntegrityCheckFailed, InvalidArgument
from vault_server.crypto.aead import NONCE_SIZE, TAG_SIZE
from vault_server.crypto.providers.base import PROVIDER_ID_RE, WrappedDek

MAGIC: Final = b"PVE"
FORMAT_V1: Final = 1
COMMITMENT_SIZE: Final = 32
MAX_PROVIDER_ID: Final = 64
MAX_WRAPPED_DEK: Final = 4096
MAX_PLAINTEXT: Final = 64 * 1024
MAX_ID_BYTES: Final = 255
MAX_U32: Final = (1 << 32) - 1

_MALFORMED = "envelope is malformed"


@dataclass(frozen=True)
class EnvelopeBinding:
    """Where a ciphertext belongs; bound into both AADs.

    Raises:
        InvalidArgument: empty or over-long ids, or a version outside 1..2^32-1.
    """

    workspace_id: str
    credential_id: str
    credential_version: int

    def __post_init__(self) -> None:
        for field, value in (
            ("workspace_id", self.workspace_id),
            ("credential_id", self.credential_id),
        ):
            if not isinstance(value, str) or not value or len(value.encode()) > MAX_ID_BYTES:
                raise InvalidArgument(f"binding.{field}", f"must be 1-{MAX_ID_BYTES} bytes")
        version = self.credential_version
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_U32:
            raise InvalidArgument("binding.credential_version", "must be in 1..2^32-1")


@dataclass(frozen=True)
class EnvelopeHeader:
    """The public part of an envelope: which KEK to ask (census and migration read this)."""

    format_version: int
    provider_id: str
    kek_version: int


@dataclass(frozen=True)
class Envelope:
    header: EnvelopeHeader
    wrapped_dek: bytes
    commitment: bytes
    nonce: bytes
    ciphertext: bytes  # ct || tag

    @property
    def wrapped(self) -> WrappedDek:
        return WrappedDek(self.header.provider_id, self.header.kek_version, self.wrapped_dek)


def data_aad(binding: EnvelopeBinding) -> bytes:
    """Associated data of the data ciphertext and the key commitment."""
    return (
        MAGIC
        + bytes([FORMAT_V1])
        + b"data"
        + lp16(binding.workspace_id.encode())
        + lp16(binding.credential_id.encode())
        + struct.pack(">I", binding.credential_version)
    )


def wrap_aad(binding: EnvelopeBinding, provider_id: str) -> bytes:
    """Associated data of the wrapped DEK (the provider adds the KEK version)."""
    if not PROVIDER_ID_RE.fullmatch(provider_id):
        raise InvalidArgument("provider_id", "is not a valid key provider id")
    pid = provider_id.encode()
    return (
        MAGIC
        + bytes([FORMAT_V1])
        + b"wrap"
        + lp16(binding.workspace_id.encode())
        + lp16(binding.credential_id.encode())
        + struct.pack(">I", binding.credential_version)
        + bytes([len(pid)])
        + pid
    )


def lp16(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def encode(wrapped: WrappedDek, commitment: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    pid = wrapped.provider_id.encode("ascii")
    return b"".join(
        (
            MAGIC,
            bytes([FORMAT_V1, len(pid)]),
            pid,
            struct.pack(">IH", wrapped.kek_version, len(wrapped.blob)),
            wrapped.blob,
            commitment,
            nonce,
            struct.pack(">I", len(ciphertext)),
            ciphertext,
        )
    )


class _Reader:
    """Bounds-checked cursor: every read checks the remaining length first."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or len(self._data) - self._pos < n:
            raise IntegrityCheckFailed(_MALFORMED)
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def sized(self, prefix: int, low: int, high: int) -> bytes:
        n = self.uint(prefix)
        if not low <= n <= high:
            raise IntegrityCheckFailed(_MALFORMED)
        return self.take(n)

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise IntegrityCheckFailed(_MALFORMED)


def decode(blob: bytes) -> Envelope:
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise IntegrityCheckFailed(_MALFORMED)
    r = _Reader(bytes(blob))
    if r.take(len(MAGIC)) != MAGIC:
        raise IntegrityCheckFailed(_MALFORMED)
    if r.uint(1) != FORMAT_V1:
        raise IntegrityCheckFailed("envelope format version is not supported")
    raw_pid = r.sized(1, 1, MAX_PROVIDER_ID)
    try:
        provider_id = raw_pid.decode("ascii")
    except UnicodeDecodeError:
        raise IntegrityCheckFailed(_MALFORMED) from None
    if not PROVIDER_ID_RE.fullmatch(provider_id):
        raise IntegrityCheckFailed(_MALFORMED)
    kek_version = r.uint(4)
    if kek_version < 1:
        raise IntegrityCheckFailed(_MALFORMED)
    wrapped_dek = r.sized(2, 1, MAX_WRAPPED_DEK)
    commitment = r.take(COMMITMENT_SIZE)
    nonce = r.take(NONCE_SIZE)
    ciphertext = r.sized(4, TAG_SIZE, MAX_PLAINTEXT + TAG_SIZE)
    r.finish()
    header = EnvelopeHeader(FORMAT_V1, provider_id, kek_version)
    return Envelope(header, wrapped_dek, commitment, nonce, ciphertext)
