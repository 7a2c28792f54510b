"""Signing follows the credential's current version: a rotation signs with the old secret until
the new version is promoted, then with the new one (same routing context); a vault-generated key
signs nothing until the venue's API key is attached, then verifies with the public key the vault
returned (the private key never left the vault)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from tests.support import signing_flow as sf
from tests.support.signing_flow import B, Wired

Credential = sf.credential_pb2.Credential


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home") as w:
        yield w


def _hmac_ok(secret: str, url: str) -> bool:
    payload, _, signature = url.split("?", 1)[1].rpartition("&signature=")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def test_rotation_signs_with_the_promoted_version(wired: Wired) -> None:
    old = sf.binance_hmac()
    cred = wired.onboard(old, "bn")
    rc = sf.begin(wired.vault, cred.name).name
    new = sf.binance_hmac()
    wired.venues.register(new)
    sf.credentials(wired.vault).RotateCredential(
        sf.cpb.RotateCredentialRequest(name=cred.name, material=new.material, reason="rotate"),
        metadata=wired.vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    pending = sf.sign(wired.vault, rc, sf.place_for(old))
    assert pending.credential_version == 1  # the pending version is not used yet
    assert _hmac_ok(old.secret_text, pending.signed_request.url)
    sf.credentials(wired.vault).PromoteCredentialVersion(
        sf.cpb.PromoteCredentialVersionRequest(name=f"{cred.name}/versions/2", reason="promote"),
        metadata=wired.vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    promoted = sf.sign(wired.vault, rc, sf.place_for(new))
    assert promoted.credential_version == 2
    assert _hmac_ok(new.secret_text, promoted.signed_request.url)
    assert not _hmac_ok(old.secret_text, promoted.signed_request.url)
    assert sf.header_map(promoted.signed_request) == {"X-MBX-APIKEY": new.api_key}
    assert sf.send(promoted.signed_request).status_code == 200
    versions = [r.details.get("version") for r in sf.audit_rows(wired.vault)
                if r.action == "credential.use"]  # fmt: skip
    assert versions == ["1", "2"]


@pytest.mark.parametrize("algorithm", [B.KEY_ALGORITHM_ED25519, B.KEY_ALGORITHM_RSA])
def test_generated_key_signs_after_the_api_key_is_attached(wired: Wired, algorithm: int) -> None:
    generated = sf.credentials(wired.vault).GenerateCredentialKey(
        sf.cpb.GenerateCredentialKeyRequest(
            parent="workspaces/ws-a", credential_id="gen", broker=B.BROKER_BINANCE_SPOT,
            environment=B.ENVIRONMENT_LIVE, key_algorithm=algorithm,
            scopes=["enableSpotAndMarginTrading"], reason="new key",
        ),
        metadata=wired.vault.md("onboarding"), timeout=30,
    )  # fmt: skip
    assert generated.credential.state == Credential.STATE_PENDING
    assert "PRIVATE" not in generated.public_key
    public = serialization.load_pem_public_key(generated.public_key.encode())
    assert isinstance(public, ed25519.Ed25519PublicKey | rsa.RSAPublicKey)
    name = generated.credential.name
    err, _ = sf.refusal(
        wired.vault, "BeginRouting",
        sf.spb.BeginRoutingRequest(credential=name, strategy_id="s", reason="r"),
    )  # fmt: skip
    assert err.reason == "CREDENTIAL_NOT_ACTIVE"
    api_key = sf.new_api_key("gen")
    wired.venues.binance.keys[api_key] = public  # the public key uploaded at the venue
    attached = sf.credentials(wired.vault).AttachCredentialApiKey(
        sf.cpb.AttachCredentialApiKeyRequest(name=name, api_key=api_key, reason="venue key id"),
        metadata=wired.vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    assert attached.credential.state == Credential.STATE_ACTIVE
    rc = sf.begin(wired.vault, name).name
    signed = sf.sign(wired.vault, rc, sf.place("LTCBTC")).signed_request
    payload, _, signature = signed.url.split("?", 1)[1].rpartition("&signature=")
    raw = base64.b64decode(unquote(signature))
    if isinstance(public, ed25519.Ed25519PublicKey):
        public.verify(raw, payload.encode())
    else:
        public.verify(raw, payload.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert sf.send(signed).status_code == 200
