"""Kraken Futures, attacked: fund-moving scopes at onboarding, fund-moving endpoints at signing,
and a canary secret that must never leave the vault.

The vault runs for real (gRPC, database, audit, egress, DEBUG logs) against the loopback Kraken
Futures stub, which verifies every ``Authent`` and nonce as Kraken does.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2

from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit
from tests.venue_stubs.kraken_futures_stub import KrakenFuturesStub
from vault_server.brokers.base import FORBIDDEN_SCOPES, normalize_scope_token
from vault_server.brokers.venues.kraken_futures import ADAPTER, ALLOWED, SCOPE_VOCABULARY
from vault_server.core.errors import EndpointNotAllowed
from vault_server.observability.logging import configure_logging

B = trading_pb2
# Every fund-moving spelling in the vocabulary, as the venue and people write them.
FUND_MOVING = ["withdraw", "withdrawal", "withdrawal-full-access", "Withdrawal API Full Access",
               "transfer", "WITHDRAWAL_FULL_ACCESS", "Withdrawal API: Full Access"]  # fmt: skip


def test_the_list_covers_the_vocabulary() -> None:
    listed = {normalize_scope_token(token) for token in FUND_MOVING}
    fund_moving = {t for t, scopes in SCOPE_VOCABULARY.items() if scopes & FORBIDDEN_SCOPES}
    assert fund_moving and fund_moving <= listed


class _FuturesKey(sf.VenueKey):
    @property
    def venue(self) -> str:  # not in the shared flow's table of venue names
        return "kraken_futures"


def _key(secret: str, scopes: tuple[str, ...] = ("General API Full Access",)) -> sf.VenueKey:
    return _FuturesKey(
        B.BROKER_KRAKEN_FUTURES, B.ENVIRONMENT_LIVE, B.KEY_ALGORITHM_HMAC_SHA512,
        credential_pb2.SecretMaterial(api_key=sf.new_api_key("kf"), secret=secret), scopes,
        secret_text=secret,
    )  # fmt: skip


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[RunningVault, KrakenFuturesStub]]:
    with (
        KrakenFuturesStub({}) as stub,
        sf.vault_beside(stub, tmp_path / "home", "kraken_futures") as vault,
    ):
        yield vault, stub


@pytest.mark.timeout(60)
def test_fund_moving_scopes_are_refused_and_nothing_is_stored(
    wired: tuple[RunningVault, KrakenFuturesStub],
) -> None:
    vault, _ = wired
    secret = base64.b64encode(b"k" * 64).decode()
    for index, scope in enumerate(FUND_MOVING):
        request = sf.create_request(_key(secret, ("General API Full Access", scope)), f"c-{index}")
        err = expect_error(sf.credentials(vault).CreateCredential, request,
                           metadata=vault.md("onboarding"), timeout=10)  # fmt: skip
        assert (err.code, err.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT, "WITHDRAWAL_SCOPE_REJECTED"
        ), scope  # fmt: skip
    creates = [e for e in iter_audit(vault.app) if e.action == "credential.create"]
    assert [e.outcome for e in creates] == ["denied"] * len(FUND_MOVING)
    # The same key with trading scopes only is accepted: the scope was the reason.
    assert sf.onboard(vault, _key(secret), "c-ok").name.endswith("/credentials/c-ok")


@pytest.mark.parametrize(
    "path",
    ["withdrawal", "transfer", "transfer/subaccount", "transfers", "Withdrawal", "with%64rawal",
     "sendorder/../withdrawal", "sendorder%2F..%2Fwithdrawal", "batchorder"],
)  # fmt: skip
def test_fund_moving_endpoints_are_refused_at_signing(path: str) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        with pytest.raises(EndpointNotAllowed) as err:
            ADAPTER.check_endpoint(method, f"/derivatives/api/v3/{path}?amount=1")
        assert "amount" not in str(err.value.metadata)
    assert not any(w in p for _, p in ALLOWED for w in ("withdraw", "transfer", "wallet"))


@pytest.mark.timeout(90)
def test_canary_never_leaves_the_vault(
    wired: tuple[RunningVault, KrakenFuturesStub], tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    configure_logging("DEBUG", "json")
    vault, stub = wired
    canary = new_canary()
    secret = base64.b64encode(canary.encode() + b"\x00" * 16).decode()
    key = _key(secret)
    stub.keys[key.api_key] = secret
    router = vault.md("router")
    limits = sf.policy(symbols=["PF_XBTUSD"])
    cred = sf.credentials(vault).CreateCredential(
        sf.create_request(key, "c-canary", policy=limits), metadata=vault.md("onboarding"),
        timeout=15,
    ).credential  # fmt: skip
    rc = sf.begin(vault, cred.name).name
    order = sf.place("PF_XBTUSD", qty="0.01", price="50000")
    responses: list[bytes] = []
    signed = sf.sign(vault, rc, order)
    responses.append(signed.SerializeToString())
    done = sf.signing(vault).ExecuteOrder(sf.execute_request(rc, sf.place(
        "PF_XBTUSD", qty="0.01", price="50000")), metadata=router, timeout=10)  # fmt: skip
    assert done.http_status == 200 and b'"success"' in done.body, done
    responses.append(done.SerializeToString())
    attested = sf.attest(vault, cred.name)  # no permission API at Kraken Futures
    responses.append(attested.SerializeToString())
    errors: list[bytes] = []
    for bad in (order, sf.place("XRPEUR", qty="1", price="1"),
                sf.place("PF_XBTUSD", extras={"withdrawAddress": "x"})):  # fmt: skip
        for method, build in ((sf.signing(vault).SignOrder, sf.sign_request),
                              (sf.signing(vault).ExecuteOrder, sf.execute_request)):  # fmt: skip
            err = expect_error(method, build(rc, bad), metadata=router, timeout=10)
            errors.append(f"{err.message}|{err.reasons}|{err.metadata}".encode())
    audit = "\n".join(r.raw for r in sf.audit_rows(vault)).encode()
    out, err_text = capfd.readouterr()
    home = tmp_path / "home"
    files = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and p.suffix != ".sock")
    assert len(stub.requests) == 1 and stub.requests[0].status == 200
    for label, blob in {"responses": b"\n".join(responses), "errors": b"\n".join(errors),
                        "audit": audit, "logs": (out + err_text).encode(),
                        "files": files}.items():  # fmt: skip
        assert find(canary, blob) == [], f"{label} leaked the canary"
        assert secret.encode()[:40] not in blob, f"{label} leaked the secret"
