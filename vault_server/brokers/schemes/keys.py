"""Key primitives every signing scheme is built from: HMAC, RSA PKCS#1 v1.5, Ed25519.

Pure (no clock, no I/O, no randomness). Secrets are revealed only here, at the point of use, and
no error built here carries secret material: third-party exceptions are replaced (``from None``)
by errors that name a field only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from vault_server.brokers.base import KeyAlgorithm, VenueCredential
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

Encoding = Literal["hex", "base64"]


def require_secret(secret: Secret | None, field: str) -> Secret:
    if secret is None or not secret:
        raise InvalidArgument(field, "is required for this key algorithm")
    return secret


def hmac_sha256_hex(secret: Secret, message: bytes) -> str:
    return hmac.digest(secret.reveal(), message, "sha256").hex()  # one-shot (OpenSSL)


def hmac_sha256_base64(secret: Secret, message: bytes) -> str:
    return base64.b64encode(hmac.digest(secret.reveal(), message, "sha256")).decode("ascii")


def hmac_sha512_hex(secret: Secret, message: bytes) -> str:
    """Gate v4: HMAC-SHA512 keyed with the secret as given (ASCII), result lowercase hex."""
    return hmac.digest(secret.reveal(), message, "sha512").hex()


def hmac_sha512_base64_key(secret_b64: Secret, message: bytes) -> str:
    """Kraken: HMAC-SHA512 keyed with the base64-decoded secret, result base64."""
    try:
        key = base64.b64decode(secret_b64.reveal(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("credential.secret", "must be the venue's base64 secret") from None
    return base64.b64encode(hmac.new(key, message, hashlib.sha512).digest()).decode("ascii")


def _private_key(pem: Secret) -> Any:
    try:
        return serialization.load_pem_private_key(pem.reveal(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidArgument(
            "credential.private_key_pem", "must be an unencrypted PKCS#8 PEM private key"
        ) from None


def rsa_pkcs1_sha256(pem: Secret, message: bytes) -> bytes:
    key = _private_key(pem)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise InvalidArgument("credential.private_key_pem", "must be an RSA key of 2048+ bits")
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def ed25519_sign(pem: Secret, message: bytes) -> bytes:
    key = _private_key(pem)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidArgument("credential.private_key_pem", "must be an Ed25519 private key")
    return key.sign(message)


def sign(credential: VenueCredential, message: bytes, hmac_encoding: Encoding) -> str:
    """The credential's signature over ``message``.

    HMAC-SHA256 keys (``credential.secret``) sign to ``hmac_encoding``; Ed25519 and RSA keys
    (``credential.private_key_pem``) always to base64, the form every venue takes them in.
    """
    if credential.algorithm is KeyAlgorithm.HMAC_SHA256:
        secret = require_secret(credential.secret, "credential.secret")
        if hmac_encoding == "hex":
            return hmac_sha256_hex(secret, message)
        return hmac_sha256_base64(secret, message)
    pem = require_secret(credential.private_key_pem, "credential.private_key_pem")
    if credential.algorithm is KeyAlgorithm.ED25519:
        raw = ed25519_sign(pem, message)
    else:
        raw = rsa_pkcs1_sha256(pem, message)
    return base64.b64encode(raw).decode("ascii")
