"""Coinbase CDP API-key JWTs (reference §4.1), minted with PyJWT over ``cryptography`` keys.

Every request carries ``Authorization: Bearer <JWT>`` (a ``RedactedHeader``) and
``Content-Type: application/json``; ``expire_at_ms = (nbf + 120) * 1000``. **The JWT does not
bind the body or the query** (reference §4.3): a venue using this scheme for orders should offer
a strict, proxy-only variant.

::

    header = {"alg": "ES256" | "EdDSA", "kid": key_name, "nonce": <random hex>, "typ": "JWT"}
    claims = {"sub": key_name, "iss": "cdp", "nbf": now_s, "exp": now_s + 120,
              "uri": "<METHOD> api.coinbase.com<path>"}           # query string never included

Key material (``credential.private_key_pem``, or ``credential.secret`` when the key was imported
as Coinbase shows it):

* ``ECDSA_P256``: a PEM EC P-256 private key (SEC1 ``BEGIN EC PRIVATE KEY`` or PKCS#8) → ES256.
* ``ED25519``: Coinbase's base64 secret, either the 32-byte seed or 64 bytes ``seed || public``
  (the public half must match the seed), or a PKCS#8 PEM → EdDSA. Ed25519 is deterministic, so
  with a fixed ``SigningContext`` the token is byte-for-byte reproducible.

Nothing here echoes key material: load failures become ``InvalidArgument`` naming a field only.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    KeyAlgorithm,
    PreparedRequest,
    SigningContext,
    VenueCredential,
)
from vault_server.core.errors import InternalError, InvalidArgument
from vault_server.core.secret import Secret

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call

HOST = "api.coinbase.com"
LIFETIME_S = 120
_NONCE = re.compile(r"[0-9a-f]{16,128}")
SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def key_material(credential: VenueCredential) -> tuple[Secret, str]:
    """The Secret holding the private key and the field it came from (for error messages)."""
    if credential.private_key_pem is not None and credential.private_key_pem:
        return credential.private_key_pem, "credential.private_key_pem"
    if credential.secret is not None and credential.secret:
        return credential.secret, "credential.secret"
    raise InvalidArgument("credential.private_key_pem", "is required for Coinbase keys")


def load_signing_key(credential: VenueCredential) -> tuple[str, SigningKey]:
    """``(jwt_alg, private_key)`` for the credential's algorithm."""
    material, field = key_material(credential)
    raw = material.reveal()
    if credential.algorithm is KeyAlgorithm.ECDSA_P256:
        key = _pem(raw, field)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise InvalidArgument(field, "must be an EC P-256 private key for ES256")
        return "ES256", key
    if raw.lstrip().startswith(b"-----BEGIN"):
        key = _pem(raw, field)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise InvalidArgument(field, "must be an Ed25519 private key for EdDSA")
        return "EdDSA", key
    return "EdDSA", _ed25519_from_base64(raw, field)


def mint(
    key_name: str, alg: str, key: SigningKey, *, method: str, path: str, nbf: int, nonce: str
) -> str:
    """A compact JWS for ``METHOD api.coinbase.com<path>`` valid from ``nbf`` for 120 s."""
    if not _NONCE.fullmatch(nonce):
        raise InternalError("signing context carries no usable random nonce")
    claims: dict[str, Any] = {
        "sub": key_name, "iss": "cdp", "nbf": nbf, "exp": nbf + LIFETIME_S,
        "uri": f"{method.upper()} {HOST}{path.split('?', 1)[0]}",
    }  # fmt: skip
    header = {"kid": key_name, "nonce": nonce, "typ": "JWT"}
    try:
        return jwt.encode(claims, key, algorithm=alg, headers=header)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise InternalError("could not sign the Coinbase JWT") from None


def _pem(raw: bytes, field: str) -> Any:
    try:
        return serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidArgument(field, "must be an unencrypted PEM private key") from None


def _ed25519_from_base64(raw: bytes, field: str) -> ed25519.Ed25519PrivateKey:
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(field, "must be Coinbase's base64 Ed25519 secret") from None
    if len(decoded) not in (32, 64):
        raise InvalidArgument(field, "must decode to a 32-byte seed or 64-byte seed||public key")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(decoded[:32])
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if len(decoded) == 64 and decoded[32:] != public:
        raise InvalidArgument(field, "public half does not match the Ed25519 seed")
    return key


@dataclass(frozen=True)
class CdpJwt:
    """The scheme: one JWT per request, minted for ``METHOD host path`` at ``now``."""

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        nbf = sc.now_ms(ctx) // 1000
        alg, key = load_signing_key(credential)
        token = mint(
            credential.api_key, alg, key, method=call.method, path=call.path, nbf=nbf,
            nonce=ctx.random_hex,
        )  # fmt: skip
        url = base + call.path
        if call.params:
            url += "?" + sc.percent_encode(call.params)
        headers = (
            ("Authorization", hc.RedactedHeader(f"Bearer {token}")),
            ("Content-Type", "application/json"),
        )
        body = hc.compact_json(call.json) if call.json is not None else b""
        return PreparedRequest(
            call.method, url, headers, body, expire_at_ms=(nbf + LIFETIME_S) * 1000
        )
