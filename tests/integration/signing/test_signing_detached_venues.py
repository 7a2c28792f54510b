"""SignOrder for every detached venue, verified independently and by the venue's loopback stub.

For each venue: onboard over gRPC with the venue's scope vocabulary, BeginRouting on the data
plane, SignOrder; then re-derive the signature in this file from the exact method, URL, headers and
body returned (hmac/hashlib/base64, ``cryptography`` public-key verification, PyJWT for Coinbase),
check ``expire_time`` against the configured window, and send the request with httpx to the stub:
the untouched request is accepted, a stale one (stub clock moved past the window) and a tampered
one (one byte of the signed query or body changed) are refused by the stub.

Each independent verifier is first checked against the venue's published vector where one exists,
so a wrong verifier cannot make a wrong signature pass.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from tests.support import signing_flow as sf
from tests.support.signing_flow import B, VenueKey, Wired

WINDOW_MS = 4000  # recv_window_cap_ms: below the policy's default 5 s, so the cap is what applies


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home", recv_window_cap_ms=WINDOW_MS) as w:
        yield w


def _signed(wired: Wired, key: VenueKey, cred_id: str) -> tuple[Any, str, int, int]:
    """Onboard, open a context, sign one order; returns (response, context, t_before, t_after)."""
    cred = wired.onboard(key, cred_id)
    assert cred.state == cred.STATE_ACTIVE and not cred.proxy_only
    rc = sf.begin(wired.vault, cred.name)
    before = sf.now_ms()
    response = sf.sign(wired.vault, rc.name, sf.place_for(key))
    after = sf.now_ms()
    assert response.credential_version == 1
    assert response.audit_event.startswith("workspaces/ws-a/auditEvents/")
    return response, rc.name, before, after


def _assert_fresh(signed: Any, signed_at_ms: int, before: int, after: int) -> None:
    """The signed instant is now, and the request expires within the configured window."""
    assert before - 5 <= signed_at_ms <= after + 5
    assert sf.expire_ms(signed) <= signed_at_ms + WINDOW_MS
    assert sf.expire_ms(signed) <= after + WINDOW_MS


# --- Binance ---------------------------------------------------------------------------------
def binance_verify(key: VenueKey, payload: bytes, signature: str) -> None:
    """Binance §1.2: HMAC hex, or percent-encoded base64 Ed25519 / RSA PKCS#1 v1.5 SHA-256."""
    if key.algorithm == B.KEY_ALGORITHM_HMAC_SHA256:
        expected = hmac.new(key.secret_text.encode(), payload, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, signature), "HMAC does not match"
        return
    raw = base64.b64decode(unquote(signature), validate=True)
    if isinstance(key.public, ed25519.Ed25519PublicKey):
        assert len(raw) == 64
        key.public.verify(raw, payload)
    else:
        assert len(raw) == 256
        key.public.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())


