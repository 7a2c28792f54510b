"""The six venues of issue 20 item 6, declared in the API ahead of their implementation.

Every one of them is implemented now (``PLANNED`` is empty). The mechanism stays for the next
venue declared before its module exists: the server knows the name (config, clients, enum
tables all accept it) but refuses to onboard or sign for it with OPERATION_NOT_SUPPORTED, and
stores nothing - tested below with a venue marked planned for the test.
"""

from __future__ import annotations

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from tests.support.custody import creds, make_workspace
from tests.support.errors import expect_error
from tests.support.vault import RunningVault
from vault_server.brokers import registry
from vault_server.brokers.base import KeyAlgorithm, Venue, parse_venue
from vault_server.brokers.registry import PLANNED, adapter_for, supported_venues
from vault_server.core.errors import OperationNotSupported
from vault_server.rpc.convert_credentials import ALGORITHMS, BROKERS

NEW = {
    trading_pb2.BROKER_DERIBIT: "deribit", trading_pb2.BROKER_KUCOIN: "kucoin",
    trading_pb2.BROKER_BITGET: "bitget", trading_pb2.BROKER_GATE: "gate",
    trading_pb2.BROKER_KRAKEN_FUTURES: "kraken_futures",
    trading_pb2.BROKER_HYPERLIQUID: "hyperliquid",
}  # fmt: skip
# Issue 21's forex/CFD platforms: declared with the session engine, each planned until its
# module lands.
FOREX = {
    trading_pb2.BROKER_CTRADER: "ctrader", trading_pb2.BROKER_TRADELOCKER: "tradelocker",
    trading_pb2.BROKER_MATCH_TRADER: "match_trader", trading_pb2.BROKER_DXTRADE: "dxtrade",
    trading_pb2.BROKER_METAAPI: "metaapi",
}  # fmt: skip


def test_api_numbers_and_server_names() -> None:
    assert list(NEW) == [10, 11, 12, 13, 14, 15]
    assert trading_pb2.KEY_ALGORITHM_SECP256K1 == 9
    assert {BROKERS[number].value for number in NEW} == set(NEW.values())
    assert list(FOREX) == [16, 17, 18, 19, 20]
    assert {BROKERS[number].value for number in FOREX} == set(FOREX.values())
    assert PLANNED <= {BROKERS[number] for number in FOREX}  # the rest are implemented
    assert ALGORITHMS[trading_pb2.KEY_ALGORITHM_SECP256K1] is KeyAlgorithm.SECP256K1


def test_every_api_value_has_a_server_value() -> None:
    brokers = {v.number for v in trading_pb2.Broker.DESCRIPTOR.values if v.number}
    algorithms = {v.number for v in trading_pb2.KeyAlgorithm.DESCRIPTOR.values if v.number}
    assert set(BROKERS) == brokers and set(ALGORITHMS) == algorithms
    assert set(BROKERS.values()) == set(Venue) and set(ALGORITHMS.values()) == set(KeyAlgorithm)


@pytest.mark.parametrize(
    ("text", "venue"),
    [("gate-io", Venue.GATE), ("GATEIO", Venue.GATE), ("krakenfutures", Venue.KRAKEN_FUTURES),
     ("BROKER_HYPERLIQUID", Venue.HYPERLIQUID), ("Deribit", Venue.DERIBIT)],
)  # fmt: skip
def test_names_and_aliases(text: str, venue: Venue) -> None:
    assert parse_venue(text) is venue


@pytest.fixture
def gate_planned(monkeypatch: pytest.MonkeyPatch) -> Venue:
    """Gate as if it were declared but not implemented yet."""
    monkeypatch.setattr(registry, "PLANNED", frozenset({Venue.GATE}))
    return Venue.GATE


def test_every_declared_venue_is_implemented() -> None:
    assert set(supported_venues()) | PLANNED == set(Venue)
    assert not set(supported_venues()) & PLANNED
    assert all(adapter_for(venue).venue is venue for venue in supported_venues())


def test_registry_refuses_a_planned_venue(gate_planned: Venue) -> None:
    with pytest.raises(OperationNotSupported) as err:
        adapter_for(gate_planned)
    assert err.value.metadata == {"broker": gate_planned.value}
    assert "not implemented yet" in err.value.message


@pytest.mark.parametrize(
    ("broker", "algorithm"), [(trading_pb2.BROKER_GATE, trading_pb2.KEY_ALGORITHM_HMAC_SHA512)]
)
def test_onboarding_refuses_a_planned_venue_and_stores_nothing(
    vault: RunningVault, gate_planned: Venue, broker: int, algorithm: int
) -> None:
    make_workspace(vault, "ws-a")
    request = cpb.CreateCredentialRequest(
        parent="workspaces/ws-a", credential_id="c-planned",
        broker=broker, environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=algorithm,
        material=credential_pb2.SecretMaterial(
            api_key="k" * 20, secret="golden-test-secret-planned",
            passphrase="golden-test-passphrase",
        ),
        scopes=["read", "trade"], reason="planned venue",
    )  # fmt: skip
    err = expect_error(
        creds(vault).CreateCredential, request, metadata=vault.md("onboarding"), timeout=10
    )
    assert (err.code, err.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "OPERATION_NOT_SUPPORTED",
    )
    listed = creds(vault).ListCredentials(
        cpb.ListCredentialsRequest(parent="workspaces/ws-a", show_revoked=True),
        metadata=vault.md("auditor"), timeout=10,
    )  # fmt: skip
    assert list(listed.credentials) == []
