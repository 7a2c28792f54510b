"""Binance signing: official vectors through ``build()``, independent verification, primitives.

Vectors are from reference/broker-signing.md §1.3, §1.4 and §2.2/§2.3. The published example keys
are used as-is; every other key is generated at run time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.schemes import keys
from vault_server.brokers.spec import SpecAdapter as BinanceAdapter
from vault_server.brokers.venues.binance_spot import ADAPTER as SPOT
from vault_server.brokers.venues.binance_usdm import ADAPTER as USDM
from vault_server.brokers.venues.binance_usdm import BinanceUsdmAdapter
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

SPOT_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
USDM_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
USDM_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"

SPOT_A = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
SPOT_A_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
SPOT_B = (
    "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
    "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
SPOT_B_SIG = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
USDM_PAYLOAD = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
USDM_SIG = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def hmac_credential(venue: Venue, key: str, secret: str) -> VenueCredential:
    return VenueCredential(
        venue, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, key, secret=Secret(secret)
    )


def limit(symbol: str, qty: str, price: str) -> OrderSpec:
    return OrderSpec(
        Operation.PLACE_ORDER,
        symbol=symbol,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(qty),
        price=Decimal(price),
        time_in_force=TimeInForce.GTC,
    )


def split_signed(request: PreparedRequest) -> tuple[bytes, str]:
    """(exact signed bytes, signature) parsed back out of the request as it will be sent."""
    query, body = urlsplit(request.url).query, request.body.decode("ascii")
    head, sep, signature = (body or query).rpartition("&signature=")
    assert sep, "signature must be the last parameter"
    return ((query + head) if body else head).encode("ascii"), signature


# --- official vectors through build() ------------------------------------------------------------
@pytest.mark.parametrize(
    ("symbol", "payload", "signature"),
    [("LTCBTC", SPOT_A, SPOT_A_SIG), ("１２３４５６", SPOT_B, SPOT_B_SIG)],
    ids=["spot-a", "spot-b-non-ascii"],
)
def test_spot_official_vectors_reproduce_through_build(
    symbol: str, payload: str, signature: str
) -> None:
    request = SPOT.build(
        limit(symbol, "1", "0.1"),
        hmac_credential(Venue.BINANCE_SPOT, SPOT_KEY, SPOT_SECRET),
        SigningContext(now_ms=1499827319559, recv_window_ms=5000),
    )
    assert request.method == "POST"
    assert request.url == f"https://api.binance.com/api/v3/order?{payload}&signature={signature}"
    assert request.headers == (("X-MBX-APIKEY", SPOT_KEY),)
    assert request.body == b""
    assert request.expire_at_ms == 1499827319559 + 5000


def test_usdm_example_1_query_string_reproduces_through_build() -> None:
    request = USDM.build(
        limit("BTCUSDT", "1", "9000"),
        hmac_credential(Venue.BINANCE_USDM, USDM_KEY, USDM_SECRET),
        SigningContext(now_ms=1591702613943),
    )
    assert (
        request.url == f"https://fapi.binance.com/fapi/v1/order?{USDM_PAYLOAD}&signature={USDM_SIG}"
    )
    assert request.body == b""


def test_usdm_example_2_request_body_reproduces_through_build() -> None:
    request = BinanceUsdmAdapter(body_params=True).build(
        limit("BTCUSDT", "1", "9000.000"),  # trailing zeros must not leak into the payload
        hmac_credential(Venue.BINANCE_USDM, USDM_KEY, USDM_SECRET),
        SigningContext(now_ms=1591702613943),
    )
    assert request.url == "https://fapi.binance.com/fapi/v1/order"
    assert request.body == f"{USDM_PAYLOAD}&signature={USDM_SIG}".encode()
    assert ("Content-Type", "application/x-www-form-urlencoded") in request.headers


def test_usdm_example_3_mixed_placement_via_primitive() -> None:
    secret = Secret(USDM_SECRET)
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    as_published = query + "quantity=1&price=9000&recvWindow=5000&timestamp= 1591702613943"
    corrected = query + "quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943"
    published = "f9d0ae5e813ef6ccf15c2b5a434047a0181cb5a342b903b367ca6d27a66e36f2"
    derived = "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"
    assert keys.hmac_sha256_hex(secret, as_published.encode()) == published
    assert keys.hmac_sha256_hex(secret, corrected.encode()) == derived


# --- asymmetric keys -----------------------------------------------------------------------------
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RSA_EXAMPLE_PAYLOAD = (
    b"symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"
    b"&timestamp=1668481559918&recvWindow=5000"
)


def pkcs8(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> Secret:
    return Secret(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_ed25519_derived_vector_and_rfc8032_via_primitive() -> None:
    pem = pkcs8(ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SEED))
    assert keys.ed25519_sign(pem, b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert base64.b64encode(keys.ed25519_sign(pem, RSA_EXAMPLE_PAYLOAD)).decode() == (
        "XtZirsmmi0noRzUfkqktvkVfxpkq/WtbLg2UOL3QGYdUBZVlqOBEMuEVw8zioY93N54NcKj9UuAXQEa9zgTDBg=="
    )


def test_ed25519_build_is_verified_by_an_independent_public_key_check() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    credential = VenueCredential(
        Venue.BINANCE_SPOT,
        Environment.LIVE,
        KeyAlgorithm.ED25519,
        "ed-key",
        private_key_pem=pkcs8(key),
    )
    request = SPOT.build(limit("BTCUSDT", "0.5", "65000.10"), credential, SigningContext(now_ms=1))
    payload, signature = split_signed(request)
    assert "%" in signature or "+" not in signature  # base64 specials are percent-encoded
    raw = base64.b64decode(unquote(signature))
    assert len(raw) == 64
    key.public_key().verify(raw, payload)
    assert dict(parse_qsl(payload.decode()))["price"] == "65000.1"


@pytest.mark.parametrize("adapter", [SPOT, USDM], ids=["spot", "usdm"])
def test_rsa_build_is_verified_by_an_independent_public_key_check(
    adapter: BinanceAdapter, rsa_key: rsa.RSAPrivateKey
) -> None:
    credential = VenueCredential(
        adapter.venue, Environment.LIVE, KeyAlgorithm.RSA, "rsa", private_key_pem=pkcs8(rsa_key)
    )
    order = limit("BTCUSDT", "1.5", "20000")
    request = adapter.build(order, credential, SigningContext(now_ms=1700000000000))
    payload, signature = split_signed(request)
    raw = base64.b64decode(unquote(signature))
    assert len(raw) == 256
    rsa_key.public_key().verify(raw, payload, padding.PKCS1v15(), SHA256())
    tampered = payload.replace(b"quantity=1.5", b"quantity=9.5")
    assert tampered != payload
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(raw, tampered, padding.PKCS1v15(), SHA256())


def test_hmac_build_is_verified_by_the_hmac_module() -> None:
    credential = hmac_credential(Venue.BINANCE_SPOT, "k", "another-secret")
    order = OrderSpec(
        Operation.PLACE_ORDER,
        symbol="ETHBTC",
        side=Side.SELL,
        order_type=OrderType.STOP_LIMIT,
        quantity=Decimal("0.00000100"),
        price=Decimal("5E-2"),
        stop_price=Decimal("0.051"),
        time_in_force=TimeInForce.IOC,
        client_order_id="my-order:1",
        extras={"newOrderRespType": "ACK"},
    )
    request = SPOT.build(
        order, credential, SigningContext(now_ms=1700000000000, recv_window_ms=60000)
    )
    payload, signature = split_signed(request)
    assert signature == hmac.new(b"another-secret", payload, hashlib.sha256).hexdigest()
    assert payload.decode() == (
        "symbol=ETHBTC&side=SELL&type=STOP_LOSS_LIMIT&timeInForce=IOC&quantity=0.000001"
        "&price=0.05&stopPrice=0.051&newClientOrderId=my-order%3A1&newOrderRespType=ACK"
        "&recvWindow=60000&timestamp=1700000000000"
    )
    assert request.expire_at_ms == 1700000000000 + 60000


def test_wrong_key_type_or_garbage_pem_is_refused_without_leaking_it() -> None:
    garbage = "-----BEGIN " + "PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    rsa_pem = pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    for algorithm, pem in (
        (KeyAlgorithm.ED25519, Secret(garbage)),
        (KeyAlgorithm.ED25519, rsa_pem),
    ):
        credential = VenueCredential(
            Venue.BINANCE_SPOT, Environment.LIVE, algorithm, "k", private_key_pem=pem
        )
        with pytest.raises(InvalidArgument) as info:
            SPOT.build(limit("BTCUSDT", "1", "1"), credential, SigningContext(now_ms=1))
        assert info.value.field == "credential.private_key_pem"
        assert "TOPSECRET" not in str(info.value) and "PRIVATE" not in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__


# --- decimal formatting -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1", "1"), ("1.00", "1"), ("0.10", "0.1"), ("1E+3", "1000"), ("100", "100"),
        ("1E-8", "0.00000001"), ("123.4560", "123.456"), ("0.000", "0"), ("2.5e2", "250"),
    ],
)  # fmt: skip
def test_format_decimal_is_positional_without_trailing_zeros(value: str, text: str) -> None:
    assert sc.format_decimal(Decimal(value)) == text


@pytest.mark.parametrize("value", ["0", "-1", "NaN", "Infinity", "1E+60"])
def test_positive_decimal_refuses_non_positive_non_finite_and_huge(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        sc.positive_decimal(Decimal(value), "order.quantity")
    assert info.value.field == "order.quantity"
