"""One venue, one canonical name, every alias accepted on every surface (issue 19 §8).

``binance_spot`` (config), ``binance-spot`` (vaultctl) and ``BROKER_BINANCE_SPOT`` (the Python
client) were three spellings, each refused somewhere. Now the canonical name is the server's
(``Venue`` values, the config's keys) and every spelling below is accepted by the server's config
parser, the Python client (against a real gRPC server) and vaultctl; output shows the canonical
name. The client's alias table and the server's must stay equal."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Iterator

import pipvault_client as pv
import pytest
from pipsync.vault.v1 import credential_pb2, credential_service_pb2, trading_pb2
from test_client_fakes import FakeVault, running_fake_vault
from vaultctl import _convert
from vaultctl.main import main

from vault_server.brokers.base import VENUE_ALIASES, Venue, parse_venue
from vault_server.config import ConfigError, load_settings

CANONICAL = [v.value for v in Venue]


def spellings(canonical: str) -> list[str]:
    """Every way a person or a program may write the venue."""
    hyphen = canonical.replace("_", "-")
    forms = [
        canonical,
        hyphen,
        canonical.upper(),
        hyphen.title(),
        f"BROKER_{canonical.upper()}",
        f"broker-{hyphen}",
        f"  {canonical}  ",
    ]
    forms += [alias for alias, target in VENUE_ALIASES.items() if target == canonical]
    forms += [alias.upper() for alias, target in VENUE_ALIASES.items() if target == canonical]
    return forms


CASES = [(canonical, text) for canonical in CANONICAL for text in spellings(canonical)]
IDS = [f"{c}:{t.strip()}" for c, t in CASES]
BAD = [
    "nasdaq",
    "binance spot",
    "binance__spot",
    "BROKER_UNSPECIFIED",
    "unspecified",
    "",
    "bınance",
]


def test_one_name_per_venue_on_both_sides() -> None:
    assert list(pv.VENUES) == CANONICAL  # the API enum and the server's Venue agree, in order
    assert dict(pv.VENUE_ALIASES) == dict(VENUE_ALIASES)  # one alias table, kept twice
    assert all(target in CANONICAL for target in VENUE_ALIASES.values())
    assert len(CASES) >= 7 * len(CANONICAL)


# the server's config -------------------------------------------------------------------------


@pytest.mark.parametrize(("canonical", "text"), CASES, ids=IDS)
def test_server_parses_every_spelling(canonical: str, text: str) -> None:
    assert parse_venue(text).value == canonical
    settings = load_settings(
        None, mode="dev", signing={"venue_base_urls": {text: "https://venue.test"}}
    )
    assert settings.signing.venue_base_urls == {canonical: "https://venue.test"}


@pytest.mark.parametrize("text", BAD)
def test_server_refuses_unknown_venues(text: str) -> None:
    with pytest.raises(ValueError, match="unknown venue"):
        parse_venue(text)
    with pytest.raises(ConfigError, match=r"signing\.venue_base_urls: .*unknown venue"):
        load_settings(None, mode="dev", signing={"venue_base_urls": {text: "https://x.test"}})


def test_config_refuses_two_spellings_with_two_urls() -> None:
    urls = {"binance_spot": "https://a.test", "binance-spot": "https://b.test"}
    with pytest.raises(ConfigError, match="binance_spot is given twice"):
        load_settings(None, mode="dev", signing={"venue_base_urls": urls})


# the Python client ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vault() -> Iterator[FakeVault]:
    with running_fake_vault() as fake:
        yield fake


@pytest.fixture(scope="module")
def client(vault: FakeVault) -> Iterator[pv.VaultClient]:
    with pv.VaultClient(vault.address, token="dev-token") as c:
        yield c


def _wire(canonical: str) -> int:
    return trading_pb2.Broker.Value(f"BROKER_{canonical.upper()}")


@pytest.mark.parametrize(("canonical", "text"), CASES, ids=IDS)
def test_client_sends_every_spelling_as_the_venue(
    canonical: str, text: str, client: pv.VaultClient, vault: FakeVault
) -> None:
    assert pv.canonical_venue(text) == canonical
    client.generate_credential_key(
        "workspaces/ws", "cred", broker=text, environment="ENVIRONMENT_LIVE",
        key_algorithm="KEY_ALGORITHM_ED25519", scopes=[], reason="venue names",
    )  # fmt: skip
    assert vault.last("GenerateCredentialKey").request.broker == _wire(canonical)
    list(client.list_credentials("workspaces/ws", broker=text))
    assert vault.last("ListCredentials").request.broker == _wire(canonical)


def test_client_takes_the_enum_and_no_filter(client: pv.VaultClient, vault: FakeVault) -> None:
    assert pv.canonical_venue(trading_pb2.BROKER_KRAKEN_SPOT) == "kraken_spot"
    list(client.list_credentials("workspaces/ws"))
    assert vault.last("ListCredentials").request.broker == trading_pb2.BROKER_UNSPECIFIED


@pytest.mark.parametrize("text", [b for b in BAD if b != "BROKER_UNSPECIFIED"])  # a list filter
def test_client_refuses_unknown_venues_before_sending(
    text: str, client: pv.VaultClient, vault: FakeVault
) -> None:
    before = len(vault.calls)
    with pytest.raises(ValueError, match="unknown venue"):
        client.generate_credential_key(
            "workspaces/ws", "cred", broker=text, environment="ENVIRONMENT_LIVE",
            key_algorithm="KEY_ALGORITHM_ED25519", scopes=[], reason="venue names",
        )  # fmt: skip
    assert len(vault.calls) == before


# vaultctl ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("canonical", "text"), CASES, ids=IDS)
def test_vaultctl_takes_every_spelling_and_prints_the_canonical_name(
    canonical: str,
    text: str,
    vault: FakeVault,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vault.on(
        "GenerateCredentialKey",
        lambda req, ctx: credential_service_pb2.GenerateCredentialKeyResponse(
            credential=credential_pb2.Credential(
                name="workspaces/ws/credentials/c", broker=req.broker
            )
        ),
    )
    monkeypatch.setenv("PIPVAULT_ADDR", vault.address)
    monkeypatch.setenv("PIPVAULT_TOKEN", "tok-" + secrets.token_hex(4))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "stdin", None)
    code = main(
        ["--reason", "venue names", "credentials", "generate-key", "ws", "c", "--broker", text,
         "--environment", "live", "--algorithm", "ed25519"]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert vault.last("GenerateCredentialKey").request.broker == _wire(canonical)
    assert f" {canonical} " in out.out  # the credential view names the venue canonically


@pytest.mark.parametrize("text", BAD)
def test_vaultctl_refuses_unknown_venues(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="binance_spot, binance_usdm"):
        _convert.BROKER(text)
