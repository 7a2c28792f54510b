"""Bitget, attacked: fund-moving scopes at onboarding, fund-moving endpoints at signing, a
withdraw-capable key at attestation, and a canary secret that must never leave the vault.

The vault runs for real (gRPC, SQLite, audit, DEBUG logging) against the loopback Bitget stub.
The passphrase is Bitget's plaintext ``ACCESS-PASSPHRASE`` header (the venue's protocol, warned
about at onboarding): it may appear in that header of a SignOrder answer and nowhere else.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2

from tests.security.test_c04_canary_signing_venues import Recorder
from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.errors import expect_error
from tests.venue_stubs.bitget_stub import BitgetKey, BitgetStub
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
from vault_server.brokers.venues import bitget
from vault_server.core.errors import EndpointNotAllowed
from vault_server.core.secret import Secret
from vault_server.observability.logging import configure_logging

B = trading_pb2
FUND_MOVING = sorted(
    {token for token, scopes in bitget.SCOPE_VOCABULARY.items() if scopes & FORBIDDEN_SCOPES}
    | {"WWOW", "w-t-o-w", "Wallet Withdrawal", "wallet transfer", "enableWithdrawals"}
)
FUND_PATHS = [
    ("POST", "/api/v2/spot/wallet/withdrawal"), ("POST", "/api/v2/spot/wallet/transfer"),
    ("POST", "/api/v2/spot/wallet/subaccount-transfer"), ("POST", "/api/v2/spot/wallet/cancel-withdrawal"),
    ("GET", "/api/v2/spot/wallet/deposit-address"), ("POST", "/api/v2/mix/account/set-margin"),
    ("POST", "/api/v2/user/create-virtual-subaccount-apikey"), ("POST", "/api/v2/convert/trade"),
    ("POST", "/api/v2/spot/trade/place-order/../../wallet/withdrawal"),
]  # fmt: skip


def _request(
    api_key: str, secret: str, phrase: str, cred_id: str, scopes: list[str]
) -> sf.cpb.CreateCredentialRequest:
    return sf.cpb.CreateCredentialRequest(
        parent=f"workspaces/{sf.WS}", credential_id=cred_id, display_name="bitget",
        broker=B.BROKER_BITGET, environment=B.ENVIRONMENT_LIVE,
        key_algorithm=B.KEY_ALGORITHM_HMAC_SHA256,
        material=credential_pb2.SecretMaterial(api_key=api_key, secret=secret, passphrase=phrase),
        scopes=scopes, policy=sf.policy(symbols=["BTCUSDT"]), reason="bitget security test",
    )  # fmt: skip


def test_fund_moving_endpoints_are_refused_at_signing() -> None:
    credential = VenueCredential(
        Venue.BITGET, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "k",
        secret=Secret(new_canary()), passphrase=Secret("pp"),
    )  # fmt: skip
    for method, path in FUND_PATHS:
        call = Call(method, path, json={"coin": "USDT", "address": "x", "size": "1"})
        with pytest.raises(EndpointNotAllowed):
            bitget.ADAPTER._sign(call, credential, SigningContext(now_ms=sf.now_ms()))


@pytest.mark.timeout(120)
def test_bitget_canary_scopes_and_quarantine(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", "json")
    canary, phrase = new_canary(), "Pp" + new_canary()[7:23]
    api_key = sf.new_api_key("bg_")
    rec = Recorder()
    home = tmp_path / "home"
    with (
        BitgetStub({api_key: BitgetKey(canary, phrase)}) as stub,
        sf.vault_beside(stub, home, "bitget") as vault,
    ):
        creds, signer = sf.credentials(vault), sf.signing(vault)
        onboarding, router = vault.md("onboarding"), vault.md("router")
        # 1. Every fund-moving spelling is refused at onboarding, and nothing is stored.
        for index, token in enumerate(FUND_MOVING):
            request = _request(api_key, canary, phrase, f"bad-{index}", ["stor", token])
            err = expect_error(creds.CreateCredential, request, metadata=onboarding, timeout=10)
            assert err.reason == "WITHDRAWAL_SCOPE_REJECTED", token
            rec.errors.append(f"{err.message}|{err.reasons}|{err.metadata}".encode())
        # 2. A trading key: sign, execute, refused orders, attest.
        request = _request(api_key, canary, phrase, "bg", ["stor", "stow"])
        cred = rec.call(creds.CreateCredential, request, metadata=onboarding, timeout=15)
        name = cred.credential.name
        assert any("ACCESS-PASSPHRASE" in w for w in cred.credential.warnings)
        rc = rec.call(
            signer.BeginRouting,
            sf.spb.BeginRoutingRequest(credential=name, strategy_id="s", reason="r"),
            metadata=router, timeout=10,
        ).routing_context.name  # fmt: skip
        good = sf.place("BTCUSDT", qty="0.01", price="30000")
        signed = rec.call(signer.SignOrder, sf.sign_request(rc, good), metadata=router,
                          timeout=10)  # fmt: skip
        sent = sf.send(signed.signed_request)
        assert (sent.status_code, sent.json()["code"]) == (200, "00000")
        done = rec.call(signer.ExecuteOrder, sf.execute_request(rc, sf.place(
            "BTCUSDT", qty="0.01", price="30000")), metadata=router, timeout=10)  # fmt: skip
        assert done.http_status == 200 and json.loads(done.body)["code"] == "00000"
        for order in (
            sf.place("BTCUSDT", kind="market", qty="1"),  # base-sized market buy
            sf.place("ETHUSDT", qty="1", price="1"),  # policy
            sf.place("BTCUSDT", qty="1", price="1", extras={"withdrawAddress": "x"}),
            sf.place("BTCUSDT", good.client_order_id, qty="0.01", price="30000"),  # duplicate
        ):
            for method, build in ((signer.SignOrder, sf.sign_request),
                                  (signer.ExecuteOrder, sf.execute_request)):  # fmt: skip
                assert rec.call(method, build(rc, order), metadata=router, timeout=10) is None
        attest = sf.cpb.AttestCredentialPermissionsRequest(name=name, reason="review")
        ok = rec.call(creds.AttestCredentialPermissions, attest, metadata=vault.md("security"),
                      timeout=15)  # fmt: skip
        assert ok.credential.state != credential_pb2.Credential.STATE_QUARANTINED
        # 3. The venue now says the key can withdraw: quarantined, and signing stops.
        stub.authorities[api_key] = ["stor", "stow", "wwow"]
        bad = rec.call(creds.AttestCredentialPermissions, attest, metadata=vault.md("security"),
                       timeout=15)  # fmt: skip
        assert bad.credential.state == credential_pb2.Credential.STATE_QUARANTINED
        refused = expect_error(signer.SignOrder, sf.sign_request(rc, sf.place(
            "BTCUSDT", qty="0.01", price="30000")), metadata=router, timeout=10)  # fmt: skip
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
        audit = "\n".join(r.raw for r in sf.audit_rows(vault)).encode()
        pages = repr(sf.pages(vault)).encode()
    out, err_text = capfd.readouterr()
    files = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and p.suffix != ".sock")
    surfaces = {"responses": rec.response_bytes(), "errors": b"\n".join(rec.errors),
                "audit": audit, "pages": pages, "logs": (out + err_text).encode(), "files": files}  # fmt: skip
    assert b'"level": "debug"' in surfaces["logs"]
    for label, blob in surfaces.items():
        assert find(canary, blob) == [], f"{label} leaked the canary"
    # The passphrase: only in the ACCESS-PASSPHRASE header of the detached request.
    headers = [h for h in signed.signed_request.headers if h.name == "ACCESS-PASSPHRASE"]
    assert [h.value for h in headers] == [phrase]
    for header in headers:
        header.value = ""
    rec.responses[2] = signed
    surfaces["responses"] = rec.response_bytes()
    for label, blob in surfaces.items():
        assert find(phrase, blob) == [], f"{label} leaked the passphrase"
    assert normalize_scope_token("WWOW") in bitget.SCOPE_VOCABULARY
