"""Custody lifecycle on SQLite and PostgreSQL: onboarding, rotation, promotion, grace-period
destruction and revocation, each with its audit event."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import grpc
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from sqlalchemy import select

from tests.support.custody import binance_request, creds, make_workspace, onboard
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, inspect_db, iter_audit
from vault_server.storage.models import CredentialVersion

CV = credential_pb2.CredentialVersion


def _key() -> str:
    return "K" + secrets.token_hex(24)


def _versions(vault: RunningVault) -> list[Any]:
    """Raw rows, read past the ORM tenant guard (and RLS, via the admin on PostgreSQL)."""
    table = CredentialVersion.__table__
    db = inspect_db(vault.app)
    with db.engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.version)).all())


def _actions(vault: RunningVault) -> list[str]:
    """Successful credential events (refused writes are audited too, as ``denied``)."""
    return [
        e.action
        for e in iter_audit(vault.app)
        if e.action.startswith("credential.") and e.outcome == "success"
    ]


def test_onboard_rotate_promote_destroy_revoke(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    make_workspace(vault, "ws-a")
    key1 = _key()
    cred = onboard(vault, "ws-a", "main", key1, secrets.token_hex(32))
    assert cred.state == credential_pb2.Credential.STATE_ACTIVE and cred.current_version == 1
    assert cred.api_key_hint == f"{key1[:4]}…{key1[-4:]}"
    assert list(cred.scopes) == [trading_pb2.SCOPE_READ, trading_pb2.SCOPE_TRADE]
    assert cred.versions[0].kek_reference.startswith("local:")
    stub = creds(vault)
    md = vault.md("onboarding")

    key2 = _key()
    rotated = stub.RotateCredential(
        cpb.RotateCredentialRequest(
            name=cred.name,
            material=credential_pb2.SecretMaterial(api_key=key2, secret=secrets.token_hex(32)),
            etag=cred.etag,
            reason="quarterly rotation",
        ),
        metadata=md,
        timeout=10,
    )
    assert rotated.version.version == 2 and rotated.version.state == CV.STATE_PENDING
    assert rotated.credential.current_version == 1

    stale = expect_error(
        stub.PromoteCredentialVersion,
        cpb.PromoteCredentialVersionRequest(name=rotated.version.name, etag=cred.etag, reason="r"),
        metadata=md, timeout=10,
    )  # fmt: skip
    assert stale.reason == "ETAG_MISMATCH"
    promoted = stub.PromoteCredentialVersion(
        cpb.PromoteCredentialVersionRequest(name=rotated.version.name, reason="cut over"),
        metadata=md, timeout=10,
    ).credential  # fmt: skip
    states = {v.version: v.state for v in promoted.versions}
    assert states == {2: CV.STATE_CURRENT, 1: CV.STATE_PREVIOUS}
    assert promoted.current_version == 2 and promoted.api_key_hint.startswith(key2[:4])
    again = expect_error(
        stub.PromoteCredentialVersion,
        cpb.PromoteCredentialVersionRequest(name=rotated.version.name, reason="again"),
        metadata=md, timeout=10,
    )  # fmt: skip
    assert again.reason == "VERSION_NOT_PENDING"

    # Grace period over: the PREVIOUS ciphertext is destroyed (NULL), not just flagged.
    assert all(v.envelope for v in _versions(vault))
    vault.app.clock = vault.app.clock  # real clock; move the deadline instead
    destroy_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    vault.app.lifecycle._clock = _Later(destroy_after)
    assert vault.app.lifecycle.destroy_expired() == 1
    rows = {v.version: v for v in _versions(vault)}
    assert rows[1].envelope is None and rows[1].state == "destroyed" and rows[1].destroy_time
    assert rows[2].envelope is not None

    revoked = stub.RevokeCredential(
        cpb.RevokeCredentialRequest(name=cred.name, reason="key leaked"),
        metadata=vault.md("security"), timeout=10,
    ).credential  # fmt: skip
    assert revoked.state == credential_pb2.Credential.STATE_REVOKED and revoked.revoke_time.seconds
    assert all(v.envelope is None for v in _versions(vault))
    denied = expect_error(
        stub.RevokeCredential, cpb.RevokeCredentialRequest(name=cred.name, reason="x"),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED  # revoke is a security-role action

    assert _actions(vault) == [
        "credential.create",
        "credential.rotate",
        "credential.promote",
        "credential.destroy",
        "credential.revoke",
    ]
    events = [
        e
        for e in iter_audit(vault.app)
        if e.action.startswith("credential.") and e.outcome == "success"
    ]
    refused = [(e.action, e.error_reason) for e in iter_audit(vault.app) if e.outcome == "denied"]
    assert refused == [
        ("credential.promote", "ETAG_MISMATCH"),
        ("credential.promote", "VERSION_NOT_PENDING"),
        ("auth.denied", "ROLE_REQUIRED"),
    ]
    assert events[0].actor_id == "onboarding" and events[0].reason == "onboarding test"
    assert events[3].actor_type == "system"
    assert events[4].actor_id == "security" and events[4].reason == "key leaked"


class _Later:
    def __init__(self, when: dt.datetime) -> None:
        self._when = when

    def now(self) -> dt.datetime:
        return self._when

    def monotonic(self) -> float:
        return 0.0


def test_single_tier_needs_acknowledgement_and_says_so(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    base = {
        "parent": "workspaces/ws-a", "credential_id": "oanda", "broker": trading_pb2.BROKER_OANDA,
        "environment": trading_pb2.ENVIRONMENT_PAPER, "key_algorithm": trading_pb2.KEY_ALGORITHM_BEARER,
        "material": credential_pb2.SecretMaterial(secret=secrets.token_hex(32), account_id="101-004-1234567-001"),
        "scopes": ["trade"], "reason": "onboard",
    }  # fmt: skip
    err = expect_error(
        creds(vault).CreateCredential,
        cpb.CreateCredentialRequest(**base),
        metadata=vault.md("onboarding"),
        timeout=10,
    )
    assert (err.code, err.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SINGLE_TIER_NOT_ACKNOWLEDGED",
    )
    assert _versions(vault) == []
    ok = creds(vault).CreateCredential(
        cpb.CreateCredentialRequest(**base, acknowledge_single_permission_tier=True),
        metadata=vault.md("onboarding"), timeout=10,
    ).credential  # fmt: skip
    assert ok.single_permission_tier and ok.proxy_only
    assert any("single permission tier" in w for w in ok.warnings)
    got = creds(vault).GetCredential(
        cpb.GetCredentialRequest(name=ok.name), metadata=vault.md("auditor"), timeout=10
    )
    assert got.credential.single_permission_tier and got.credential.warnings == ok.warnings
    listed = creds(vault).ListCredentials(
        cpb.ListCredentialsRequest(parent="workspaces/ws-a"),
        metadata=vault.md("auditor"),
        timeout=10,
    )
    assert [c.single_permission_tier for c in listed.credentials] == [True]


def test_generated_key_is_pending_until_the_api_key_is_attached(vault: RunningVault) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    make_workspace(vault, "ws-a")
    made = creds(vault).GenerateCredentialKey(
        cpb.GenerateCredentialKeyRequest(
            parent="workspaces/ws-a", credential_id="gen", broker=trading_pb2.BROKER_BINANCE_SPOT,
            environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=trading_pb2.KEY_ALGORITHM_ED25519,
            scopes=["enableSpotAndMarginTrading"], reason="generate",
        ),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    public = serialization.load_pem_public_key(made.public_key.encode())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    assert "PRIVATE" not in made.public_key
    assert made.credential.state == credential_pb2.Credential.STATE_PENDING
    attached = creds(vault).AttachCredentialApiKey(
        cpb.AttachCredentialApiKeyRequest(name=made.credential.name, api_key=_key(), reason="venue key id"),
        metadata=vault.md("onboarding"), timeout=10,
    ).credential  # fmt: skip
    assert (
        attached.state == credential_pb2.Credential.STATE_ACTIVE and attached.current_version == 1
    )
    rsa = expect_error(
        creds(vault).GenerateCredentialKey,
        cpb.GenerateCredentialKeyRequest(
            parent="workspaces/ws-a", credential_id="k2", broker=trading_pb2.BROKER_KRAKEN_SPOT,
            environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=trading_pb2.KEY_ALGORITHM_ED25519,
            scopes=["query-funds"], reason="generate",
        ),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    assert rsa.reason in ("KEY_GENERATION_NOT_SUPPORTED", "INVALID_FIELD")
    assert list(_actions(vault)) == ["credential.generate_key", "credential.attach_api_key"]


def test_bad_material_is_refused_without_echo_and_nothing_is_stored(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    canary = f"CANARY{secrets.token_hex(8)}"
    cases = [
        binance_request("ws-a", "c1", "", canary),  # missing api key
        binance_request("ws-a", "c2", "k" * 300, canary),  # api key too long
        binance_request("ws-a", "c3", _key(), canary, key_algorithm=trading_pb2.KEY_ALGORITHM_RSA),
        binance_request("ws-a", "c4", _key(), canary, broker=trading_pb2.BROKER_UNSPECIFIED),
        binance_request("ws-a", "c5", _key(), canary, scopes=[]),
        binance_request("ws-a", "c6", _key(), canary, scopes=["enableReading", "launchRockets"]),
    ]
    for request in cases:
        err = expect_error(
            creds(vault).CreateCredential, request, metadata=vault.md("onboarding"), timeout=10
        )
        assert err.code in (grpc.StatusCode.INVALID_ARGUMENT,), err
        assert canary not in err.message and canary not in str(err.metadata)
    assert _versions(vault) == []
