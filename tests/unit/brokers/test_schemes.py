"""The shared signing schemes and endpoint rules on their own, against published vectors.

Venue modules are built from these (``vault_server.brokers.spec``); the golden tests pin what
each venue sends. Here each scheme is driven directly with a ``Call``, so a new venue reusing a
scheme starts from a tested piece.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints, methods
from vault_server.brokers.schemes import keys
from vault_server.brokers.schemes import prehash_headers as ph
from vault_server.brokers.schemes.hmac_nonce import HmacNonce
from vault_server.brokers.schemes.hmac_query import HmacQuery
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call
from vault_server.core.errors import EndpointNotAllowed, InternalError, InvalidArgument
from vault_server.core.secret import Secret

# Published secrets of the venues' documentation examples (reference §1.3, §3.2, §5.4, §6.2).
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KRAKEN_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
OKX_SECRET = "22582BD0CFF14C41EDBF1AB98506286D"


def cred(algorithm: KeyAlgorithm, secret: str, **more: object) -> VenueCredential:
    return VenueCredential(
        venue=Venue.OKX, environment=Environment.LIVE, algorithm=algorithm, api_key="key-id",
        secret=Secret(secret.encode()), **more,  # type: ignore[arg-type]
    )  # fmt: skip


def test_hmac_query_reproduces_the_binance_spot_vector() -> None:
    call = Call("POST", "/api/v3/order", (
        ("symbol", "LTCBTC"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
        ("quantity", "1"), ("price", "0.1"),
    ))  # fmt: skip
    ctx = SigningContext(now_ms=1499827319559, recv_window_ms=5000)
    request = HmacQuery("X-MBX-APIKEY").sign(
        call, "https://api.binance.com", cred(KeyAlgorithm.HMAC_SHA256, BINANCE_SECRET), ctx
    )
    query = dict(parse_qsl(urlsplit(request.url).query))
    assert query["signature"] == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert request.body == b"" and request.expire_at_ms == 1499827319559 + 5000
    assert request.headers == (("X-MBX-APIKEY", "key-id"),)


def test_hmac_query_form_body_signs_the_same_bytes() -> None:
    call = Call("PUT", "/x", (("a", "1"),))
    ctx = SigningContext(now_ms=1, recv_window_ms=10)
    credential = cred(KeyAlgorithm.HMAC_SHA256, BINANCE_SECRET)
    in_query = HmacQuery("K").sign(call, "https://h", credential, ctx)
    in_body = HmacQuery("K", body_params=True).sign(call, "https://h", credential, ctx)
    assert in_query.url == "https://h/x?" + in_body.body.decode()
    assert ("Content-Type", "application/x-www-form-urlencoded") in in_body.headers


@pytest.mark.parametrize("window", [0, 60_001])
def test_hmac_query_refuses_windows_out_of_range(window: int) -> None:
    with pytest.raises(InvalidArgument):
        HmacQuery("K").sign(
            Call("GET", "/x"), "https://h", cred(KeyAlgorithm.HMAC_SHA256, "s"),
            SigningContext(now_ms=1, recv_window_ms=window),
        )  # fmt: skip


def test_hmac_nonce_reproduces_the_kraken_vector() -> None:
    call = Call("POST", "/0/private/AddOrder", (
        ("pair", "XBTUSD"), ("type", "buy"), ("ordertype", "limit"), ("volume", "1.25"),
        ("price", "37500"),
    ), timed=True)  # fmt: skip
    ctx = SigningContext(now_ms=1616492376594, nonce=1616492376594)
    credential = cred(KeyAlgorithm.HMAC_SHA512, KRAKEN_SECRET)
    request = HmacNonce(deadline=False).sign(call, "https://api.kraken.com", credential, ctx)
    assert request.body == (
        b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    )
    assert dict(request.headers)["API-Sign"] == (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    )


def test_hmac_nonce_deadline_is_signed_and_only_on_timed_calls() -> None:
    credential = cred(KeyAlgorithm.HMAC_SHA512, KRAKEN_SECRET)
    ctx = SigningContext(now_ms=1_700_000_000_500, recv_window_ms=1000, nonce=7)
    timed = HmacNonce().sign(Call("POST", "/p", timed=True), "https://h", credential, ctx)
    plain = HmacNonce().sign(Call("POST", "/p"), "https://h", credential, ctx)
    assert timed.body == b"nonce=7&deadline=2023-11-14T22%3A13%3A23Z"  # now + 3 s, whole seconds
    assert timed.expire_at_ms == 1_700_000_003_000
    assert plain.body == b"nonce=7" and plain.expire_at_ms == 1_700_000_001_500
    with pytest.raises(InternalError):
        HmacNonce().sign(Call("POST", "/p"), "https://h", credential, SigningContext(now_ms=1))


BYBIT_LIKE = ph.PrehashHeaders(
    timestamp=ph.epoch_ms, prehash=ph.BYBIT_PREHASH, encoding="hex",
    headers=(("K", "key"), ("T", "timestamp"), ("W", "window"), ("S", "sign")),
)  # fmt: skip
OKX_LIKE = ph.PrehashHeaders(
    timestamp=ph.iso_ms, prehash=ph.PATH_PREHASH, encoding="base64",
    headers=(("K", "key"), ("S", "sign"), ("T", "timestamp"), ("P", "passphrase")),
    max_age_ms=30_000, expiry_header=("expTime", frozenset({"/o"})), demo_header=("demo", "1"),
)  # fmt: skip


def test_prehash_headers_bybit_form_reproduces_the_derived_vectors() -> None:
    credential = cred(KeyAlgorithm.HMAC_SHA256, BINANCE_SECRET)
    credential = VenueCredential(**{**credential.__dict__, "api_key": "XXXXXXXXXX"})
    ctx = SigningContext(now_ms=1658384314791)
    get = Call.query_or_json("GET", "/q", {"category": "option", "symbol": "BTC-29JUL22-25000-C"})
    request = BYBIT_LIKE.sign(get, "https://h", credential, ctx)
    assert dict(request.headers)["S"] == (
        "dbf1ad442dbf4fcc499455ce59c117a079c36dd60c96c220a3560ba7047fd810"
    )
    post = Call.query_or_json("POST", "/q", {"category": "option"})
    request = BYBIT_LIKE.sign(post, "https://h", credential, SigningContext(now_ms=1658385579423))
    assert request.body == b'{"category":"option"}'
    assert dict(request.headers)["S"] == (
        "03e435372ead974820df7edc9dcc3e26e0f15e0ac40bbfa1aac3dfc41c88ca81"
    )
    assert [name for name, _ in request.headers] == ["K", "T", "W", "S", "Content-Type"]


def test_prehash_headers_okx_form_reproduces_the_derived_vector() -> None:
    credential = cred(KeyAlgorithm.HMAC_SHA256, OKX_SECRET, passphrase=Secret(b"pass phrase"))
    ctx = SigningContext(now_ms=1607418537715, recv_window_ms=45_000)
    call = Call("GET", "/api/v5/account/balance", (("ccy", "BTC"),))
    request = OKX_LIKE.sign(call, "https://h", credential, ctx)
    headers = dict(request.headers)
    assert headers["T"] == "2020-12-08T09:08:57.715Z"
    assert headers["S"] == "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="
    assert repr(headers["P"]) == "'***'"  # the passphrase travels, but never in a repr
    assert request.expire_at_ms == 1607418537715 + 30_000  # the venue's tolerance caps it
    assert "expTime" not in headers and "demo" not in headers


def test_prehash_headers_extra_headers_follow_the_rules() -> None:
    credential = VenueCredential(
        venue=Venue.OKX, environment=Environment.PAPER, algorithm=KeyAlgorithm.HMAC_SHA256,
        api_key="k", secret=Secret(b"s"), passphrase=Secret(b"p"),
    )  # fmt: skip
    request = OKX_LIKE.sign(Call("POST", "/o", json={"a": 1}), "https://h", credential,
                            SigningContext(now_ms=5))  # fmt: skip
    names = [name for name, _ in request.headers]
    assert names == ["K", "S", "T", "P", "Content-Type", "demo", "expTime"]
    assert dict(request.headers)["expTime"] == str(request.expire_at_ms) == "5005"
    no_pass = VenueCredential(**{**credential.__dict__, "passphrase": None})
    with pytest.raises(InvalidArgument, match="credential.passphrase"):
        OKX_LIKE.sign(Call("GET", "/o"), "https://h", no_pass, SigningContext(now_ms=5))


def test_static_headers_mark_every_credential_header() -> None:
    scheme = StaticHeaders(headers=(("Id", "api_key"), ("Auth", "bearer_secret")),
                           fixed=(("Accept", "x"),))  # fmt: skip
    credential = cred(KeyAlgorithm.BEARER, "token-1")
    request = scheme.sign(Call("GET", "/a", (("q", "1 2"),), json={"b": True}), "https://h",
                          credential, SigningContext(now_ms=10, recv_window_ms=5))  # fmt: skip
    assert request.url == "https://h/a?q=1%202" and request.body == b'{"b":true}'
    assert [(n, str(v)) for n, v in request.headers] == [
        ("Id", "key-id"), ("Auth", "Bearer token-1"), ("Accept", "x"),
        ("Content-Type", "application/json"),
    ]  # fmt: skip
    assert [repr(v) for n, v in request.headers[:2]] == ["'***'", "'***'"]
    assert request.expire_at_ms == 15


def test_keys_sign_by_algorithm() -> None:
    hmac_cred = cred(KeyAlgorithm.HMAC_SHA256, "s")
    assert re.fullmatch(r"[0-9a-f]{64}", keys.sign(hmac_cred, b"m", "hex"))
    assert keys.sign(hmac_cred, b"m", "base64").endswith("=")
    with pytest.raises(InvalidArgument, match="credential.private_key_pem"):
        keys.sign(VenueCredential(**{**hmac_cred.__dict__, "algorithm": KeyAlgorithm.RSA}),
                  b"m", "hex")  # fmt: skip


RULES = Endpoints(
    allowed=frozenset({("GET", "/api/order"), ("GET", "/sapi/perm")}),
    patterns=((methods("DELETE"), re.compile(r"/api/order/[0-9]{1,5}")),),
    blocked_words=("withdraw",),
    guarded={"/sapi/": frozenset({("GET", "/sapi/perm")})},
)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/order", True), ("get", "/api/order?x=withdraw", True),
        ("POST", "/api/order", False), ("DELETE", "/api/order/123", True),
        ("GET", "/api/order/123", False), ("DELETE", "/api/order/123456", False),
        ("GET", "/sapi/perm", True), ("POST", "/sapi/perm", False),
        ("GET", "/api/%77ithdraw", False), ("GET", "/api/order/", False),
    ],
)  # fmt: skip
def test_endpoint_rules(method: str, path: str, allowed: bool) -> None:
    if allowed:
        RULES.check(method, path)
        return
    with pytest.raises(EndpointNotAllowed) as err:
        RULES.check(method, path)
    assert err.value.metadata == {"method": method.upper(), "path": path.split("?", 1)[0]}


def test_a_blocked_word_beats_the_allow_list() -> None:
    rules = Endpoints(allowed=frozenset({("GET", "/withdraw")}), blocked_words=("withdraw",))
    with pytest.raises(EndpointNotAllowed):
        rules.check("GET", "/withdraw")
