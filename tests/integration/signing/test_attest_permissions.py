"""AttestCredentialPermissions: ask the venue (its loopback stub) what the key really may do.

Clean permissions → RESULT_CLEAN and the credential stays ACTIVE; withdraw or transfer enabled →
RESULT_EXCESSIVE and the credential is QUARANTINED at once (it signs nothing, CREDENTIAL_NOT_ACTIVE)
until a clean attestation; single-tier venues → RESULT_NOT_SUPPORTED. An attestation decrypts the
secret outside any routing context, so it writes ``credential.read`` (purpose attestation, paged)
before asking, and ``credential.attest`` with the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.support import signing_flow as sf
from tests.support.signing_flow import VenueKey, Venues, Wired

Attestation = sf.credential_pb2.Attestation
Credential = sf.credential_pb2.Credential
SCOPE = sf.trading_pb2


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home") as w:
        yield w


@dataclass(frozen=True)
class Case:
    key: Callable[[], VenueKey]
    excessive: Callable[[Venues, VenueKey], None]  # give the key withdraw/transfer at the venue
    clean: Callable[[Venues, VenueKey], None]  # take it away again
    fund_scope: int  # the forbidden scope the venue reports when excessive


def _binance_set(flags: dict[str, Any]) -> Callable[[Venues, VenueKey], None]:
    return lambda v, k: v.binance.permissions.__setitem__(k.api_key, dict(flags))


CASES = {
    "binance_spot": Case(
        sf.binance_hmac, _binance_set({"enableWithdrawals": True}), _binance_set({}),
        SCOPE.SCOPE_WITHDRAW,
    ),
    "binance_usdm": Case(
        lambda: sf.binance_hmac(usdm=True), _binance_set({"permitsUniversalTransfer": True}),
        _binance_set({}), SCOPE.SCOPE_TRANSFER,
    ),
    "kraken": Case(
        sf.kraken,
        lambda v, k: v.kraken.permissions.__setitem__(
            k.api_key, ["query-funds", "modify-trades", "withdraw-funds"]
        ),
        lambda v, k: v.kraken.permissions.__setitem__(k.api_key, ["query-funds", "modify-trades"]),
        SCOPE.SCOPE_WITHDRAW,
    ),
    "bybit": Case(
        sf.bybit_hmac,
        lambda v, k: v.bybit.permissions.__setitem__(
            k.api_key, {"permissions": {"ContractTrade": ["Order"], "Wallet": ["AccountTransfer"]}}
        ),
        lambda v, k: v.bybit.permissions.__setitem__(k.api_key, {}),
        SCOPE.SCOPE_TRANSFER,
    ),
    "okx": Case(
        sf.okx,
        lambda v, k: v.okx.permissions.__setitem__(k.api_key, "read_only,withdraw,trade"),
        lambda v, k: v.okx.permissions.__setitem__(k.api_key, "read_only,trade"),
        SCOPE.SCOPE_WITHDRAW,
    ),
    "coinbase": Case(
        sf.coinbase,
        lambda v, k: v.coinbase.permissions.__setitem__(k.api_key, {"can_transfer": True}),
        lambda v, k: v.coinbase.permissions.__setitem__(k.api_key, {}),
        SCOPE.SCOPE_TRANSFER,
    ),
}  # fmt: skip


def _attest_events(wired: Wired, mark: int, name: str) -> tuple[sf.AuditRow, sf.AuditRow]:
    rows = [r for r in sf.audit_rows(wired.vault, after=mark) if r.credential == name]
    assert [r.action for r in rows] == ["credential.read", "credential.attest"], rows
    read, attested = rows
    assert read.outcome == "success" and read.details["purpose"] == "attestation"
    assert read.actor_id == attested.actor_id
    assert read.routing_context == ""  # a read outside any routing context
    assert read.id < attested.id  # the read is committed before the venue is asked
    return read, attested


@pytest.mark.parametrize("venue", list(CASES))
def test_clean_then_excessive_then_clean_again(wired: Wired, venue: str) -> None:
    case = CASES[venue]
    key = case.key()
    cred = wired.onboard(key, "cr")
    rc = sf.begin(wired.vault, cred.name).name
    name = cred.name

    # Clean: stays ACTIVE; a read (paged) and an attest event.
    mark, pages = sf.last_audit_id(wired.vault), len(sf.pages(wired.vault))
    clean = sf.attest(wired.vault, name)
    assert clean.attestation.result == Attestation.RESULT_CLEAN
    assert SCOPE.SCOPE_TRADE in clean.attestation.scopes
    assert not {SCOPE.SCOPE_WITHDRAW, SCOPE.SCOPE_TRANSFER} & set(clean.attestation.scopes)
    assert clean.credential.state == Credential.STATE_ACTIVE
    assert clean.attestation.attest_time.seconds > 0
    _read, attested = _attest_events(wired, mark, name)
    assert (attested.outcome, attested.details["result"]) == ("success", "clean")
    assert attested.actor_id == "security"
    payloads = sf.pages(wired.vault)
    assert len(payloads) == pages + 1
    assert payloads[-1]["custom_details"]["kind"] == "attestation"
    assert payloads[-1]["custom_details"]["credential"] == name
    assert len(wired.venues.stub_for(key).requests) == 1
    assert sf.sign(wired.vault, rc, sf.place_for(key)).signed_request.url

    # Excessive: QUARANTINED at once, and nothing signs.
    case.excessive(wired.venues, key)
    mark = sf.last_audit_id(wired.vault)
    bad = sf.attest(wired.vault, name)
    assert bad.attestation.result == Attestation.RESULT_EXCESSIVE
    assert case.fund_scope in bad.attestation.scopes
    assert bad.credential.state == Credential.STATE_QUARANTINED
    _read, attested = _attest_events(wired, mark, name)
    assert attested.details["result"] == "excessive"
    assert attested.details["state"] == "quarantined"
    assert sf.get_credential(wired.vault, name).state == Credential.STATE_QUARANTINED
    for method, request in (
        ("SignOrder", sf.sign_request(rc, sf.place_for(key))),
        ("ExecuteOrder", sf.execute_request(rc, sf.place_for(key))),
        ("BeginRouting", sf.spb.BeginRoutingRequest(credential=name, strategy_id="s", reason="r")),
    ):
        err, rows = sf.refusal(wired.vault, method, request)
        assert (err.code, err.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "CREDENTIAL_NOT_ACTIVE",
        )
        if method != "BeginRouting":
            assert [r.key() for r in rows] == [
                ("credential.use", "denied", "CREDENTIAL_NOT_ACTIVE")
            ]
    sent = len(wired.venues.stub_for(key).requests)

    # The key was fixed at the venue: a clean attestation releases it.
    case.clean(wired.venues, key)
    again = sf.attest(wired.vault, name)
    assert again.attestation.result == Attestation.RESULT_CLEAN
    assert again.credential.state == Credential.STATE_ACTIVE
    assert sf.sign(wired.vault, rc, sf.place_for(key)).signed_request.url
    assert len(wired.venues.stub_for(key).requests) == sent + 1  # only the permission query


@pytest.mark.parametrize("factory", [sf.oanda, sf.alpaca], ids=["oanda", "alpaca"])
def test_single_tier_venues_are_not_supported(
    wired: Wired, factory: Callable[[], VenueKey]
) -> None:
    key = factory()
    cred = wired.onboard(key, "st")
    mark = sf.last_audit_id(wired.vault)
    result = sf.attest(wired.vault, cred.name)
    assert result.attestation.result == Attestation.RESULT_NOT_SUPPORTED
    assert result.credential.state == Credential.STATE_ACTIVE
    assert result.credential.single_permission_tier
    rows = sf.audit_rows(wired.vault, after=mark)
    # Nothing was decrypted (no permission API), so no read event; the attempt is recorded.
    assert [(r.action, r.outcome, r.details.get("result")) for r in rows] == [
        ("credential.attest", "success", "not_supported")
    ]
    assert wired.venues.stub_for(key).requests == []


@pytest.mark.parametrize("withdrawals", [True, False], ids=["excessive", "clean"])
def test_attest_on_create(wired: Wired, withdrawals: bool) -> None:
    key = sf.binance_hmac()
    wired.venues.binance.permissions[key.api_key] = {"enableWithdrawals": withdrawals}
    cred = wired.onboard(key, "bn", attest_on_create=True)
    expected = Attestation.RESULT_EXCESSIVE if withdrawals else Attestation.RESULT_CLEAN
    assert cred.attestation.result == expected
    assert cred.state == (Credential.STATE_QUARANTINED if withdrawals else Credential.STATE_ACTIVE)
    actions = [
        (r.action, r.actor_id) for r in sf.audit_rows(wired.vault) if r.credential == cred.name
    ]
    assert actions == [
        ("credential.create", "onboarding"),
        ("credential.read", "onboarding"),
        ("credential.attest", "onboarding"),
    ]
    request = sf.spb.BeginRoutingRequest(credential=cred.name, strategy_id="s", reason="r")
    if withdrawals:
        err, _ = sf.refusal(wired.vault, "BeginRouting", request)
        assert err.reason == "CREDENTIAL_NOT_ACTIVE"
    else:
        rc = sf.begin(wired.vault, cred.name).name
        assert sf.sign(wired.vault, rc, sf.place_for(key)).signed_request.url


def test_venue_refusal_is_a_failed_attestation_that_changes_nothing(wired: Wired) -> None:
    key = sf.bybit_hmac()
    cred = sf.onboard(wired.vault, key, "bb")  # never registered at the venue: unknown key
    mark = sf.last_audit_id(wired.vault)
    result = sf.attest(wired.vault, cred.name)
    assert result.attestation.result == Attestation.RESULT_FAILED
    assert result.credential.state == Credential.STATE_ACTIVE
    _read, attested = _attest_events(wired, mark, cred.name)
    assert (attested.outcome, attested.details["result"]) == ("failed", "failed")
    assert key.secret_text not in _read.raw + attested.raw


def test_revoked_credential_is_not_attested(wired: Wired) -> None:
    key = sf.okx()
    cred = wired.onboard(key, "ok")
    sf.revoke(wired.vault, cred.name)
    mark = sf.last_audit_id(wired.vault)
    from tests.support.errors import expect_error

    err = expect_error(
        sf.credentials(wired.vault).AttestCredentialPermissions,
        sf.cpb.AttestCredentialPermissionsRequest(name=cred.name, reason="review"),
        metadata=wired.vault.md("security"), timeout=10,
    )  # fmt: skip
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CREDENTIAL_REVOKED")
    assert not [r for r in sf.audit_rows(wired.vault, after=mark) if r.action == "credential.read"]
    assert wired.venues.okx.requests == []


class _VenueDns(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Resolves the venues' real hosts to the loopback stub (no network in tests), for the
    blocking client (attestation) and the proxy's async pools alike."""

    def __init__(self, hosts: set[str], stub_url: str) -> None:
        self._hosts = hosts
        self._stub = httpx.URL(stub_url)
        self._inner = httpx.HTTPTransport()
        self._inner_async = httpx.AsyncHTTPTransport()
        self.seen: list[str] = []

    def _route(self, request: httpx.Request) -> None:
        self.seen.append(f"{request.url.scheme}://{request.url.host}")
        if request.url.host not in self._hosts:
            raise httpx.ConnectError("no route to host", request=request)
        request.url = request.url.copy_with(
            scheme=self._stub.scheme, host=self._stub.host, port=self._stub.port
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._route(request)
        return self._inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._route(request)
        return await self._inner_async.handle_async_request(request)


def test_binance_usdm_attestation_reaches_the_spot_permission_host(tmp_path: Path) -> None:
    """USD-M keys are queried on api.binance.com (apiRestrictions lives on Spot) while USD-M
    orders go to fapi.binance.com: with the production base URLs (no overrides), the egress
    allow-list must admit the permission host, or USD-M attestation could never succeed."""
    key = sf.binance_hmac(usdm=True)
    with sf.venue_stubs() as venues:
        venues.register(key)
        venues.binance.permissions[key.api_key] = {"enableWithdrawals": True}
        vault = sf.start_wired(tmp_path / "home", venues, signing={"venue_base_urls": {}})
        try:
            dns = _VenueDns({"api.binance.com", "fapi.binance.com"}, venues.binance.base_url)
            vault.app.egress._client = httpx.Client(transport=dns)  # the DNS, not the allow-list
            vault.app.egress._async_transport = dns
            cred = sf.onboard(vault, key, "um")
            rc = sf.begin(vault, cred.name).name
            placed = sf.execute(vault, rc, sf.place_for(key))
            assert placed.http_status == 200, placed.body  # orders: fapi.binance.com
            result = sf.attest(vault, cred.name)
            assert dns.seen == ["https://fapi.binance.com", "https://api.binance.com"]
            assert result.attestation.result == Attestation.RESULT_EXCESSIVE, dict(
                result.attestation.venue_fields
            )
            assert result.credential.state == Credential.STATE_QUARANTINED
        finally:
            vault.stop()
