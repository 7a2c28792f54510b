"""Hyperliquid, attacked: fund-moving scopes and master keys at onboarding, fund-moving actions
at signing, attestation that quarantines anything but an agent of the configured master, a
vault-generated agent key, and a canary key that must never leave the vault.

The vault runs for real (gRPC, database, audit, egress, DEBUG logs) against the loopback
Hyperliquid stub, which recovers the signer of every action and checks nonces and expiry.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from tests.support import signing_flow as sf
from tests.support.canary import find
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit
from tests.venue_stubs.hyperliquid_stub import HyperliquidStub
from vault_server.brokers.base import FORBIDDEN_SCOPES, normalize_scope_token
from vault_server.brokers.schemes.eip712_agent import address_of
from vault_server.brokers.venues.hyperliquid import SCOPE_VOCABULARY
from vault_server.core.secret import Secret
from vault_server.observability.logging import configure_logging

B = trading_pb2
MASTER = "0x" + "ab" * 20
FUND_MOVING = ["withdraw", "withdraw3", "master", "transfer", "usdSend", "spotSend",
               "usdClassTransfer", "subAccountTransfer", "vaultTransfer", "approveAgent",
               "sendAsset", "USD_SEND", "usd-class-transfer", "Withdraw 3"]  # fmt: skip


def test_the_list_covers_the_vocabulary() -> None:
    listed = {normalize_scope_token(token) for token in FUND_MOVING}
    fund_moving = {t for t, scopes in SCOPE_VOCABULARY.items() if scopes & FORBIDDEN_SCOPES}
    assert fund_moving and fund_moving <= listed


class _Key(sf.VenueKey):
    @property
    def venue(self) -> str:
        return "hyperliquid"


def _key(hex_key: str, scopes: tuple[str, ...] = ("trade",), master: str = MASTER) -> sf.VenueKey:
    agent = address_of(Secret(hex_key.encode())).lower()
    material = credential_pb2.SecretMaterial(api_key=agent, private_key=hex_key, account_id=master)
    return _Key(B.BROKER_HYPERLIQUID, B.ENVIRONMENT_LIVE, B.KEY_ALGORITHM_SECP256K1, material,
                scopes, secret_text=hex_key)  # fmt: skip


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[RunningVault, HyperliquidStub]]:
    with (
        HyperliquidStub({}) as stub,
        sf.vault_beside(stub, tmp_path / "home", "hyperliquid") as vault,
    ):
        yield vault, stub


def _order(cloid: str) -> trading_pb2.Order:
    return sf.place("4", cloid, qty="0.01", price="2000", extras={"asset": "4"})


@pytest.mark.timeout(90)
def test_onboarding_refuses_fund_moving_scopes_and_master_keys(
    wired: tuple[RunningVault, HyperliquidStub],
) -> None:
    vault, _ = wired
    hex_key = secrets.token_hex(32)
    for index, scope in enumerate(FUND_MOVING):
        request = sf.create_request(_key(hex_key, ("trade", scope)), f"c-{index}")
        err = expect_error(sf.credentials(vault).CreateCredential, request,
                           metadata=vault.md("onboarding"), timeout=10)  # fmt: skip
        assert (err.code, err.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT, "WITHDRAWAL_SCOPE_REJECTED"), scope  # fmt: skip
    own = address_of(Secret(hex_key.encode()))
    for bad in (_key(hex_key, master=own),  # the master's own key
                _key(hex_key, master=""),  # no master
                _Key(B.BROKER_HYPERLIQUID, B.ENVIRONMENT_LIVE, B.KEY_ALGORITHM_SECP256K1,
                     credential_pb2.SecretMaterial(api_key=MASTER, private_key=hex_key,
                                                   account_id=MASTER), ("trade",))):  # fmt: skip
        err = expect_error(sf.credentials(vault).CreateCredential, sf.create_request(bad, "c-x"),
                           metadata=vault.md("onboarding"), timeout=10)  # fmt: skip
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert hex_key not in err.message
    creates = [e for e in iter_audit(vault.app) if e.action == "credential.create"]
    assert creates and all(e.outcome == "denied" for e in creates)
    assert sf.onboard(vault, _key(hex_key), "c-ok").name.endswith("/credentials/c-ok")


@pytest.mark.timeout(90)
def test_attestation_quarantines_master_keys_and_foreign_agents(
    wired: tuple[RunningVault, HyperliquidStub],
) -> None:
    vault, stub = wired
    hex_key = secrets.token_hex(32)
    agent = address_of(Secret(hex_key.encode())).lower()
    cred = sf.onboard(vault, _key(hex_key), "c-att")
    stub.agents[agent] = MASTER
    assert sf.attest(vault, cred.name).credential.state == credential_pb2.Credential.STATE_ACTIVE
    for answer in ({"role": "user"}, {"role": "missing"},
                   {"role": "agent", "data": {"user": "0x" + "cd" * 20}}):  # fmt: skip
        stub.roles[agent] = answer
        got = sf.attest(vault, cred.name).credential.state
        assert got == credential_pb2.Credential.STATE_QUARANTINED, answer
        del stub.roles[agent]
        assert sf.attest(vault, cred.name).credential.state == (
            credential_pb2.Credential.STATE_ACTIVE)  # fmt: skip


@pytest.mark.timeout(90)
def test_generated_agent_key_only_its_address_leaves(
    wired: tuple[RunningVault, HyperliquidStub],
) -> None:
    vault, stub = wired
    made = sf.credentials(vault).GenerateCredentialKey(
        cpb.GenerateCredentialKeyRequest(
            parent=f"workspaces/{sf.WS}", credential_id="hl-gen", broker=B.BROKER_HYPERLIQUID,
            environment=B.ENVIRONMENT_LIVE, key_algorithm=B.KEY_ALGORITHM_SECP256K1,
            scopes=["trade"], reason="gen"),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    agent = made.public_key.lower()
    assert agent.startswith("0x") and len(agent) == 42 and len(made.SerializeToString()) < 2000
    sf.credentials(vault).AttachCredentialApiKey(
        cpb.AttachCredentialApiKeyRequest(name=made.credential.name, api_key=MASTER,
                                          reason="approved by the master"),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    stub.agents[agent] = MASTER
    rc = sf.begin(vault, made.credential.name).name
    done = sf.signing(vault).ExecuteOrder(sf.execute_request(rc, _order("0x" + "01" * 16)),
                                          metadata=vault.md("router"), timeout=10)  # fmt: skip
    assert done.http_status == 200 and json.loads(done.body)["status"] == "ok", done
    assert stub.requests[-1].status == 200


@pytest.mark.timeout(90)
def test_canary_never_leaves_the_vault(
    wired: tuple[RunningVault, HyperliquidStub], tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    configure_logging("DEBUG", "json")
    vault, stub = wired
    hex_key = secrets.token_hex(32)  # the key is the canary: searched in every encoding
    key = _key(hex_key)
    stub.agents[key.api_key] = MASTER
    router = vault.md("router")
    cred = sf.credentials(vault).CreateCredential(
        sf.create_request(key, "c-canary", policy=sf.policy(symbols=["4"])),
        metadata=vault.md("onboarding"), timeout=15,
    ).credential  # fmt: skip
    rc = sf.begin(vault, cred.name).name
    responses = [sf.sign(vault, rc, _order("0x" + "02" * 16)).SerializeToString()]
    done = sf.signing(vault).ExecuteOrder(sf.execute_request(rc, _order("0x" + "03" * 16)),
                                          metadata=router, timeout=10)  # fmt: skip
    assert done.http_status == 200 and json.loads(done.body)["status"] == "ok", done
    responses += [done.SerializeToString(), sf.attest(vault, cred.name).SerializeToString()]
    errors: list[bytes] = []
    for bad in (
        _order("0x" + "03" * 16),
        sf.place("5", "0x" + "04" * 16, extras={"asset": "5"}),
        sf.place("4", "0x" + "05" * 16, extras={"asset": "4", "destination": MASTER}),
        sf.place("4", "0x" + "06" * 16, extras={"asset": "4", "type": "withdraw3"}),
    ):
        for method, build in ((sf.signing(vault).SignOrder, sf.sign_request),
                              (sf.signing(vault).ExecuteOrder, sf.execute_request)):  # fmt: skip
            err = expect_error(method, build(rc, bad), metadata=router, timeout=10)
            errors.append(f"{err.message}|{err.reasons}|{err.metadata}".encode())
    audit = "\n".join(r.raw for r in sf.audit_rows(vault)).encode()
    out, err_text = capfd.readouterr()
    home = tmp_path / "home"
    files = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and p.suffix != ".sock")
    sent = b"".join(r.body for r in stub.requests)
    assert [r.status for r in stub.requests] == [200, 200]  # the order and the userRole query
    for label, blob in {"responses": b"\n".join(responses), "errors": b"\n".join(errors),
                        "audit": audit, "logs": (out + err_text).encode(), "files": files,
                        "sent": sent}.items():  # fmt: skip
        assert find(hex_key, blob) == [], f"{label} leaked the key"
        assert bytes.fromhex(hex_key) not in blob, f"{label} leaked the raw key"
