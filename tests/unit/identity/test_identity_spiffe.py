"""SPIFFE identities from peer certificates: URI SAN extraction, ID form, trust domain, policy."""

from __future__ import annotations

import pytest

from tests.support.certs import ROUTER_ID, TRUST_DOMAIN, Pki, build_pki, issue
from vault_server.auth.identity import CallCredentials, StaticTokenSource, identify
from vault_server.auth.policy import parse_policy
from vault_server.auth.policy_store import PolicyStore
from vault_server.auth.spiffe import (
    SpiffeSource,
    check_trust_domain,
    parse_spiffe_id,
    peer_uri_sans,
    spiffe_ids_from_pem,
)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build_pki()


@pytest.fixture
def source() -> SpiffeSource:
    policy = parse_policy(
        {
            "principals": [
                {
                    "id": "router",
                    "roles": ["router"],
                    "workspaces": ["ws-a"],
                    "spiffe_id": ROUTER_ID,
                },
                {
                    "id": "evil-router",
                    "roles": ["router"],
                    "workspaces": ["*"],
                    "spiffe_id": f"spiffe://{TRUST_DOMAIN}.evil/ns/trading",
                },
            ]
        }
    )
    return SpiffeSource(PolicyStore(policy), TRUST_DOMAIN)


def test_uri_sans_are_read_from_the_pem_in_order(pki: Pki) -> None:
    assert spiffe_ids_from_pem(pki.clients["valid"].cert_pem) == (ROUTER_ID,)
    assert spiffe_ids_from_pem(pki.clients["no_san"].cert_pem) == ()
    assert spiffe_ids_from_pem(pki.clients["two_uris"].cert_pem) == (
        ROUTER_ID,
        f"spiffe://{TRUST_DOMAIN}/ns/trading/sa/admin",
    )
    # DNS and IP SANs are not URI SANs.
    assert spiffe_ids_from_pem(pki.server.cert_pem) == ()


def test_unparseable_certificates_have_no_uri_sans() -> None:
    assert spiffe_ids_from_pem(b"") == ()
    assert (
        spiffe_ids_from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") == ()
    )


def test_uri_sans_of_an_auth_context(pki: Pki) -> None:
    ctx = {"x509_pem_cert": [pki.clients["valid"].cert_pem], "transport_security_type": [b"ssl"]}
    assert peer_uri_sans(ctx) == (ROUTER_ID,)
    assert peer_uri_sans({}) == ()  # plaintext or UDS: no peer certificate
    assert peer_uri_sans({"x509_pem_cert": []}) == ()


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://prod.example/ns/trading/sa/router",
        "spiffe://prod.example/a",
        "spiffe://prod-1.example_x/A.b-c_d/e",
    ],
)
def test_well_formed_spiffe_ids_parse(uri: str) -> None:
    parsed = parse_spiffe_id(uri)
    assert parsed is not None
    assert str(parsed) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://prod.example",  # trust domain only: not a workload
        "spiffe://prod.example/",
        "spiffe://prod.example//a",
        "spiffe://prod.example/a/",
        "spiffe://prod.example/./a",
        "spiffe://prod.example/a/..",
        "spiffe://prod.example/a/../b",
        "spiffe://prod.example:443/a",
        "spiffe://user@prod.example/a",
        "spiffe://prod.example/a?x=1",
        "spiffe://prod.example/a#frag",
        "spiffe://prod.example/a%2Fb",
        "spiffe://Prod.Example/a",  # trust domains are lowercase
        "SPIFFE://prod.example/a",
        "https://prod.example/a",
        "spiffe:///a",
        "spiffe://prod.example/a b",
        "spiffe://prod.example/é",
        " spiffe://prod.example/a",
        "spiffe://prod.example/" + "a" * 2100,
    ],
)
def test_malformed_spiffe_ids_are_refused(uri: str) -> None:
    assert parse_spiffe_id(uri) is None


