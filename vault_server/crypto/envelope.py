"""The versioned envelope that holds one credential version's secret at rest.

Format v1 (integers big-endian; every length is checked before slicing; nothing may trail)::

    "PVE"            3   magic
    format_version   1   0x01
    len(provider_id) 1   1..64, then provider_id (ASCII, ``PROVIDER_ID_RE``)
    kek_version      4   >= 1
    len(wrapped_dek) 2   1..4096, then the provider's wrapped DEK
    key_commitment  32   HMAC-SHA256(DEK, "pipvault-kc-v1" || data_aad)
    nonce           12   AES-GCM nonce
    len(ct || tag)   4   16..65536+16, then AES-256-GCM(DEK) ciphertext || tag

Associated data (``lp16`` = 2-byte length prefix, ``u32`` = 4-byte integer)::

    data_aad = "PVE" 0x01 "data" lp16(workspace_id) lp16(credential_id) u32(credential_version)
    wrap_aad = "PVE" 0x01 "wrap" lp16(workspace_id) lp16(credential_id) u32(credential_version)
               lp8(provider_id)

The data AAD deliberately leaves out the KEK reference, so a KEK rotation or a provider migration
**rewraps** only the DEK (transit ``rewrap`` never reveals it) and the data ciphertext and
commitment stay byte-for-byte the same. The KEK version is bound by the provider (a version is a
distinct key; the local provider also adds it to its AES-GCM AAD), the provider id by the wrap
AAD. A row copied to another workspace, credential or version fails both AADs. (Putting a digest
of the wrapped DEK into the data AAD would force re-encrypting the data on every rewrap; the
commitment tag below gives the same protection against DEK substitution.)

The wrapped DEK lives in a column anyone with database write access could swap, and AES-GCM is not
key-committing, so the commitment tag is checked in constant time *before* decrypting: a DEK
substituted from another envelope is refused without being used. The DEK is fresh and random for
every seal, so each DEK encrypts exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Final

from vault_server.core.clock import Random, SystemRandom
from vault_server.core.errors import (
    IntegrityCheckFailed,
    InternalError,
    InvalidArgument,
    KeyProviderUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.crypto._envelope_codec import (
    MAX_PLAINTEXT,
    MAX_U32,
    MAX_WRAPPED_DEK,
    EnvelopeBinding,
    EnvelopeHeader,
    data_aad,
    decode,
    encode,
    wrap_aad,
)
from vault_server.crypto.aead import NONCE_SIZE, AesGcm
from vault_server.crypto.dek_cache import CacheKey, DekCache
from vault_server.crypto.providers.base import KeyProvider, WrappedDek

__all__ = [
    "MAX_PLAINTEXT",
    "EnvelopeBinding",
    "EnvelopeHeader",
    "data_aad",
    "open_envelope",
    "parse_header",
    "rewrap",
    "seal",
    "wrap_aad",
]

DEK_SIZE: Final = 32
KC_LABEL: Final = b"pipvault-kc-v1"


def seal(
    plaintext: Secret, binding: EnvelopeBinding, provider: KeyProvider, random: Random
) -> bytes:
    """Encrypt ``plaintext`` under a fresh DEK wrapped by ``provider``'s active KEK.

    Raises:
        InvalidArgument: plaintext longer than 64 KiB.
        KeyProviderUnavailable: the provider could not wrap.
    """
    if len(plaintext) > MAX_PLAINTEXT:
        raise InvalidArgument("plaintext", f"must be at most {MAX_PLAINTEXT} bytes")
    raw_dek = random.bytes(DEK_SIZE)
    if len(raw_dek) != DEK_SIZE:
        raise InternalError("random source returned a short key")
    dek = Secret(raw_dek)
    try:
        aad = data_aad(binding)
        sealed = AesGcm(dek, random).encrypt(plaintext.reveal(), aad)
        wrapped = _checked(provider.wrap(dek, wrap_aad(binding, provider.provider_id)), provider)
        return encode(wrapped, _commit(dek, aad), sealed[:NONCE_SIZE], sealed[NONCE_SIZE:])
    finally:
        dek.wipe()  # a DEK encrypts exactly once: nothing needs it after this


def open_envelope(
    blob: bytes,
    binding: EnvelopeBinding,
    providers: Mapping[str, KeyProvider],
    *,
    cache: DekCache | None = None,
) -> Secret:
    """Decrypt an envelope sealed for ``binding``.

    Args:
        blob: the envelope.
        binding: where the caller found it; must equal the binding it was sealed for.
        providers: every configured provider by id (the envelope names the one to ask).
        cache: optional cache of unwrapped DEKs (consulted before the provider).

    Raises:
        IntegrityCheckFailed: malformed, tampered, or moved to another binding.
        KeyProviderUnavailable: the envelope's provider is not configured or cannot answer.
    """
    found, cache_dek = _opener(blob, binding, providers, cache)
    plaintext = found.open()
    cache_dek()  # only once the data decrypted: a tampered envelope leaves nothing cached
    return plaintext


class Opener:
    """An envelope whose data key is unwrapped and whose key commitment is verified: each
    ``open`` is one AES-GCM decryption (which still authenticates the ciphertext and binding)."""

    __slots__ = ("_aad", "_aead", "_sealed")

    def __init__(self, aead: AesGcm, sealed: bytes, aad: bytes) -> None:
        self._aead = aead
        self._sealed = sealed
        self._aad = aad

    def open(self) -> Secret:
        return Secret(self._aead.decrypt(self._sealed, self._aad))


def opener(blob: bytes, binding: EnvelopeBinding, providers: Mapping[str, KeyProvider]) -> Opener:
    """Unwrap the envelope's data key and verify its commitment (raises as ``open_envelope``)."""
    return _opener(blob, binding, providers, None)[0]


