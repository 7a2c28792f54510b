"""Deribit, attacked: fund-moving scopes at onboarding, fund-moving methods at signing, a
withdraw-capable key at attestation, and a canary secret that must never leave the vault.

The vault runs for real (gRPC, database, audit, egress, DEBUG logs) against the loopback Deribit
stub, which verifies every ``deri-hmac-sha256`` signature, refuses timestamps older than 60 s and
reused nonces, and answers the ``public/auth`` client_signature permission query with a
configurable ``scope``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb

from tests.security.test_c04_canary_signing_venues import Recorder
from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.errors import expect_error
from tests.support.vault import iter_audit
from tests.venue_stubs.deribit_stub import DeribitStub
from vault_server.brokers.base import (
    FORBIDDEN_SCOPES,
    Environment,
    KeyAlgorithm,
    SigningContext,
    Venue,
    VenueCredential,
    normalize_scope_token,
)
from vault_server.brokers.spec import Call
from vault_server.brokers.venues import deribit
from vault_server.core.errors import EndpointNotAllowed
from vault_server.core.secret import Secret
from vault_server.observability.logging import configure_logging

B = trading_pb2
Attestation = credential_pb2.Attestation
SYMBOL = "BTC-PERPETUAL"
_VOCAB_FUND_MOVING = sorted(
    t for t, scopes in deribit.SCOPE_VOCABULARY.items() if scopes & FORBIDDEN_SCOPES
)
# Every fund-moving token of the vocabulary, as Deribit spells it and disguised.
FUND_MOVING = [
    *_VOCAB_FUND_MOVING,
    *(t.upper() for t in _VOCAB_FUND_MOVING),
    *(f" {t[0].upper()}\u200b{t[1:]}" for t in _VOCAB_FUND_MOVING),
    "wallet:read_write ", "Wallet:Read_Write", "wallet:readwrite", "withdrawal", "transfers",
]  # fmt: skip
FUND_PATHS = [
    "withdraw", "cancel_withdrawal", "submit_transfer_to_subaccount", "submit_transfer_to_user",
    "submit_transfer_between_subaccounts", "cancel_transfer_by_id", "create_deposit_address",
    "get_current_deposit_address", "add_to_address_book", "list_api_keys", "create_api_key",
    "change_scope_in_api_key", "create_subaccount", "execute_block_trade", "set_email_for_subaccount",
    "WITHDRAW", "with%64raw", "buy/../withdraw", "buy%2F..%2Fwithdraw", "Submit_Transfer_To_User",
]  # fmt: skip


def test_the_list_covers_the_vocabulary() -> None:
    listed = {normalize_scope_token(token) for token in FUND_MOVING}
    named = ("wallet:read_write", "account:read_write", "block_trade:read_write")
    assert {normalize_scope_token(t) for t in (*named, *_VOCAB_FUND_MOVING)} <= listed


def test_fund_moving_methods_are_refused_at_signing() -> None:
    credential = VenueCredential(Venue.DERIBIT, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "k",
                                 secret=Secret(new_canary()))  # fmt: skip
    ctx = SigningContext(now_ms=sf.now_ms(), random_hex="ab" * 8)
    for path in FUND_PATHS:
        for method in ("GET", "POST"):
            with pytest.raises(EndpointNotAllowed) as err:
                deribit.ADAPTER.check_endpoint(method, f"/api/v2/private/{path}?amount=1")
            assert "amount" not in str(err.value.metadata)
        call = Call("GET", f"/api/v2/private/{path}", (("currency", "BTC"), ("amount", "1")))
        with pytest.raises(EndpointNotAllowed):
            deribit.ADAPTER._sign(call, credential, ctx)
    assert not any(w in p for _, p in deribit.ALLOWED for w in ("withdraw", "transfer", "api_key"))


def _request(
    api_key: str, secret: str, cred_id: str, scopes: list[str]
) -> cpb.CreateCredentialRequest:
    return cpb.CreateCredentialRequest(
        parent=f"workspaces/{sf.WS}", credential_id=cred_id, display_name="deribit",
        broker=B.BROKER_DERIBIT, environment=B.ENVIRONMENT_LIVE,
        key_algorithm=B.KEY_ALGORITHM_HMAC_SHA256,
        material=credential_pb2.SecretMaterial(api_key=api_key, secret=secret),
        scopes=scopes, policy=sf.policy(symbols=[SYMBOL]), reason="deribit security test",
    )  # fmt: skip


@pytest.mark.timeout(120)
def test_deribit_canary_scopes_and_quarantine(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", "json")
    canary = new_canary()
    api_key = sf.new_api_key("dr")
    rec = Recorder()
    home = tmp_path / "home"
    with DeribitStub({api_key: canary}) as stub, sf.vault_beside(stub, home, "deribit") as vault:
        creds, signer = sf.credentials(vault), sf.signing(vault)
        onboarding, router, security = vault.md("onboarding"), vault.md("router"), vault.md(
            "security")  # fmt: skip
        # 1. Every fund-moving spelling is refused at onboarding, and nothing is stored.
        for index, token in enumerate(FUND_MOVING):
            request = _request(api_key, canary, f"bad-{index}", ["trade:read_write", token])
            err = expect_error(creds.CreateCredential, request, metadata=onboarding, timeout=10)
            assert (err.code, err.reason) == (
                grpc.StatusCode.INVALID_ARGUMENT, "WITHDRAWAL_SCOPE_REJECTED"), repr(token)  # fmt: skip
            rec.errors.append(f"{err.message}|{err.reasons}|{err.metadata}".encode())
        creates = [e for e in iter_audit(vault.app) if e.action == "credential.create"]
        assert [e.outcome for e in creates] == ["denied"] * len(FUND_MOVING)
        # 2. A trading key: sign, send, execute; replays, stale and refused orders.
        request = _request(api_key, canary, "dr", ["account:read", "trade:read_write"])
        name = rec.call(creds.CreateCredential, request, metadata=onboarding,
                        timeout=15).credential.name  # fmt: skip
        rc = rec.call(
            signer.BeginRouting,
            spb.BeginRoutingRequest(credential=name, strategy_id="s", reason="r"),
            metadata=router, timeout=10,
        ).routing_context.name  # fmt: skip
        good = sf.place(SYMBOL, qty="10", price="30000")
        signed = rec.call(signer.SignOrder, sf.sign_request(rc, good), metadata=router,
                          timeout=10)  # fmt: skip
        sent = sf.send(signed.signed_request)
        assert sent.status_code == 200 and sent.json()["result"]["order"]["contracts"] == 10
        replay = sf.send(signed.signed_request).json()["error"]
        assert (replay["code"], replay["data"]["reason"]) == (13004, "reused nonce")
        late = sf.signing(vault).SignOrder(sf.sign_request(rc, sf.place(
            SYMBOL, qty="1", price="30000")), metadata=router, timeout=10)  # fmt: skip
        rec.responses.append(late)
        stub.clock = lambda: int(time.time() * 1000) + 61_000  # the request is now 61 s old
        assert sf.send(late.signed_request).json()["error"]["data"]["reason"] == ("stale timestamp")
        stub.clock = lambda: int(time.time() * 1000)
        done = rec.call(signer.ExecuteOrder, sf.execute_request(rc, sf.place(
            SYMBOL, qty="10", price="30000")), metadata=router, timeout=10)  # fmt: skip
        assert done.http_status == 200 and "result" in json.loads(done.body)
        for order in (
            sf.place("ETH-PERPETUAL", qty="1", price="1"),  # policy
            sf.place(SYMBOL, qty="1", price="1", extras={"withdrawAddress": "x"}),
            sf.place(SYMBOL, qty="1", price="1", extras={"amount": "1"}),  # units
            sf.place(SYMBOL, good.client_order_id, qty="10", price="30000"),  # duplicate
        ):
            for method, build in ((signer.SignOrder, sf.sign_request),
                                  (signer.ExecuteOrder, sf.execute_request)):  # fmt: skip
                assert rec.call(method, build(rc, order), metadata=router, timeout=10) is None
        # 3. Attestation: clean, then an answer naming no access scope (fails closed), then
        #    a key that can withdraw: quarantined, and signing stops.
        attest = cpb.AttestCredentialPermissionsRequest(name=name, reason="review")
        ok = rec.call(creds.AttestCredentialPermissions, attest, metadata=security, timeout=15)
        assert ok.credential.state != credential_pb2.Credential.STATE_QUARANTINED
        assert ok.attestation.result == Attestation.RESULT_CLEAN
        stub.scopes[api_key] = "connection mainaccount"
        unknown = rec.call(creds.AttestCredentialPermissions, attest, metadata=security,
                           timeout=15)  # fmt: skip
        assert unknown.attestation.result == Attestation.RESULT_FAILED
        stub.scopes[api_key] = "connection mainaccount trade:read_write wallet:read_write"
        bad = rec.call(creds.AttestCredentialPermissions, attest, metadata=security,
                       timeout=15)  # fmt: skip
        assert bad.credential.state == credential_pb2.Credential.STATE_QUARANTINED
        assert bad.attestation.result == Attestation.RESULT_EXCESSIVE
        refused = expect_error(signer.SignOrder, sf.sign_request(rc, sf.place(
            SYMBOL, qty="10", price="30000")), metadata=router, timeout=10)  # fmt: skip
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
        rec.errors.append(f"{refused.message}|{refused.reasons}|{refused.metadata}".encode())
        audit = "\n".join(r.raw for r in sf.audit_rows(vault)).encode()
        pages = repr(sf.pages(vault)).encode()
    assert stub.refused == []  # no fund-moving method ever reached the venue
    assert all("client_secret" not in r.query for r in stub.requests)
    out, err_text = capfd.readouterr()
    files = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and p.suffix != ".sock")
    surfaces = {"responses": rec.response_bytes(), "errors": b"\n".join(rec.errors),
                "audit": audit, "pages": pages, "logs": (out + err_text).encode(), "files": files}  # fmt: skip
    assert b'"level": "debug"' in surfaces["logs"]
    for label, blob in surfaces.items():
        assert find(canary, blob) == [], f"{label} leaked the canary"
