"""Regression (issue 12): a refused credential write (withdraw/transfer scope, unknown scope,
single tier not acknowledged, unsupported key generation, bad rotation, stale etag, a missing
workspace) used to leave no audit event. Each is now audited with actor, peer, reason, outcome
and refusal reason, and no event holds the secret the refused request carried."""

from __future__ import annotations

import secrets
from typing import Any

import grpc
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from tests.support.custody import binance_request, creds, make_workspace, onboard
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit

CANARY = f"CANARY{secrets.token_hex(16)}"


def _refuse(vault: RunningVault, rpc: Any, request: Any, reason: str) -> Any:
    before = len(list(iter_audit(vault.app)))
    err = expect_error(rpc, request, metadata=vault.md("onboarding"), timeout=10)
    assert err.reason == reason, err
    new = list(iter_audit(vault.app))[before:]
    assert len(new) == 1, [(e.action, e.outcome) for e in new]
    event = new[0]
    assert (event.actor_type, event.actor_id, event.outcome) == ("user", "onboarding", "denied")
    assert event.peer.startswith("127.0.0.1") and event.reason == request.reason
    assert event.error_reason == reason and event.details["refusal"]
    assert event.method.endswith(type(request).__name__.removesuffix("Request"))
    return event


def test_every_refused_credential_write_is_audited(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    make_workspace(vault, "ws-a")
    stub = creds(vault)
    key = "K" * 24

    withdraw = binance_request("ws-a", "c1", key, CANARY, reason="withdraw",
                               scopes=["enableReading", "enableWithdrawals"])  # fmt: skip
    event = _refuse(vault, stub.CreateCredential, withdraw, "WITHDRAWAL_SCOPE_REJECTED")
    assert (event.action, event.workspace) == ("credential.create", "workspaces/ws-a")
    assert event.credential == "workspaces/ws-a/credentials/c1"
    assert event.details["scopeIndex"] == "1"

    unknown = binance_request("ws-a", "c1", key, CANARY, reason="typo", scopes=["enableTrding"])
    assert _refuse(vault, stub.CreateCredential, unknown, "UNKNOWN_SCOPE").action == (
        "credential.create"
    )

    oanda = cpb.CreateCredentialRequest(
        parent="workspaces/ws-a", credential_id="oa", broker=trading_pb2.BROKER_OANDA,
        environment=trading_pb2.ENVIRONMENT_PAPER, key_algorithm=trading_pb2.KEY_ALGORITHM_BEARER,
        material=credential_pb2.SecretMaterial(secret=CANARY, account_id="101-004-1234567-001"),
        scopes=["trade"], reason="single tier",
    )  # fmt: skip
    event = _refuse(vault, stub.CreateCredential, oanda, "SINGLE_TIER_NOT_ACKNOWLEDGED")
    assert event.details["broker"] == "oanda"

    generate = cpb.GenerateCredentialKeyRequest(
        parent="workspaces/ws-a", credential_id="k2", broker=trading_pb2.BROKER_KRAKEN_SPOT,
        environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=trading_pb2.KEY_ALGORITHM_ED25519,
        scopes=["query-funds"], reason="generate",
    )  # fmt: skip
    event = _refuse(vault, stub.GenerateCredentialKey, generate, "INVALID_FIELD")
    assert (event.action, event.details["field"]) == ("credential.generate_key", "key_algorithm")

    # A workspace that does not exist: the system chain, never a workspace's.
    missing = binance_request("ws-zz", "c1", key, CANARY, reason="nowhere")
    event = _refuse(vault, stub.CreateCredential, missing, "RESOURCE_NOT_FOUND")
    assert (event.chain_id, event.workspace) == ("system", "")
    assert event.details["target"] == "workspaces/ws-zz/credentials/c1"

    cred = onboard(vault, "ws-a", "c9", key, secrets.token_hex(32))
    rotate = cpb.RotateCredentialRequest(
        name=cred.name, reason="rotate",
        material=credential_pb2.SecretMaterial(api_key="bad key with spaces\n", secret=CANARY),
    )  # fmt: skip
    event = _refuse(vault, stub.RotateCredential, rotate, "INVALID_FIELD")
    assert (event.action, event.credential) == ("credential.rotate", cred.name)

    policy = cpb.UpdateCredentialPolicyRequest(
        name=cred.name, etag="0" * 16, reason="policy",
        policy=credential_pb2.OrderPolicy(allowed_symbols=["LTCBTC"]),
    )  # fmt: skip
    event = _refuse(vault, stub.UpdateCredentialPolicy, policy, "ETAG_MISMATCH")
    assert event.action == "credential.policy_update"

    # Nothing refused was stored, and the secret of no refused request is in any event.
    listed = stub.ListCredentials(
        cpb.ListCredentialsRequest(parent="workspaces/ws-a"), metadata=vault.md(), timeout=10
    )
    assert [c.name for c in listed.credentials] == [cred.name]
    for row in iter_audit(vault.app):
        dump = repr({c.name: getattr(row, c.name) for c in row.__table__.columns})
        assert CANARY not in dump


def test_refusals_before_admission_are_audited_once(vault: RunningVault) -> None:
    """A role refusal is ``auth.denied``; a grant refusal is the write's action (issue 19 §6.4),
    with ``details.denial``; either way one event, not a second write-refusal event."""
    make_workspace(vault, "ws-b")
    for who, code, expected in (
        ("security-a", grpc.StatusCode.NOT_FOUND, "credential.create"),
        ("auditor", grpc.StatusCode.PERMISSION_DENIED, "auth.denied"),
    ):
        before = len(list(iter_audit(vault.app)))
        err = expect_error(
            creds(vault).CreateCredential,
            binance_request("ws-b", "c1", "K" * 24, CANARY, reason="not mine"),
            metadata=vault.md(who),
            timeout=10,
        )
        assert err.code == code
        new = list(iter_audit(vault.app))[before:]
        assert [(e.action, e.outcome) for e in new] == [(expected, "denied")]
        assert new[0].details.get("denial", "auth.denied") == "auth.denied"
