"""Authenticated encryption with associated data: the one symmetric primitive of the vault.

``Aead`` is the whole interface (after Tink's): bytes in, bytes out, one error on failure.
``AesGcm`` is AES-256-GCM with a fresh random 96-bit nonce per call (NIST SP 800-38D §8.2.2,
RBG-based IV construction) and a 128-bit tag; the output is ``nonce || ciphertext || tag``.

Randomness is injected so known-answer tests can pin the nonce. Callers must keep the number of
encryptions under one key far below 2^32 (the envelope uses a fresh key per seal, the key
providers count wraps per KEK version).
"""

from __future__ import annotations

from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault_server.core.clock import Random
from vault_server.core.errors import IntegrityCheckFailed, InternalError, InvalidArgument
from vault_server.core.secret import Secret

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
#: Far below the GCM limit (2^39 - 256 bits); the vault never encrypts anything this large.
MAX_PLAINTEXT: Final = 1 << 24

_AUTH_FAILED = "ciphertext failed authentication"


class Aead(Protocol):
    """Authenticated encryption with associated data."""

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``, binding ``associated_data``.

        Args:
            plaintext: the bytes to protect.
            associated_data: authenticated but not encrypted; decrypt must present the same.

        Returns:
            The ciphertext (self-contained: nonce and tag included).
        """
        ...

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Authenticate and decrypt ``ciphertext``.

        Raises:
            IntegrityCheckFailed: wrong key, wrong associated data, or modified ciphertext.
        """
        ...


class AesGcm:
    """AES-256-GCM, random 96-bit nonce, output ``nonce || ct || tag``.

    Args:
        key: exactly 32 bytes (checked here, so a bad key fails at construction).
        random: the nonce source (``SystemRandom`` in production).

    Raises:
        InvalidArgument: the key is not 32 bytes.
    """

    __slots__ = ("_aesgcm", "_random")

    def __init__(self, key: Secret, random: Random) -> None:
        if not isinstance(key, Secret):
            raise InternalError("AesGcm key must be held in a Secret")
        if len(key) != KEY_SIZE:
            raise InvalidArgument("key", f"AES-256-GCM needs a {KEY_SIZE}-byte key")
        self._aesgcm = AESGCM(key.reveal())
        self._random = random

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT:
            raise InvalidArgument("plaintext", f"longer than {MAX_PLAINTEXT} bytes")
        nonce = self._random.bytes(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise InternalError("random source returned a short nonce")
        return nonce + self._aesgcm.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        if not NONCE_SIZE + TAG_SIZE <= len(ciphertext) <= NONCE_SIZE + MAX_PLAINTEXT + TAG_SIZE:
            raise IntegrityCheckFailed(_AUTH_FAILED)
        nonce, body = ciphertext[:NONCE_SIZE], ciphertext[NONCE_SIZE:]
        try:
            return self._aesgcm.decrypt(nonce, body, associated_data)
        except InvalidTag:
            raise IntegrityCheckFailed(_AUTH_FAILED) from None

    def __repr__(self) -> str:
        return "AesGcm(key=***)"