def test_binance_verifier_reproduces_the_official_vectors() -> None:
    spot = sf.binance_hmac(sf.BINANCE_DOC_KEY, sf.BINANCE_DOC_SECRET)
    payload = (
        b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        b"&recvWindow=5000&timestamp=1499827319559"
    )
    binance_verify(
        spot, payload, "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    usdm = sf.binance_hmac(sf.BINANCE_USDM_DOC_KEY, sf.BINANCE_USDM_DOC_SECRET, usdm=True)
    payload = (
        b"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
        b"&recvWindow=5000&timestamp=1591702613943"
    )
    binance_verify(
        usdm, payload, "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    )
    with pytest.raises(AssertionError):
        binance_verify(usdm, payload.replace(b"9000", b"9001"), "3c66" + "0" * 60)


def _binance_roundtrip(wired: Wired, key: VenueKey, path: str, expected_prefix: str) -> None:
    response, ctx, before, after = _signed(wired, key, "bn")
    signed = response.signed_request
    assert signed.method == "POST" and signed.body == b""
    base, _, query = signed.url.partition("?")
    assert base == wired.venues.binance.base_url + path
    payload, _, signature = query.rpartition("&signature=")
    assert payload.startswith(expected_prefix), payload
    binance_verify(key, payload.encode(), signature)
    assert sf.header_map(signed) == {"X-MBX-APIKEY": key.api_key}
    params = dict(parse_qsl(payload))
    assert params["recvWindow"] == str(WINDOW_MS)  # the configured cap, not the policy's 5 s
    _assert_fresh(signed, int(params["timestamp"]), before, after)
    assert sf.expire_ms(signed) == int(params["timestamp"]) + WINDOW_MS

    stub = wired.venues.binance
    ok = sf.send(signed)
    assert ok.status_code == 200 and ok.json()["status"] == "NEW", ok.text
    assert ok.json()["clientOrderId"] == params["newClientOrderId"]
    tampered = sf.flip_byte(signed.url.encode(), b"quantity=1&", b"quantity=2&").decode()
    bad = sf.send(signed, url=tampered)
    assert (bad.status_code, bad.json()["code"]) == (400, -1022)
    stale = sf.sign(wired.vault, ctx, sf.place_for(key)).signed_request
    stub.clock = lambda: sf.now_ms() + WINDOW_MS + 1500
    late = sf.send(stale)
    assert (late.status_code, late.json()["code"]) == (400, -1021)
    stub.clock = sf.now_ms
    assert sf.send(stale).status_code == 200  # the same bytes were fine inside the window


def test_binance_spot_documentation_key_signature_reproduced_and_accepted(wired: Wired) -> None:
    key = sf.binance_hmac(sf.BINANCE_DOC_KEY, sf.BINANCE_DOC_SECRET)
    # The official vector's parameter order (§1.3 a), then the client order id, window, time.
    _binance_roundtrip(
        wired, key, "/api/v3/order",
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&newClientOrderId=",
    )  # fmt: skip


@pytest.mark.parametrize("algorithm", [B.KEY_ALGORITHM_ED25519, B.KEY_ALGORITHM_RSA])
def test_binance_spot_asymmetric_keys_verify_with_the_public_key(
    wired: Wired, algorithm: int
) -> None:
    key = sf.binance_asymmetric(algorithm)
    _binance_roundtrip(wired, key, "/api/v3/order", "symbol=LTCBTC&side=BUY&type=LIMIT&")


def test_binance_usdm_documentation_key(wired: Wired) -> None:
    key = sf.binance_hmac(sf.BINANCE_USDM_DOC_KEY, sf.BINANCE_USDM_DOC_SECRET, usdm=True)
    # The USD-M vector's order (§2.2): quantity and price before timeInForce.
    _binance_roundtrip(
        wired, key, "/fapi/v1/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&",
    )  # fmt: skip


# --- Kraken ----------------------------------------------------------------------------------
def kraken_sign(secret_b64: str, path: str, body: bytes) -> str:
    nonce = body.split(b"&", 1)[0].removeprefix(b"nonce=")
    digest = hashlib.sha256(nonce + body).digest()
    mac = hmac.new(base64.b64decode(secret_b64), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def test_kraken_verifier_reproduces_the_official_vector() -> None:
    body = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    assert kraken_sign(sf.KRAKEN_DOC_SECRET, "/0/private/AddOrder", body) == (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    )


def test_kraken_signature_nonce_deadline_and_stub(wired: Wired) -> None:
    key = sf.kraken(sf.KRAKEN_DOC_SECRET)
    response, ctx, before, after = _signed(wired, key, "kr")
    signed = response.signed_request
    path = urlsplit(signed.url).path
    assert signed.method == "POST" and path == "/0/private/AddOrder" and "?" not in signed.url
    headers = sf.header_map(signed)
    assert headers["API-Key"] == key.api_key
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["API-Sign"] == kraken_sign(key.secret_text, path, signed.body)
    params = parse_qsl(signed.body.decode())
    assert params[0][0] == "nonce"  # nonce first, then the rest sorted (the §3.2 vector's order)
    fields = dict(params)
    assert [k for k, _ in params[1:]] == sorted(k for k, _ in params[1:])
    assert (fields["pair"], fields["type"], fields["ordertype"], fields["volume"]) == (
        "XBTUSD", "buy", "limit", "1.25",
    )  # fmt: skip
    deadline_ms = int(dt.datetime.fromisoformat(fields["deadline"]).timestamp() * 1000)
    assert sf.expire_ms(signed) == deadline_ms
    _assert_fresh(signed, int(fields["nonce"]), before, after)
    assert deadline_ms > before + 2000  # Kraken: deadline at least now + 2 s

    ok = sf.send(signed).json()
    assert ok["error"] == [] and ok["result"]["txid"], ok
    assert sf.send(signed).json()["error"] == ["EAPI:Invalid nonce"]  # replayed
    fresh = sf.sign(wired.vault, ctx, sf.place_for(key)).signed_request
    bad = sf.flip_byte(fresh.body, b"volume=1.25", b"volume=1.26")
    assert sf.send(fresh, body=bad).json()["error"] == ["EAPI:Invalid signature"]
    assert sf.send(fresh).json()["error"] == []  # the untampered bytes, next nonce: accepted
    stale = sf.sign(wired.vault, ctx, sf.place_for(key)).signed_request
    wired.venues.kraken.clock = lambda: sf.now_ms() + 61_000
    assert sf.send(stale).json()["error"] == ["EGeneral:Invalid arguments:deadline"]


# --- Bybit -----------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", [sf.bybit_hmac, sf.bybit_rsa], ids=["hmac", "rsa"])
def test_bybit_signature_and_stub(wired: Wired, factory: Any) -> None:
    key = factory()
    response, _ctx, before, after = _signed(wired, key, "bb")
    signed = response.signed_request
    assert signed.method == "POST"
    assert signed.url == wired.venues.bybit.base_url + "/v5/order/create"
    headers = sf.header_map(signed)
    assert headers["X-BAPI-API-KEY"] == key.api_key
    assert headers["X-BAPI-RECV-WINDOW"] == str(WINDOW_MS)
    assert headers["Content-Type"] == "application/json"
    ts = headers["X-BAPI-TIMESTAMP"]
    prehash = f"{ts}{key.api_key}{WINDOW_MS}".encode() + signed.body
    if key.algorithm == B.KEY_ALGORITHM_HMAC_SHA256:
        expected = hmac.new(key.secret_text.encode(), prehash, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-BAPI-SIGN"], expected)
    else:
        raw = base64.b64decode(headers["X-BAPI-SIGN"], validate=True)
        key.public.verify(raw, prehash, padding.PKCS1v15(), hashes.SHA256())
    body = json.loads(signed.body)
    assert body["category"] == "linear" and body["symbol"] == "BTCUSDT"
    assert (body["side"], body["orderType"], body["qty"], body["price"]) == (
        "Buy", "Limit", "0.01", "30000",
    )  # fmt: skip
    _assert_fresh(signed, int(ts), before, after)
    assert sf.expire_ms(signed) == int(ts) + WINDOW_MS

    ok = sf.send(signed).json()
    assert ok["retCode"] == 0, ok
    assert ok["result"]["orderLinkId"] == body["orderLinkId"]
    bad = sf.flip_byte(signed.body, b'"qty":"0.01"', b'"qty":"0.02"')
    assert sf.send(signed, body=bad).json()["retCode"] == 10004
    wired.venues.bybit.clock = lambda: sf.now_ms() + WINDOW_MS + 1000
    assert sf.send(signed).json()["retCode"] == 10002


# --- OKX -------------------------------------------------------------------------------------
def test_okx_signature_passphrase_and_stub(wired: Wired) -> None:
    key = sf.okx()
    response, _ctx, before, after = _signed(wired, key, "ok")
    signed = response.signed_request
    assert signed.method == "POST"
    assert signed.url == wired.venues.okx.base_url + "/api/v5/trade/order"
    headers = sf.header_map(signed)
    ts = headers["OK-ACCESS-TIMESTAMP"]
    prehash = f"{ts}POST/api/v5/trade/order".encode() + signed.body
    expected = base64.b64encode(
        hmac.new(key.secret_text.encode(), prehash, hashlib.sha256).digest()
    ).decode()
    assert hmac.compare_digest(headers["OK-ACCESS-SIGN"], expected)
    assert headers["OK-ACCESS-KEY"] == key.api_key
    # OKX's protocol sends the passphrase itself (documented, warned about at onboarding).
    assert headers["OK-ACCESS-PASSPHRASE"] == key.material.passphrase
    assert "x-simulated-trading" not in headers  # a live key
    body = json.loads(signed.body)
    assert (body["instId"], body["tdMode"], body["side"], body["ordType"], body["sz"]) == (
        "BTC-USDT", "cash", "buy", "limit", "0.01",
    )  # fmt: skip
    signed_ms = int(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    _assert_fresh(signed, signed_ms, before, after)
    assert int(headers["expTime"]) == sf.expire_ms(signed)

    ok = sf.send(signed).json()
    assert ok["code"] == "0" and ok["data"][0]["clOrdId"] == body["clOrdId"], ok
    bad = sf.flip_byte(signed.body, b'"sz":"0.01"', b'"sz":"0.02"')
    assert sf.send(signed, body=bad).json()["code"] == "50113"
    wired.venues.okx.clock = lambda: sf.now_ms() + 31_000
    assert sf.send(signed).json()["code"] == "50102"


# --- Coinbase --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("algorithm", "alg"),
    [(B.KEY_ALGORITHM_ECDSA_P256, "ES256"), (B.KEY_ALGORITHM_ED25519, "EdDSA")],
)
def test_coinbase_jwt_verifies_with_the_public_key(wired: Wired, algorithm: int, alg: str) -> None:
    key = sf.coinbase(algorithm)
    response, _ctx, before, after = _signed(wired, key, "cb")
    signed = response.signed_request
    path = "/api/v3/brokerage/orders"
    assert signed.method == "POST" and signed.url == wired.venues.coinbase.base_url + path
    scheme, _, token = sf.header_map(signed)["Authorization"].partition(" ")
    assert scheme == "Bearer"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg and header["kid"] == key.api_key and header["typ"] == "JWT"
    assert len(header["nonce"]) >= 16
    claims = jwt.decode(token, key.public, algorithms=[alg], options={"require": ["exp", "nbf"]})
    assert claims["sub"] == key.api_key and claims["iss"] == "cdp"
    assert claims["uri"] == f"POST api.coinbase.com{path}"
    with pytest.raises(jwt.InvalidSignatureError):
        other = sf.coinbase(algorithm).public
        jwt.decode(token, other, algorithms=[alg])
    body = json.loads(signed.body)
    assert body["product_id"] == "BTC-USD" and body["side"] == "BUY"
    assert body["order_configuration"] == {
        "limit_limit_gtc": {"base_size": "0.01", "limit_price": "30000", "post_only": False}
    }
    # The JWT lives Coinbase's 120 s (the venue module's fixed lifetime, not the vault window).
    assert before // 1000 - 1 <= claims["nbf"] <= after // 1000
    assert sf.expire_ms(signed) == claims["exp"] * 1000 <= after + 120_000

    ok = sf.send(signed).json()
    assert (
        ok["success"] is True
        and ok["success_response"]["client_order_id"] == body["client_order_id"]
    )
    # The token binds method, host and path: another path is refused ...
    wrong = signed.url.replace("/orders", "/orders/preview")
    refused = sf.send(signed, url=wrong)
    assert refused.status_code == 401 and "uri" in refused.json()["message"]
    # ... but nothing binds the body (reference §4.3): why strict mode proxies Coinbase.
    swapped = sf.flip_byte(signed.body, b'"base_size":"0.01"', b'"base_size":"0.09"')
    assert sf.send(signed, body=swapped).json()["success"] is True
    wired.venues.coinbase.clock = lambda: sf.now_ms() + 121_000
    expired = sf.send(signed)
    assert expired.status_code == 401 and expired.json()["message"] == "token expired"
