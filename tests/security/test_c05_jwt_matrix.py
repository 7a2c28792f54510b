"""JWT identities: signature against a JWKS file, algorithms, kid, time claims, audience, issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.support.certs import write_atomically
from vault_server.auth.identity import CallCredentials
from vault_server.auth.jwt_source import JwksError, JwtSource, bearer_jwt, parse_jwks
from vault_server.auth.policy import parse_policy
from vault_server.auth.policy_store import PolicyStore

NOW = 1_750_000_000
AUD = "pipvault"
ISS = "https://kubernetes.default.svc.cluster.local"
SUB = "system:serviceaccount:trading:router"


class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self, *extra: dict[str, Any]) -> bytes:
        keys = [
            {
                **RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True),
                "kid": "rsa-1",
                "use": "sig",
                "alg": "RS256",
            },
            {**ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True), "kid": "ec-1"},
            {**OKPAlgorithm.to_jwk(self.ed.public_key(), as_dict=True), "kid": "ed-1"},
            *extra,
        ]
        return json.dumps({"keys": keys}).encode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def claims(**over: Any) -> dict[str, Any]:
    base = {
        "iss": ISS,
        "sub": SUB,
        "aud": [AUD],
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 3000,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, alg: str = "RS256", kid: str | None = "rsa-1", **over: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**over), key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(
    header: dict[str, Any], payload: dict[str, Any], sig: bytes = b""
) -> tuple[str, bytes]:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return signing_input, sig


@pytest.fixture
def store() -> PolicyStore:
    policy = parse_policy(
        {
            "principals": [
                {"id": "router", "roles": ["router"], "workspaces": ["ws-a"], "jwt_subject": SUB}
            ]
        }
    )
    return PolicyStore(policy)


@pytest.fixture
def jwks_file(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_bytes(keys.jwks())
    return path


@pytest.fixture
def source(store: PolicyStore, jwks_file: Path) -> JwtSource:
    return JwtSource(store, jwks_file, AUD, issuer=ISS, clock=lambda: NOW, jwks_check_interval_s=0)


def who(source: JwtSource, token: str) -> str | None:
    entry = source.identify(CallCredentials({"authorization": f"Bearer {token}"}))
    return entry.principal.id if entry else None


def test_valid_tokens_of_each_algorithm_map_to_the_principal(source: JwtSource, keys: Keys) -> None:
    assert who(source, sign(keys.rsa, "RS256", "rsa-1")) == "router"
    assert who(source, sign(keys.ec, "ES256", "ec-1")) == "router"
    assert who(source, sign(keys.ed, "EdDSA", "ed-1")) == "router"
    # aud as a plain string, nbf absent: still fine
    assert who(source, sign(keys.rsa, aud=AUD, nbf=None)) == "router"


def test_unknown_subject_is_no_identity(source: JwtSource, keys: Keys) -> None:
    assert who(source, sign(keys.rsa, sub="system:serviceaccount:trading:other")) is None


@pytest.mark.parametrize(
    "over",
    [
        {"exp": NOW - 61},  # expired beyond the 60 s skew
        {"exp": NOW - 60},
        {"nbf": NOW + 61},  # not yet valid
        {"iat": NOW + 61},  # issued in the future
        {"iat": NOW - 10, "exp": NOW - 10 + 3601},  # lifetime beyond the 3600 s cap
        {"exp": None},  # exp is required
        {"iat": None},  # iat is required (the lifetime cap needs it)
        {"exp": str(NOW + 100)},  # claims must be numbers
        {"exp": True},
        {"exp": float("nan")},  # NaN compares false with everything: must not pass as "not expired"
        {"iat": float("nan")},
        {"nbf": float("nan")},
        {"exp": float("inf")},
        {"exp": 10**400},
        {"aud": ["someone-else"]},
        {"aud": None},
        {"iss": "https://evil.example"},
        {"iss": None},
        {"sub": None},
        {"sub": 42},
        {"iat": NOW + 10, "exp": NOW + 5},  # expires before issue
    ],
)
def test_claim_checks(source: JwtSource, keys: Keys, over: dict[str, Any]) -> None:
    assert who(source, sign(keys.rsa, **over)) is None


def test_skew_is_tolerated_within_the_limit(source: JwtSource, keys: Keys) -> None:
    assert who(source, sign(keys.rsa, iat=NOW - 600, nbf=NOW - 600, exp=NOW - 59)) == "router"
    assert who(source, sign(keys.rsa, nbf=NOW + 59, iat=NOW + 59, exp=NOW + 600)) == "router"
    assert who(source, sign(keys.rsa, iat=NOW - 10, exp=NOW - 10 + 3600)) == "router"


def test_no_issuer_configured_accepts_any_issuer(
    store: PolicyStore, jwks_file: Path, keys: Keys
) -> None:
    src = JwtSource(store, jwks_file, AUD, clock=lambda: NOW)
    assert who(src, sign(keys.rsa, iss="https://other")) == "router"
    assert who(src, sign(keys.rsa, iss=None)) == "router"


def test_bad_signatures_are_refused(source: JwtSource, keys: Keys) -> None:
    assert who(source, sign(keys.other_rsa, "RS256", "rsa-1")) is None  # signed by someone else
    good = sign(keys.rsa)
    head, payload, sig = good.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["sub"] = "system:serviceaccount:kube-system:admin"
    assert who(source, f"{head}.{b64(json.dumps(forged).encode())}.{sig}") is None
    assert who(source, f"{head}.{payload}.{sig[:-4]}AAAA") is None


def test_kid_must_name_a_key_of_the_tokens_algorithm(source: JwtSource, keys: Keys) -> None:
    assert who(source, sign(keys.rsa, kid="rsa-2")) is None  # unknown kid
    assert who(source, sign(keys.rsa, kid=None)) is None  # no kid
    assert who(source, sign(keys.ec, "ES256", kid="rsa-1")) is None  # kid of another key type


def test_alg_none_is_refused(source: JwtSource) -> None:
    signing_input, _ = raw_token({"alg": "none", "kid": "rsa-1", "typ": "JWT"}, claims())
    assert who(source, signing_input + ".") is None


def test_hs256_with_the_public_key_as_secret_is_refused(source: JwtSource, keys: Keys) -> None:
    """The classic key-confusion attack: HMAC keyed with the (public) RSA key's PEM."""
    pem = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input, _ = raw_token({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims())
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert who(source, f"{signing_input}.{b64(mac)}") is None


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "ES384", "HS512"])
def test_other_algorithms_are_refused(source: JwtSource, keys: Keys, alg: str) -> None:
    signing_input, _ = raw_token({"alg": alg, "kid": "rsa-1"}, claims())
    assert who(source, f"{signing_input}.{b64(b'x' * 64)}") is None


