"""Secret material: validated per key algorithm, serialised for sealing, masked for display.

The material for one credential version travels as ``Secret`` from the RPC edge to the envelope
and back to the venue module; it is parsed from JSON only inside ``open_material``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from vault_server.brokers.base import Environment, KeyAlgorithm, Venue, VenueCredential
from vault_server.brokers.schemes import eip712_agent
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

MAX_API_KEY = 256
MAX_SECRET = 4096
MAX_PRIVATE_KEY = 16_384
MAX_ACCOUNT_ID = 128
MAX_LOGIN = 256
# Session venues whose login names a server (TradeLocker server, DXtrade domain, Match-Trader
# broker id, MetaApi region) and venues whose key id is separate from the login (IG API key).
_NEEDS_SERVER = frozenset({Venue.TRADELOCKER, Venue.DXTRADE, Venue.MATCH_TRADER, Venue.METAAPI})
_SESSION_API_KEY = frozenset({Venue.IG})
_ACCOUNT_REQUIRED = frozenset({Venue.OANDA, Venue.IG, Venue.TRADELOCKER, Venue.DXTRADE,
                               Venue.MATCH_TRADER, Venue.METAAPI})  # fmt: skip


@dataclass(frozen=True)
class MaterialInput:
    """Material as received (secrets already wrapped by the edge)."""

    api_key: str
    secret: Secret
    passphrase: Secret
    private_key: Secret
    account_id: str
    username: str = ""  # login identity of a password session (IG, TradeLocker, ...)
    server: str = ""  # TradeLocker server, DXtrade domain, Match-Trader broker id, MetaApi region
    # OAuth consent (cTrader): exchanged at onboarding, never stored (single use, ~1 minute).
    authorization_code: Secret = field(default_factory=lambda: Secret(b""))
    redirect_uri: str = ""

    @property
    def hint_source(self) -> str:
        """What the masked hint is made from: the key id, else the login, else the account."""
        return self.api_key or self.username or self.account_id


def _printable(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidArgument(field, f"at most {limit} characters")
    if any(not (32 <= ord(c) < 127) for c in value):
        raise InvalidArgument(field, "must be printable ASCII")


def _require(field: str, present: bool) -> None:
    if not present:
        raise InvalidArgument(field, "is required for this key algorithm")


def _check_private_key(algorithm: KeyAlgorithm, pem: Secret, venue: Venue) -> None:
    raw = pem.reveal()
    if len(raw) > MAX_PRIVATE_KEY:
        raise InvalidArgument("material.private_key", "too long")
    if (
        algorithm is KeyAlgorithm.ED25519
        and venue is Venue.COINBASE_ADVANCED
        and b"PRIVATE KEY" not in raw
    ):
        try:
            seed = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("material.private_key", "must be base64 Ed25519 key") from None
        if len(seed) not in (32, 64):
            raise InvalidArgument("material.private_key", "must hold a 32 or 64 byte Ed25519 key")
        return
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        # The library's message can echo key bytes; never pass it on.
        raise InvalidArgument(
            "material.private_key", "is not an unencrypted PEM private key"
        ) from None
    expected = {
        KeyAlgorithm.ED25519: ed25519.Ed25519PrivateKey,
        KeyAlgorithm.RSA: rsa.RSAPrivateKey,
        KeyAlgorithm.ECDSA_P256: ec.EllipticCurvePrivateKey,
    }[algorithm]
    if not isinstance(key, expected):
        raise InvalidArgument("material.private_key", f"is not a {algorithm.value} key")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise InvalidArgument("material.private_key", "RSA keys must be at least 2048 bits")
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise InvalidArgument("material.private_key", "EC keys must be P-256")


def _check_agent_key(m: MaterialInput, *, api_key_required: bool) -> None:
    """Hyperliquid: an agent key (hex), its address as ``api_key``, the master as account_id.

    A master account's key cannot be told from an agent's by the key alone; it is refused when
    its address is the declared master, and attestation (``userRole``) checks the rest.
    """
    _require("material.private_key", bool(m.private_key))
    agent = eip712_agent.address_of(m.private_key).lower()  # refuses anything but 32-byte hex
    _require("material.account_id", bool(m.account_id))
    master = m.account_id.lower()
    if (
        len(master) != 42
        or not master.startswith("0x")
        or not all(c in "0123456789abcdef" for c in master[2:])
    ):
        raise InvalidArgument("material.account_id", "must be the master account's 0x address")
    if agent == master:
        raise InvalidArgument(
            "material.private_key", "is the master account's own key: use an agent (API wallet) key"
        )
    if (api_key_required or m.api_key) and m.api_key.lower() != agent:
        raise InvalidArgument("material.api_key", "must be the agent key's address")


def validate_material(
    venue: Venue, algorithm: KeyAlgorithm, m: MaterialInput, *, api_key_required: bool = True
) -> None:
    """Check that the material fits the algorithm (and venue), without echoing any of it."""
    _printable("material.api_key", m.api_key, MAX_API_KEY)
    _printable("material.account_id", m.account_id, MAX_ACCOUNT_ID)
    _printable("material.username", m.username, MAX_LOGIN)
    _printable("material.server", m.server, MAX_LOGIN)
    if len(m.secret) > MAX_SECRET or len(m.passphrase) > MAX_SECRET:
        raise InvalidArgument("material.secret", f"at most {MAX_SECRET} bytes")
    if algorithm is KeyAlgorithm.OAUTH_CONSENT:
        _require("material.authorization_code", bool(m.authorization_code))
        _require("material.redirect_uri", bool(m.redirect_uri))
        _require("material.account_id", bool(m.account_id))
        _printable("material.redirect_uri", m.redirect_uri, MAX_LOGIN)
        if len(m.authorization_code) > MAX_SECRET:
            raise InvalidArgument("material.authorization_code", f"at most {MAX_SECRET} bytes")
        if not m.redirect_uri.startswith("https://") and not m.redirect_uri.startswith(
            "http://127.0.0.1"
        ):
            raise InvalidArgument("material.redirect_uri", "must be https (or loopback)")
        return
    if algorithm is KeyAlgorithm.SESSION_LOGIN:
        _require("material.username", bool(m.username))
        if venue in _SESSION_API_KEY:
            _require("material.api_key", bool(m.api_key))
    elif api_key_required and algorithm is not KeyAlgorithm.BEARER:  # a bearer token is all
        _require("material.api_key", bool(m.api_key))
    if venue in _NEEDS_SERVER:
        _require("material.server", bool(m.server))
    if algorithm in (
        KeyAlgorithm.HMAC_SHA256,
        KeyAlgorithm.STATIC_HEADERS,
        KeyAlgorithm.SESSION_LOGIN,
    ):
        _require("material.secret", bool(m.secret))
    elif algorithm is KeyAlgorithm.HMAC_SHA512:
        _require("material.secret", bool(m.secret))
        try:
            base64.b64decode(m.secret.reveal(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("material.secret", "must be base64 for this venue") from None
    elif algorithm is KeyAlgorithm.BEARER:
        _require("material.secret", bool(m.secret))
    elif algorithm is KeyAlgorithm.SECP256K1:
        _check_agent_key(m, api_key_required=api_key_required)
    else:
        _require("material.private_key", bool(m.private_key))
        _check_private_key(algorithm, m.private_key, venue)
    if venue in (Venue.OKX, Venue.BITGET, Venue.KUCOIN):
        _require("material.passphrase", bool(m.passphrase))
    if venue in _ACCOUNT_REQUIRED:
        _require("material.account_id", bool(m.account_id))


def seal_input(m: MaterialInput) -> Secret:
    """The plaintext that goes into the envelope."""
    doc = {
        "api_key": m.api_key,
        "secret": m.secret.reveal_text(),
        "passphrase": m.passphrase.reveal_text(),
        "private_key": m.private_key.reveal_text(),
        "account_id": m.account_id,
        "username": m.username,
        "server": m.server,
    }
    return Secret(json.dumps(doc, separators=(",", ":")).encode())


def for_exchange(m: MaterialInput, venue: Venue, env: Environment) -> VenueCredential:
    """The consent as the venue's OAuth protocol exchanges it (never sealed)."""
    return VenueCredential(
        venue=venue, environment=env, algorithm=KeyAlgorithm.OAUTH_CONSENT, api_key="",
        account_id=m.account_id, authorization_code=m.authorization_code,
        redirect_uri=m.redirect_uri,
    )  # fmt: skip