def _opener(
    blob: bytes,
    binding: EnvelopeBinding,
    providers: Mapping[str, KeyProvider],
    cache: DekCache | None,
) -> tuple[Opener, Callable[[], None]]:
    env = decode(blob)
    aad = data_aad(binding)
    w_aad = wrap_aad(binding, env.header.provider_id)
    key = CacheKey.for_wrapped(
        env.header.provider_id,
        env.header.kek_version,
        w_aad,
        env.wrapped_dek,
        workspace_id=binding.workspace_id,
        credential_id=binding.credential_id,
    )
    dek = cache.get(key) if cache is not None else None
    from_cache = dek is not None
    if dek is None:
        dek = _provider(providers, env.header.provider_id).unwrap(env.wrapped, w_aad)
    _verify_commitment(dek, aad, env.commitment)
    found = Opener(AesGcm(dek, SystemRandom()), env.nonce + env.ciphertext, aad)

    def cache_dek() -> None:
        if cache is not None and not from_cache:
            cache.put(key, dek)

    return found, cache_dek


def rewrap(
    blob: bytes,
    binding: EnvelopeBinding,
    providers: Mapping[str, KeyProvider],
    target: KeyProvider,
) -> bytes:
    """Re-protect the envelope's DEK under ``target``'s active KEK; the data stays untouched.

    Same provider: the provider's own ``rewrap`` (transit never reveals the DEK). Another
    provider (migration): unwrap, check the commitment (so a corrupt row is never carried
    forward), wrap under ``target``. The credential secret itself is never decrypted.

    Raises:
        IntegrityCheckFailed: as for ``open_envelope``.
        KeyProviderUnavailable: the source or target provider cannot answer.
    """
    env = decode(blob)
    source_id = env.header.provider_id
    if source_id == target.provider_id:
        new = target.rewrap(env.wrapped, wrap_aad(binding, source_id))
    else:
        dek = _provider(providers, source_id).unwrap(env.wrapped, wrap_aad(binding, source_id))
        try:
            _verify_commitment(dek, data_aad(binding), env.commitment)
            new = target.wrap(dek, wrap_aad(binding, target.provider_id))
        finally:
            dek.wipe()  # unwrapped here only to be re-wrapped (never cached)
    return encode(_checked(new, target), env.commitment, env.nonce, env.ciphertext)


def parse_header(blob: bytes) -> EnvelopeHeader:
    """Validate the whole envelope's framing and return its header (no key is touched).

    Raises:
        IntegrityCheckFailed: not a well-formed envelope.
    """
    return decode(blob).header


# --- internals ------------------------------------------------------------------------------------
def _commit(dek: Secret, aad: bytes) -> bytes:
    return hmac.new(dek.reveal(), KC_LABEL + aad, hashlib.sha256).digest()


def _verify_commitment(dek: Secret, aad: bytes, commitment: bytes) -> None:
    if len(dek) != DEK_SIZE or not hmac.compare_digest(_commit(dek, aad), commitment):
        raise IntegrityCheckFailed("envelope key commitment does not match")


def _provider(providers: Mapping[str, KeyProvider], provider_id: str) -> KeyProvider:
    provider = providers.get(provider_id)
    if provider is None:
        raise KeyProviderUnavailable(
            "the envelope's key provider is not configured", metadata={"providerId": provider_id}
        )
    return provider


def _checked(wrapped: WrappedDek, provider: KeyProvider) -> WrappedDek:
    """A provider must return what the format can hold; anything else is a bug, not tampering."""
    if (
        wrapped.provider_id != provider.provider_id
        or not 1 <= wrapped.kek_version <= MAX_U32
        or not 1 <= len(wrapped.blob) <= MAX_WRAPPED_DEK
    ):
        raise InternalError("key provider returned an unusable wrapped key")
    return wrapped
