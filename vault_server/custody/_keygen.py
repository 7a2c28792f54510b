"""Vault-generated key pairs for venues that accept an uploaded public key.

The private key is born inside the vault and sealed at once; only the public key leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from eth_account import Account

from vault_server.brokers.base import KeyAlgorithm
from vault_server.core.errors import KeyGenerationNotSupported
from vault_server.core.secret import Secret

RSA_BITS = 2048


@dataclass(frozen=True)
class GeneratedKey:
    private_pem: Secret
    public_pem: str


def generate_key(algorithm: KeyAlgorithm) -> GeneratedKey:
    """A new key pair; for secp256k1 (Hyperliquid agents) ``public_pem`` is the address."""
    if algorithm is KeyAlgorithm.SECP256K1:
        account = Account.create()
        private_hex = Secret(account.key.hex().removeprefix("0x").encode("ascii"))
        return GeneratedKey(private_hex, str(account.address))
    if algorithm is KeyAlgorithm.ED25519:
        key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey = ed25519.Ed25519PrivateKey.generate()
    elif algorithm is KeyAlgorithm.RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise KeyGenerationNotSupported(
            "only Ed25519, RSA and secp256k1 keys can be generated",
            metadata={"keyAlgorithm": algorithm.value},
        )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return GeneratedKey(Secret(private), public.decode())
