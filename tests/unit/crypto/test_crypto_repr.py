"""No secret value ever shows in the repr/str of a crypto object."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from vault_server.core.clock import FixedClock, SystemRandom
from vault_server.core.secret import Secret
from vault_server.crypto import envelope
from vault_server.crypto.aead import AesGcm
from vault_server.crypto.dek_cache import CacheKey, DekCache
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.crypto.providers import new_key_provider
from vault_server.crypto.providers.local import LocalKeyProvider

TOKEN = "s.TOPSECRETTOKENVALUE0123456789"
SECRET_ID = "4f3e2d1c-secret-id-value"
PLAINTEXT = b"broker-api-secret-VALUE-0123456789"


def secrets_of(path: Path) -> list[str]:
    keys = [v["key"] for v in json.loads(path.read_text())["versions"] if v["key"]]
    return (
        keys + [base64.b64decode(k).hex() for k in keys] + [repr(base64.b64decode(k)) for k in keys]
    )


def test_no_secret_in_any_repr(local: LocalKeyProvider, tmp_path: Path, clock: FixedClock) -> None:
    binding = EnvelopeBinding("ws", "cred", 1)
    dek = Secret(b"\x9c" * 32)
    cache = DekCache(max_entries=4, max_age_s=60, max_uses=10, clock=clock)
    cache.put(CacheKey.for_wrapped("local", 1, b"a", b"b"), dek)
    blob = envelope.seal(Secret(PLAINTEXT), binding, local, SystemRandom())
    opened = envelope.open_envelope(blob, binding, {"local": local}, cache=cache)
    token_provider = new_key_provider(
        "vault-transit://transit/keys/k", "t1", address="https://openbao:8200", token=TOKEN
    )
    approle_provider = new_key_provider(
        "vault-transit://transit/keys/k",
        "t2",
        address="https://openbao:8200",
        role_id="role",
        secret_id=SECRET_ID,
    )
    objects = [
        local,
        local.status(),
        local.wrap(dek, b"aad"),
        AesGcm(dek, SystemRandom()),
        cache,
        cache.stats(),
        envelope.parse_header(blob),
        opened,
        token_provider,
        approle_provider,
        token_provider._auth,
        approle_provider._auth,
    ]
    text = "\n".join(repr(o) + str(o) for o in objects)
    forbidden = [
        TOKEN,
        SECRET_ID,
        PLAINTEXT.decode(),
        dek.reveal().hex(),
        repr(dek.reveal()),
        *secrets_of(tmp_path / "local-keyring.json"),
    ]
    for value in forbidden:
        assert value not in text
    assert "Secret(***)" in text