def open_material(
    plaintext: Secret, venue: Venue, environment: Environment, algorithm: KeyAlgorithm
) -> VenueCredential:
    doc = json.loads(plaintext.reveal())

    def opt(key: str) -> Secret | None:
        return Secret(doc[key]) if doc.get(key) else None

    return VenueCredential(
        venue=venue,
        environment=environment,
        algorithm=algorithm,
        api_key=doc.get("api_key", ""),
        secret=opt("secret"),
        passphrase=opt("passphrase"),
        private_key_pem=opt("private_key"),
        account_id=doc.get("account_id") or None,
        username=doc.get("username") or None,
        server=doc.get("server") or None,
    )


def with_api_key(plaintext: Secret, api_key: str, *, agent_key: bool = False) -> Secret:
    """The material with its venue key id; for an agent key (Hyperliquid) ``api_key`` is the
    master address that approved it, and the key id is the agent's own address."""
    doc = json.loads(plaintext.reveal())
    if agent_key:
        agent = eip712_agent.address_of(Secret(doc["private_key"].encode()))
        check = MaterialInput(agent, Secret(b""), Secret(b""), Secret(doc["private_key"].encode()),
                              api_key)  # fmt: skip
        _check_agent_key(check, api_key_required=True)
        doc["api_key"], doc["account_id"] = agent.lower(), api_key.lower()
        return Secret(json.dumps(doc, separators=(",", ":")).encode())
    doc["api_key"] = api_key
    return Secret(json.dumps(doc, separators=(",", ":")).encode())


def api_key_hint(api_key: str) -> str:
    """``vmPU…Eh8A``: enough to recognise a key, never enough to use it."""
    if not api_key:
        return ""
    if len(api_key) <= 12:
        return api_key[:2] + "…"
    return f"{api_key[:4]}…{api_key[-4:]}"