def test_critical_header_extensions_are_refused(source: JwtSource, keys: Keys) -> None:
    token = jwt.encode(
        claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1", "crit": ["exp"]}
    )
    assert who(source, token) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer tok_abc", None),  # a static token: left to the token source
        ("Bearer a.b", None),
        ("Bearer a.b.c.d", None),
        ("Bearer a.b+/.c", None),
        ("Basic a.b.c", None),
        ("Bearer a.b.c", "a.b.c"),
        ("bearer  a.b.", "a.b."),
    ],
)
def test_only_jwt_shaped_bearer_tokens_are_considered(header: str, expected: str | None) -> None:
    assert bearer_jwt({"authorization": header}) == expected


def test_no_authorization_is_no_identity(source: JwtSource) -> None:
    assert source.identify(CallCredentials({})) is None
    assert who(source, "not.a.jwt") is None


def test_jwks_rotation_is_followed_and_a_bad_file_keeps_the_old_keys(
    source: JwtSource, jwks_file: Path, keys: Keys
) -> None:
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert who(source, sign(new_key, kid="rsa-2")) is None
    write_atomically(
        jwks_file,
        keys.jwks({**RSAAlgorithm.to_jwk(new_key.public_key(), as_dict=True), "kid": "rsa-2"}),
    )
    assert who(source, sign(new_key, kid="rsa-2")) == "router"  # unknown kid triggers a re-read
    jwks_file.write_bytes(b'{"keys": [')  # half-written
    assert source.reload_if_changed() is not None
    assert who(source, sign(new_key, kid="rsa-2")) == "router"
    assert who(source, sign(keys.rsa, kid="rsa-1")) == "router"
    # A valid file without rsa-1: the old key stops working.
    write_atomically(
        jwks_file,
        json.dumps(
            {"keys": [{**RSAAlgorithm.to_jwk(new_key.public_key(), as_dict=True), "kid": "rsa-2"}]}
        ).encode(),
    )
    assert source.reload_if_changed() is None
    assert who(source, sign(keys.rsa, kid="rsa-1")) is None


def test_jwks_validation(keys: Keys, tmp_path: Path, store: PolicyStore) -> None:
    oct_key = {"kty": "oct", "k": b64(b"s" * 32), "kid": "hmac"}
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_jwk = {**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "small"}
    p384 = ec.generate_private_key(ec.SECP384R1())
    p384_jwk = {
        **ECAlgorithm.to_jwk(p384.public_key(), as_dict=True),
        "kid": "p384",
        "alg": "ES256",
    }
    private = {**RSAAlgorithm.to_jwk(keys.rsa, as_dict=True), "kid": "private"}
    enc = {**RSAAlgorithm.to_jwk(keys.rsa.public_key(), as_dict=True), "kid": "enc", "use": "enc"}
    usable = parse_jwks(keys.jwks(oct_key, small_jwk, p384_jwk, private, enc))
    assert sorted(usable) == ["ec-1", "ed-1", "rsa-1"]
    for bad in (b"[]", b"{}", b"not json", json.dumps({"keys": [oct_key, small_jwk]}).encode()):
        with pytest.raises(JwksError):
            parse_jwks(bad)
    with pytest.raises(JwksError, match="duplicate"):
        parse_jwks(
            keys.jwks({**RSAAlgorithm.to_jwk(keys.rsa.public_key(), as_dict=True), "kid": "ec-1"})
        )
    with pytest.raises(JwksError, match="kid"):
        parse_jwks(
            json.dumps(
                {"keys": [RSAAlgorithm.to_jwk(keys.rsa.public_key(), as_dict=True)]}
            ).encode()
        )
    (tmp_path / "j.json").write_bytes(json.dumps({"keys": [oct_key]}).encode())
    with pytest.raises(JwksError):
        JwtSource(store, tmp_path / "j.json", AUD)
    with pytest.raises(JwksError):
        JwtSource(store, tmp_path / "missing.json", AUD)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_token_signed_with_a_skipped_small_key_is_refused(
    tmp_path: Path, keys: Keys, store: PolicyStore
) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "jwks.json"
    path.write_bytes(
        keys.jwks({**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "small"})
    )
    src = JwtSource(store, path, AUD, clock=lambda: NOW)
    assert who(src, sign(small, kid="small")) is None
    assert who(src, sign(keys.rsa, kid="rsa-1")) == "router"