@pytest.mark.parametrize(
    "td", ["", "spiffe://prod.example", "prod.example/", "Prod.example", "prod.example:443", ".."]
)
def test_configured_trust_domain_must_be_a_bare_name(td: str) -> None:
    with pytest.raises(ValueError):
        check_trust_domain(td)


def _creds(*uris: str) -> CallCredentials:
    return CallCredentials({}, tuple(uris))


def test_one_spiffe_id_in_our_trust_domain_maps_to_its_principal(source: SpiffeSource) -> None:
    entry = source.identify(_creds(ROUTER_ID))
    assert entry is not None
    assert entry.principal.id == "router"


@pytest.mark.parametrize(
    "uris",
    [
        (),
        (ROUTER_ID, f"spiffe://{TRUST_DOMAIN}/ns/trading/sa/admin"),
        (ROUTER_ID, ROUTER_ID),  # even the same ID twice: an SVID has exactly one URI SAN
        (ROUTER_ID, "https://example.com/"),
    ],
)
def test_zero_or_several_uri_sans_are_no_identity(
    source: SpiffeSource, uris: tuple[str, ...]
) -> None:
    assert source.identify(_creds(*uris)) is None


@pytest.mark.parametrize(
    "uri",
    [
        f"spiffe://{TRUST_DOMAIN}.evil/ns/trading",  # prefix trick (and mapped in the policy!)
        "spiffe://staging.example/ns/trading/sa/router",
        f"spiffe://x{TRUST_DOMAIN}/ns/trading/sa/router",
        f"spiffe://{TRUST_DOMAIN}x/ns/trading/sa/router",
        "spiffe://example/ns/trading/sa/router",
    ],
)
def test_other_trust_domains_are_no_identity(source: SpiffeSource, uri: str) -> None:
    assert source.identify(_creds(uri)) is None


def test_an_unmapped_spiffe_id_is_no_identity(source: SpiffeSource) -> None:
    assert source.identify(_creds(f"spiffe://{TRUST_DOMAIN}/ns/trading/sa/other")) is None
    assert source.identify(_creds(ROUTER_ID + "/x")) is None


def test_the_identity_chain_uses_the_certificate_before_tokens(pki: Pki) -> None:
    """SPIFFE source first; with no usable certificate identity the token source still answers."""
    from vault_server.auth.policy import hash_token

    policy = parse_policy(
        {
            "principals": [
                {
                    "id": "router",
                    "roles": ["router"],
                    "workspaces": ["ws-a"],
                    "spiffe_id": ROUTER_ID,
                },
                {
                    "id": "alice",
                    "roles": ["security"],
                    "workspaces": ["*"],
                    "token_sha256": hash_token("t0k"),
                },
            ]
        }
    )
    sources = [SpiffeSource(PolicyStore(policy), TRUST_DOMAIN), StaticTokenSource(policy)]
    by_cert = identify(sources, CallCredentials({"authorization": "Bearer t0k"}, (ROUTER_ID,)))
    assert by_cert is not None and by_cert.principal.id == "router"
    by_token = identify(sources, CallCredentials({"authorization": "Bearer t0k"}, ()))
    assert by_token is not None and by_token.principal.id == "alice"
    assert identify(sources, CallCredentials({}, (ROUTER_ID, ROUTER_ID))) is None


def test_a_certificate_issued_with_a_foreign_trust_domain_is_refused(pki: Pki) -> None:
    policy = parse_policy(
        {
            "principals": [
                {"id": "r", "roles": ["router"], "workspaces": ["a"], "spiffe_id": ROUTER_ID}
            ]
        }
    )
    src = SpiffeSource(PolicyStore(policy), TRUST_DOMAIN)
    for name in ("wrong_td", "prefix_td", "no_san", "two_uris"):
        assert src.identify(_creds(*spiffe_ids_from_pem(pki.clients[name].cert_pem))) is None, name
    mixed = issue(pki.ca, "x", uris=[ROUTER_ID], dns=["router.local"])  # DNS SANs do not count
    assert src.identify(_creds(*spiffe_ids_from_pem(mixed.cert_pem))) is not None
