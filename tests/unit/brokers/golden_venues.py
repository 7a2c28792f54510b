"""Golden cases for every venue module: what each builds, refuses and parses, byte for byte.

``python tests/unit/brokers/golden_venues.py --record`` writes ``golden/venues.json`` from the
code as it is; ``test_golden_venues.py`` recomputes every case and compares. The file pins the
exact ``PreparedRequest`` (method, URL, headers, body, expiry) of every operation, key algorithm,
environment and freshness variant each venue supports, the errors of the orders it refuses, its
endpoint allow-list verdicts, its scope vocabulary and how it reads permission answers, so a
refactor of the venue modules can be checked to change nothing a caller or a venue can see.

Every credential here is generated from fixed seeds (HMAC secrets read ``golden-test-secret-…``;
Ed25519, RSA and EC keys are derived from SHA-256 of a label). None is, or was ever, a real key.
ES256 signatures are randomised by design, so for ECDSA keys the JWT signature is verified
against the derived public key and recorded as ``<es256-verified>``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from vault_server.brokers._http_common import RedactedHeader
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    ProtectiveLevel,
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueAdapter,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.registry import adapter_for
from vault_server.brokers.schemes import eip712_agent
from vault_server.core.errors import VaultError
from vault_server.core.secret import Secret

GOLDEN = Path(__file__).parent / "golden" / "venues.json"
SEED = "pipvault-golden-v1"


# --- deterministic, obviously fake credentials -------------------------------------------------
def _digest(label: str) -> bytes:
    return hashlib.sha256(f"{SEED}:{label}".encode()).digest()


def fake_secret(label: str) -> bytes:
    return f"golden-test-secret-{label}-{_digest(label).hex()[:16]}".encode()


def _pem(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ed25519_key(label: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(_digest(f"ed25519:{label}"))


def ec_key(label: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(_digest(f"p256:{label}")), ec.SECP256R1())


def _probable_prime(n: int) -> bool:
    if n < 2 or any(n % p == 0 for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)):
        return n in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def rsa_key(label: str) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key from a seeded PRNG (never use this construction outside tests)."""
    rng = random.Random(_digest(f"rsa:{label}"))
    e = 65537

    def prime() -> int:
        while True:
            candidate = rng.getrandbits(1024) | (1 << 1023) | (1 << 1022) | 1
            if candidate % e != 1 and _probable_prime(candidate):
                return candidate

    p, q = prime(), prime()
    p, q = max(p, q), min(p, q)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
        rsa.RSAPublicNumbers(e, p * q),
    )  # fmt: skip
    return numbers.private_key()


ED_KEY = ed25519_key("venue")
RSA_KEY = rsa_key("venue")
EC_KEY = ec_key("coinbase")
KRAKEN_SECRET = base64.b64encode(b"golden-test-secret-kraken-" + _digest("kraken") * 2)
COINBASE_SEED_B64 = base64.b64encode(_digest("ed25519:venue"))
COINBASE_SEED_PUB_B64 = base64.b64encode(
    _digest("ed25519:venue")
    + ED_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
)


def credential(venue: Venue, algorithm: KeyAlgorithm, env: Environment, form: str = "") -> Any:
    api_key = f"golden-test-api-key-{venue.value}"
    secret: bytes | None = fake_secret(venue.value)
    pem: bytes | None = None
    passphrase: bytes | None = None
    account: str | None = None
    if algorithm is KeyAlgorithm.HMAC_SHA512:
        secret = KRAKEN_SECRET
    elif algorithm is KeyAlgorithm.ED25519:
        secret = None
        pem = _pem(ED_KEY)
        if form == "seed":
            secret, pem = COINBASE_SEED_B64, None
        elif form == "seed+public":
            secret, pem = COINBASE_SEED_PUB_B64, None
    elif algorithm is KeyAlgorithm.RSA:
        secret, pem = None, _pem(RSA_KEY)
    elif algorithm is KeyAlgorithm.ECDSA_P256:
        secret, pem = None, _pem(EC_KEY)
    elif algorithm is KeyAlgorithm.SECP256K1:  # Hyperliquid agent key (hex), master account
        secret, pem = None, _digest("secp256k1:venue").hex().encode()
        api_key = eip712_agent.address_of(Secret(pem)).lower()
        account = "0x" + _digest("hyperliquid-master").hex()[:40]
    if venue in (Venue.OKX, Venue.BITGET, Venue.KUCOIN):
        passphrase = b"golden-test-passphrase"
    if venue is Venue.OANDA:
        account, api_key = "101-004-1234567-001", ""
    if venue is Venue.ALPACA:
        api_key = "GOLDENTESTKEYID00001"
    username: str | None = None
    server: str | None = None
    if venue is Venue.IG:
        account, username = "ABC123", "golden-user"
    if venue is Venue.MATCH_TRADER:
        account, username, server = "77001", "golden@example.test", "golden-broker"
        api_key = username
    if venue is Venue.METAAPI:
        account, server = "865d3a4d-3803-486d-bdf3-a85679d9fad2", "london"
    if venue is Venue.TRADELOCKER:
        account, api_key, username, server = "1001", "1", "golden@example.test", "GOLDEN-DEMO"
    if venue is Venue.DXTRADE:  # a login (username, domain, password) and an account code
        account, api_key, username, server = "default:golden", "", "golden", "default"
    if venue is Venue.CTRADER:  # OAuth consent: the ctidTraderAccountId (tokens come later)
        account, api_key = "1001", "1001"
    return VenueCredential(
        venue=venue, environment=env, algorithm=algorithm, api_key=api_key,
        secret=Secret(secret) if secret is not None else None,
        passphrase=Secret(passphrase) if passphrase is not None else None,
        private_key_pem=Secret(pem) if pem is not None else None, account_id=account,
        username=username, server=server,
    )  # fmt: skip


# --- contexts and orders ------------------------------------------------------------------------
NOW = 1_700_000_000_123
CTX = SigningContext(
    now_ms=NOW, recv_window_ms=5000, nonce=1_700_000_000_123_000,
    random_hex="0123456789abcdef0123456789abcdef",
)  # fmt: skip
CTX_VARIANTS: dict[str, SigningContext] = {
    "window45s": dataclasses.replace(CTX, recv_window_ms=45_000),
    "window1ms": dataclasses.replace(CTX, recv_window_ms=1),
    "window0": dataclasses.replace(CTX, recv_window_ms=0),
    "window60001": dataclasses.replace(CTX, recv_window_ms=60_001),
    "loopback": dataclasses.replace(CTX, base_url="http://127.0.0.1:8080/"),
    "no_nonce": dataclasses.replace(CTX, nonce=None),
    "no_clock": dataclasses.replace(CTX, now_ms=0),
    "bad_random": dataclasses.replace(CTX, random_hex="zz"),
    "odd_ms": dataclasses.replace(CTX, now_ms=1_700_000_000_007),
}

SYMBOL = {
    Venue.BINANCE_SPOT: "BTCUSDT", Venue.BINANCE_USDM: "BTCUSDT", Venue.KRAKEN_SPOT: "XBTUSD",
    Venue.BYBIT: "BTCUSDT", Venue.OKX: "BTC-USDT", Venue.COINBASE_ADVANCED: "BTC-USD",
    Venue.OANDA: "EUR_USD", Venue.ALPACA: "AAPL", Venue.IG: "CS.D.EURUSD.CFD.IP",
    Venue.BITGET: "BTCUSDT", Venue.DERIBIT: "BTC-PERPETUAL",
    Venue.KRAKEN_FUTURES: "PF_XBTUSD",
    Venue.GATE: "BTC_USDT", Venue.KUCOIN: "BTC-USDT", Venue.HYPERLIQUID: "4",
    Venue.MATCH_TRADER: "EURUSD", Venue.METAAPI: "EURUSD", Venue.TRADELOCKER: "206:452",
    Venue.DXTRADE: "EUR/USD", Venue.CTRADER: "EURUSD",
}  # fmt: skip
VENUE_ID = {
    Venue.KRAKEN_SPOT: "OQCLML-BW3P3-BUCMWZ",
    Venue.COINBASE_ADVANCED: "0b2a1c9e-5f4d-4c3b-9a8e-7d6f5e4c3b2a",
    Venue.ALPACA: "904837e3-3b76-47ec-b432-046db621571b",
}
D = Decimal
P, C, A, Q, OO, ACC = (Operation.PLACE_ORDER, Operation.CANCEL_ORDER, Operation.AMEND_ORDER,
                       Operation.QUERY_ORDER, Operation.QUERY_OPEN_ORDERS,
                       Operation.QUERY_ACCOUNT)  # fmt: skip
B, S = Side.BUY, Side.SELL
M, L, SL, SLL, TP, TPL = (OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_LOSS,
                          OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT,
                          OrderType.TAKE_PROFIT_LIMIT)  # fmt: skip
T = TimeInForce
PL = ProtectiveLevel
CP, AP, QP = Operation.CLOSE_POSITION, Operation.AMEND_POSITION, Operation.QUERY_POSITIONS

# fmt: off
# (name, fields); "$S" is the venue's symbol, "$V" its venue order id.
GENERIC: list[tuple[str, dict[str, Any]]] = [
    ("market-buy", {"operation": P, "side": B, "order_type": M, "quantity": D("0.5")}),
    ("market-sell", {"operation": P, "side": S, "order_type": M, "quantity": D("0.5")}),
    ("market-buy-quote", {"operation": P, "side": B, "order_type": M, "quote_quantity": D("100")}),
    ("market-sell-quote", {"operation": P, "side": S, "order_type": M,
                           "quote_quantity": D("100")}),
    ("market-ioc", {"operation": P, "side": B, "order_type": M, "quantity": D("2"),
                    "time_in_force": T.IOC}),
    ("market-fok", {"operation": P, "side": S, "order_type": M, "quantity": D("2"),
                    "time_in_force": T.FOK}),
    ("market-day", {"operation": P, "side": B, "order_type": M, "quantity": D("2"),
                    "time_in_force": T.DAY}),
    ("market-with-price", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                           "price": D("10")}),
    ("limit-buy", {"operation": P, "side": B, "order_type": L, "quantity": D("1.25"),
                   "price": D("37500")}),
    ("limit-gtc", {"operation": P, "side": S, "order_type": L, "quantity": D("1E+3"),
                   "price": D("0.10"), "time_in_force": T.GTC}),
    ("limit-ioc", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                   "price": D("2"), "time_in_force": T.IOC}),
    ("limit-fok", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                   "price": D("2"), "time_in_force": T.FOK}),
    ("limit-gtd", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                   "price": D("2"), "time_in_force": T.GTD}),
    ("limit-day", {"operation": P, "side": S, "order_type": L, "quantity": D("1"),
                   "price": D("2"), "time_in_force": T.DAY}),
    ("limit-quote", {"operation": P, "side": B, "order_type": L, "quote_quantity": D("5"),
                     "price": D("2")}),
    ("limit-cid", {"operation": P, "side": B, "order_type": L, "quantity": D("3"),
                   "price": D("4"), "client_order_id": "goldencid1"}),
    ("limit-cid-dashed", {"operation": P, "side": B, "order_type": L, "quantity": D("3"),
                          "price": D("4"), "client_order_id": "golden-cid_1"}),
    ("market-cid", {"operation": P, "side": S, "order_type": M, "quantity": D("3"),
                    "client_order_id": "goldencid2"}),
    ("stop-loss-buy", {"operation": P, "side": B, "order_type": SL, "quantity": D("1"),
                       "stop_price": D("40000"), "client_order_id": "goldencid3"}),
    ("stop-loss-sell", {"operation": P, "side": S, "order_type": SL, "quantity": D("1"),
                        "stop_price": D("30000"), "client_order_id": "goldencid3"}),
    ("stop-limit-sell", {"operation": P, "side": S, "order_type": SLL, "quantity": D("1"),
                         "price": D("30000"), "stop_price": D("31000"),
                         "client_order_id": "goldencid4"}),
    ("stop-limit-buy-gtd", {"operation": P, "side": B, "order_type": SLL, "quantity": D("1"),
                            "price": D("30000"), "stop_price": D("31000"),
                            "time_in_force": T.GTD, "client_order_id": "goldencid4"}),
    ("take-profit-sell", {"operation": P, "side": S, "order_type": TP, "quantity": D("1"),
                          "stop_price": D("50000"), "client_order_id": "goldencid5"}),
    ("take-profit-limit-buy", {"operation": P, "side": B, "order_type": TPL, "quantity": D("1"),
                               "price": D("20000"), "stop_price": D("21000"),
                               "client_order_id": "goldencid6"}),
    ("no-side", {"operation": P, "order_type": M, "quantity": D("1")}),
    ("no-type", {"operation": P, "side": B, "quantity": D("1")}),
    ("no-size", {"operation": P, "side": B, "order_type": M}),
    ("both-sizes", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                    "quote_quantity": D("1")}),
    ("negative", {"operation": P, "side": B, "order_type": M, "quantity": D("-1")}),
    ("no-symbol", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                   "symbol": None}),
    ("bad-symbol", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                    "symbol": " BTC\n"}),
    ("unknown-extra", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                       "extras": {"withdrawAll": "true"}}),
    ("bad-cid", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                 "client_order_id": "no spaces allowed"}),
    ("cancel-venue-id", {"operation": C, "venue_order_id": "$V"}),
    ("cancel-client-id", {"operation": C, "client_order_id": "goldencid1"}),
    ("cancel-both-ids", {"operation": C, "venue_order_id": "$V", "client_order_id": "goldencid1"}),
    ("cancel-no-id", {"operation": C}),
    ("cancel-bad-id", {"operation": C, "venue_order_id": "../../x"}),
    ("cancel-extras", {"operation": C, "venue_order_id": "$V", "extras": {"x": "y"}}),
    ("amend-qty", {"operation": A, "venue_order_id": "$V", "quantity": D("2")}),
    ("amend-price", {"operation": A, "venue_order_id": "$V", "price": D("3")}),
    ("amend-qty-price", {"operation": A, "venue_order_id": "$V", "quantity": D("2"),
                         "price": D("3")}),
    ("amend-qty-price-side", {"operation": A, "venue_order_id": "$V", "quantity": D("2"),
                              "price": D("3"), "side": S}),
    ("amend-stop", {"operation": A, "venue_order_id": "$V", "stop_price": D("5"),
                    "quantity": D("2")}),
    ("amend-client-id", {"operation": A, "client_order_id": "goldencid1", "quantity": D("2"),
                         "price": D("3"), "side": B}),
    ("amend-nothing", {"operation": A, "venue_order_id": "$V"}),
    ("amend-tif", {"operation": A, "venue_order_id": "$V", "quantity": D("2"),
                   "time_in_force": T.GTC, "client_order_id": "goldencid9"}),
    ("query-venue-id", {"operation": Q, "venue_order_id": "$V"}),
    ("query-client-id", {"operation": Q, "client_order_id": "goldencid1"}),
    ("query-no-id", {"operation": Q}),
    ("open-orders", {"operation": OO, "symbol": None}),
    ("open-orders-symbol", {"operation": OO}),
    ("account", {"operation": ACC, "symbol": None}),
    ("account-extras", {"operation": ACC, "symbol": None, "extras": {"ccy": "BTC"}}),
    # Protective orders and positions: refused by every venue without ``protective_orders``.
    ("limit-stop-loss", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                         "price": D("2"), "client_order_id": "goldencid2",
                         "stop_loss": PL(price=D("1.5")), "take_profit": PL(price=D("3"))}),
    ("close-position", {"operation": CP, "position_id": "12345", "client_order_id": "goldencid3"}),
    ("close-position-part", {"operation": CP, "position_id": "12345", "quantity": D("0.5"),
                             "client_order_id": "goldencid4"}),
    ("amend-position", {"operation": AP, "position_id": "12345", "client_order_id": "goldencid5",
                        "stop_loss": PL(distance=D("0.25"))}),
    ("query-positions", {"operation": QP, "symbol": None}),
]

# Venue-specific orders (same shape as GENERIC).
SPECIFIC: dict[Venue, list[tuple[str, dict[str, Any]]]] = {
    Venue.BINANCE_SPOT: [
        ("extras", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                    "price": D("2"), "extras": {"newOrderRespType": "FULL",
                                                "icebergQty": "0.1", "strategyId": "7"}}),
        ("reserved-extra", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                            "extras": {"timestamp": "1"}}),
        ("utf8-symbol", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                         "symbol": "币安币USDT"}),
        ("non-numeric-id", {"operation": C, "venue_order_id": "abc"}),
    ],
    Venue.BINANCE_USDM: [
        ("gtd", {"operation": P, "side": B, "order_type": L, "quantity": D("1"), "price": D("2"),
                 "time_in_force": T.GTD, "extras": {"goodTillDate": "1700000600000"}}),
        ("extras", {"operation": P, "side": S, "order_type": SL, "quantity": D("1"),
                    "stop_price": D("2"), "extras": {"reduceOnly": "true",
                                                     "positionSide": "BOTH",
                                                     "workingType": "MARK_PRICE"}}),
    ],
    Venue.KRAKEN_SPOT: [
        ("oflags", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                    "price": D("2"), "extras": {"oflags": "post,fciq", "userref": "-12"}}),
        ("oflags-quote", {"operation": P, "side": B, "order_type": M,
                          "quote_quantity": D("50"), "extras": {"oflags": "post"}}),
        ("viqc-extra", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                        "extras": {"oflags": "viqc"}}),
        ("dup-oflags", {"operation": P, "side": B, "order_type": M, "quantity": D("1"),
                        "extras": {"oflags": "post,post"}}),
        ("amend-post-only", {"operation": A, "venue_order_id": "$V", "quantity": D("2"),
                             "extras": {"post_only": "true"}}),
        ("amend-cid-only", {"operation": A, "client_order_id": "goldencid1",
                            "price": D("2")}),
        ("vector", {"operation": P, "symbol": "XBTUSD", "side": B, "order_type": L,
                    "quantity": D("1.25"), "price": D("37500")}),
    ],
    Venue.BYBIT: [],
    Venue.OKX: [
        ("swap", {"operation": P, "side": B, "order_type": L, "quantity": D("3"),
                  "price": D("2"), "symbol": "BTC-USDT-SWAP",
                  "extras": {"tdMode": "cross", "posSide": "long", "reduceOnly": "false"}}),
        ("post-only", {"operation": P, "side": B, "order_type": L, "quantity": D("3"),
                       "price": D("2"), "extras": {"postOnly": "true"}}),
        ("post-only-ioc", {"operation": P, "side": B, "order_type": L, "quantity": D("3"),
                           "price": D("2"), "time_in_force": T.IOC,
                           "extras": {"postOnly": "true"}}),
        ("margin-market-buy", {"operation": P, "side": B, "order_type": M, "quantity": D("3"),
                               "extras": {"tdMode": "cross"}}),
        ("margin-market-buy-quote", {"operation": P, "side": B, "order_type": M,
                                     "quote_quantity": D("3"), "extras": {"tdMode": "cross"}}),
        ("margin-market-sell-quote", {"operation": P, "side": S, "order_type": M,
                                      "quote_quantity": D("3"),
                                      "extras": {"tdMode": "isolated"}}),
        ("margin-market-sell", {"operation": P, "side": S, "order_type": M,
                                "quantity": D("3"), "extras": {"tdMode": "isolated"}}),
        ("amend-extras", {"operation": A, "venue_order_id": "$V", "quantity": D("2"),
                          "extras": {"cxlOnFail": "true", "reqId": "r1"}}),
        ("open-extras", {"operation": OO, "extras": {"instType": "SPOT"}}),
    ],
    Venue.COINBASE_ADVANCED: [
        ("gtd", {"operation": P, "side": B, "order_type": L, "quantity": D("1"), "price": D("2"),
                 "time_in_force": T.GTD, "client_order_id": "goldencid7",
                 "extras": {"end_time": "2023-11-14T22:20:00Z"}}),
        ("post-only", {"operation": P, "side": S, "order_type": L, "quantity": D("1"),
                       "price": D("2"), "client_order_id": "goldencid7",
                       "extras": {"post_only": "true"}}),
        ("post-only-market", {"operation": P, "side": S, "order_type": M, "quantity": D("1"),
                              "client_order_id": "goldencid7",
                              "extras": {"post_only": "false"}}),
        ("quote-cid", {"operation": P, "side": B, "order_type": M, "quote_quantity": D("10"),
                       "client_order_id": "goldencid8"}),
        ("tp-limit-gtd", {"operation": P, "side": S, "order_type": TPL, "quantity": D("1"),
                          "price": D("2"), "stop_price": D("3"), "time_in_force": T.GTD,
                          "client_order_id": "goldencid7",
                          "extras": {"end_time": "2023-11-14T22:20:00.5Z"}}),
        ("sll-ioc", {"operation": P, "side": S, "order_type": SLL, "quantity": D("1"),
                     "price": D("2"), "stop_price": D("3"), "time_in_force": T.IOC,
                     "client_order_id": "goldencid7"}),
    ],
    Venue.OANDA: [
        ("gtd", {"operation": P, "side": S, "order_type": L, "quantity": D("1000"),
                 "price": D("1.1"), "time_in_force": T.GTD,
                 "extras": {"gtdTime": "2023-11-14T22:20:00Z", "positionFill": "REDUCE_ONLY",
                            "triggerCondition": "MID"}}),
        ("trigger-market", {"operation": P, "side": S, "order_type": M, "quantity": D("1000"),
                            "extras": {"triggerCondition": "MID"}}),
        ("bad-instrument", {"operation": P, "side": S, "order_type": M, "quantity": D("1"),
                            "symbol": "EURUSD"}),
        ("cancel-client-at", {"operation": C, "client_order_id": "golden:cid-1"}),
    ],
    Venue.ALPACA: [
        ("extended", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                      "price": D("2"), "time_in_force": T.DAY,
                      "extras": {"extended_hours": "true"}}),
        ("amend-extras", {"operation": A, "venue_order_id": "$V", "quantity": D("2"),
                          "extras": {"extended_hours": "true"}}),
        ("non-uuid", {"operation": Q, "venue_order_id": "12345"}),
    ],
    Venue.IG: [],
    Venue.MATCH_TRADER: [],
    Venue.METAAPI: [],
    Venue.TRADELOCKER: [],
    Venue.DXTRADE: [],
    Venue.CTRADER: [],
    Venue.DERIBIT: [
        ("account-currency", {"operation": ACC, "symbol": None, "extras": {"currency": "BTC"}}),
        ("reduce-only", {"operation": P, "side": S, "order_type": M, "quantity": D("1"),
                         "extras": {"reduce_only": "true"}}),
    ],
    Venue.BITGET: [
        ("futures-limit", {"operation": P, "side": B, "order_type": L, "quantity": D("2"),
                           "price": D("3"), "extras": {"productType": "USDT-FUTURES",
                           "marginMode": "crossed", "marginCoin": "USDT"}}),
        ("futures-open-orders", {"operation": OO, "extras": {"productType": "USDT-FUTURES"}}),
        ("post-only", {"operation": P, "side": S, "order_type": L, "quantity": D("1"),
                       "price": D("9"), "extras": {"postOnly": "true"}}),
    ],
    Venue.KRAKEN_FUTURES: [
        ("post-only", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                       "price": D("2"), "extras": {"post_only": "true", "reduceOnly": "false"}}),
        ("stop-mark", {"operation": P, "side": S, "order_type": SL, "quantity": D("1"),
                       "stop_price": D("3"), "extras": {"triggerSignal": "mark"}}),
    ],
    Venue.HYPERLIQUID: [
        ("limit-asset", {"operation": P, "symbol": "4", "side": B, "order_type": L,
                         "quantity": D("0.0147"), "price": D("1670.1"), "extras": {"asset": "4"},
                         "client_order_id": "0x00000000000000000000000000000001"}),
        ("post-only-vault", {"operation": P, "symbol": "4", "side": S, "order_type": L,
                             "quantity": D("1"), "price": D("2"),
                             "extras": {"asset": "4", "post_only": "true",
                                        "vaultAddress": "0x" + "1f" * 20}}),
        ("stop-market-asset", {"operation": P, "symbol": "4", "side": S, "order_type": SL,
                               "quantity": D("1"), "price": D("2"), "stop_price": D("3"),
                               "extras": {"asset": "4", "reduceOnly": "true"}}),
        ("cancel-oid", {"operation": C, "venue_order_id": "77", "extras": {"asset": "4"}}),
        ("cancel-cloid", {"operation": C, "client_order_id": "0x" + "0a" * 16,
                          "extras": {"asset": "4"}}),
        ("amend-oid", {"operation": A, "symbol": "4", "venue_order_id": "77", "side": B,
                       "order_type": L, "quantity": D("2"), "price": D("3"),
                       "extras": {"asset": "4"}}),
        ("query-cloid", {"operation": Q, "client_order_id": "0x" + "0a" * 16}),
    ],
    Venue.GATE: [
        ("market-buy-quote", {"operation": P, "side": B, "order_type": M,
                              "quote_quantity": D("25")}),
        ("post-only", {"operation": P, "side": S, "order_type": L, "quantity": D("1"),
                       "price": D("2"), "extras": {"postOnly": "true", "account": "unified"}}),
        ("client-id-target", {"operation": C, "client_order_id": "t-abc"}),
    ],
    Venue.KUCOIN: [
        ("market-funds", {"operation": P, "side": S, "order_type": M,
                          "quote_quantity": D("25")}),
        ("post-only", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                       "price": D("2"), "extras": {"postOnly": "true", "stp": "CN"}}),
        ("client-id-target", {"operation": Q, "client_order_id": "abc-1"}),
    ],
}

# Bybit needs the product line as an extra on every order operation.
BYBIT_EXTRAS: list[tuple[str, dict[str, str]]] = [
    ("", {}), ("spot", {"category": "spot"}), ("linear", {"category": "linear"}),
    ("inverse", {"category": "inverse"}),
]
BYBIT_MORE: list[tuple[str, dict[str, Any]]] = [
    ("place-extras", {"operation": P, "side": B, "order_type": L, "quantity": D("1"),
                      "price": D("2"), "extras": {"category": "linear", "positionIdx": "1",
                                                  "reduceOnly": "true", "smpType": "CancelBoth",
                                                  "triggerBy": "MarkPrice"}}),
    ("open-extras", {"operation": OO, "symbol": None,
                     "extras": {"category": "linear", "settleCoin": "USDT",
                                "baseCoin": "BTC"}}),
    ("account-type", {"operation": ACC, "symbol": None, "extras": {"accountType": "CONTRACT"}}),
    ("account-bad-type", {"operation": ACC, "symbol": None, "extras": {"accountType": "FUND"}}),
]


# fmt: on


def orders_for(venue: Venue) -> Iterator[tuple[str, OrderSpec]]:
    cases = GENERIC + SPECIFIC[venue]
    if venue is Venue.BYBIT:
        cases = [
            (f"{name}{'+' + label if label else ''}",
             fields | {"extras": {**fields.get("extras", {}), **extra}})
            for name, fields in GENERIC for label, extra in BYBIT_EXTRAS
        ] + BYBIT_MORE  # fmt: skip
    for name, fields in cases:
        values = dict(fields)
        values.setdefault("symbol", SYMBOL[venue])
        for key in ("venue_order_id",):
            if values.get(key) == "$V":
                values[key] = VENUE_ID.get(venue, "12345")
        yield name, OrderSpec(**values)


# --- adapters -----------------------------------------------------------------------------------
def implemented() -> tuple[Venue, ...]:
    """The venues with a module (the planned ones are refused by the registry)."""
    from vault_server.brokers import registry

    return tuple(getattr(registry, "supported_venues", lambda: tuple(Venue))())


def adapters() -> dict[str, tuple[Venue, VenueAdapter]]:
    try:
        from vault_server.brokers.venues import binance_spot, binance_usdm, kraken
    except ImportError:  # the layout before venue specs (to re-record from that code)
        from vault_server.brokers import binance_spot, binance_usdm, kraken  # type: ignore

    out: dict[str, tuple[Venue, VenueAdapter]] = {}
    for venue in implemented():
        out[venue.value] = (venue, adapter_for(venue))
    out["binance_spot+body"] = (
        Venue.BINANCE_SPOT,
        binance_spot.BinanceSpotAdapter(body_params=True),
    )
    out["binance_usdm+body"] = (
        Venue.BINANCE_USDM,
        binance_usdm.BinanceUsdmAdapter(body_params=True),
    )
    out["kraken_spot-deadline"] = (
        Venue.KRAKEN_SPOT,
        kraken.KrakenSpotAdapter(order_deadline=False),
    )
    out["coinbase_advanced+strict"] = (
        Venue.COINBASE_ADVANCED, adapter_for(Venue.COINBASE_ADVANCED, coinbase_strict=True)
    )  # fmt: skip
    return out


# Orders built with every further key type (the signature, not the mapping, differs).
KEY_SUBSET = frozenset(
    {
        "market-buy",
        "limit-cid",
        "limit-cid-dashed",
        "cancel-venue-id",
        "amend-qty-price-side",
        "query-venue-id",
        "open-orders-symbol",
        "account",
        "market-buy-quote",
        "vector",
    }
)


def key_forms(venue: Venue, adapter: VenueAdapter) -> list[tuple[str, KeyAlgorithm, str]]:
    forms = [(alg.value, alg, "") for alg in sorted(adapter.algorithms, key=lambda a: a.value)]
    if venue is Venue.COINBASE_ADVANCED:
        forms += [("ed25519-seed", KeyAlgorithm.ED25519, "seed"),
                  ("ed25519-seed+public", KeyAlgorithm.ED25519, "seed+public")]  # fmt: skip
    if not forms:
        forms = [("none", KeyAlgorithm.HMAC_SHA256, "")]
    return forms


# --- recording ----------------------------------------------------------------------------------
def error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, VaultError):
        return {"error": type(exc).__name__, "reason": exc.reason, "message": exc.message,
                "metadata": dict(sorted(exc.metadata.items()))}  # fmt: skip
    return {"error": type(exc).__name__, "message": str(exc)}


def _es256_checked(value: str) -> str:
    scheme, _, token = value.partition(" ")
    head, claims, _sig = token.split(".")
    jwt.decode(token, EC_KEY.public_key(), algorithms=["ES256"],
               options={"verify_exp": False, "verify_nbf": False})  # fmt: skip
    return f"{scheme} {head}.{claims}.<es256-verified>"


def request(prepared: PreparedRequest | None, algorithm: KeyAlgorithm) -> Any:
    """The request as data; a header whose value is a ``RedactedHeader`` is marked ``secret``."""
    if prepared is None:
        return None
    headers = []
    for name, value in prepared.headers:
        text = str(value)
        if algorithm is KeyAlgorithm.ECDSA_P256 and name == "Authorization":
            text = _es256_checked(text)
        kind = "secret" if isinstance(value, RedactedHeader) else type(value).__name__
        headers.append([name, text, kind])
    return {
        "method": prepared.method, "url": prepared.url, "headers": headers,
        "body": prepared.body.decode("latin-1"), "expire_at_ms": prepared.expire_at_ms,
    }  # fmt: skip


def attempt(call: Callable[[], Any], algorithm: KeyAlgorithm) -> Any:
    try:
        result = call()
    except Exception as exc:  # recorded as data: the refactor must refuse alike
        return error(exc)
    return request(result, algorithm)


ENDPOINT_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "get")
EXTRA_PATHS = [
    "/api/v3/order?symbol=X",
    "/sapi/v1/capital/withdraw/apply",
    "/sapi/v1/asset/transfer",
    "/sapi/v1/account/apiRestrictions/ipRestriction",
    "/api/v3/%77ithdraw",
    "/api/v3/order/",
    "/API/V3/ORDER",
    "/0/private/Withdraw",
    "/0/private/WalletTransfer",
    "/0/public/Time",
    "/0/private/addorder",
    "/0/private/",
    "/v5/asset/transfer/inter-transfer",
    "/v5/user/create-sub-api",
    "/v5/user/query-api?x=1",
    "/api/v5/asset/transfer",
    "/api/v5/users/subaccount/list",
    "/api/v5/trade/order?instId=BTC-USDT",
    "/api/v3/brokerage/orders/historical/abc-123",
    "/api/v3/brokerage/orders/historical/a_b",
    "/api/v3/brokerage/accounts/0b2a1c9e-5f4d",
    "/api/v3/brokerage/portfolios/move_funds",
    "/v2/accounts/x/transactions",
    "/v3/accounts/101-004-1234567-001/orders",
    "/v3/accounts/101-004-1234567-001/orders/123",
    "/v3/accounts/101-004-1234567-001/orders/@c",
    "/v3/accounts/101-004-1234567-001/orders/123/cancel",
    "/v3/accounts/101-004-1234567-001/pendingOrders",
    "/v3/accounts/101-004-1234567-001/summary",
    "/v3/accounts/101-004-1234567-001/orders/123/clientExtensions",
    "/v3/accounts/101-004-1234567-001/configuration",
    "/v3/accounts/1-2-3/orders",
    "/v2/orders/904837e3-3b76-47ec-b432-046db621571b",
    "/v2/orders/not-a-uuid",
    "/v2/wallets/transfers",
    "/v2/account/configurations",
    "/v2/positions",
    "/session",
    "/positions/otc",
    "",
]


def endpoint_paths() -> list[str]:
    """Every path any venue allows (from the modules' tables at recording time; the list is kept
    in the golden file, so the check does not depend on those tables) plus hostile variants."""
    from vault_server.brokers.venues import (
        alpaca,
        binance_spot,
        binance_usdm,
        bitget,
        bybit,
        coinbase,
        deribit,
        kraken,
        kraken_futures,
        okx,
    )

    paths: set[str] = set(EXTRA_PATHS)
    for module in (
        binance_spot,
        binance_usdm,
        bybit,
        okx,
        coinbase,
        alpaca,
        bitget,
        deribit,
        kraken_futures,
    ):
        paths |= {path for _, path in module.ALLOWED}
    paths |= {kraken.PRIVATE + name for name in kraken.ALLOWED_METHODS}
    return sorted(paths)


def scope_tokens() -> list[str]:
    tokens: set[str] = {
        "read",
        "trade",
        "withdraw",
        "transfer",
        "",
        "Full Access",
        "wіthdraw",
        "ＷＩＴＨＤＲＡＷ",
        "enable-withdrawals",
        "nonsense",
        "view",
        "wallet",
    }
    for venue in implemented():
        tokens |= set(adapter_for(venue).scope_vocabulary)
    return sorted(tokens)


# fmt: off
PERMISSION_BODIES: dict[Venue, list[tuple[int, bytes]]] = {
    Venue.BINANCE_SPOT: [
        (200, b'{"ipRestrict":false,"createTime":1698645219000,"enableReading":true,'
              b'"enableSpotAndMarginTrading":true,"enableFutures":false,'
              b'"enableWithdrawals":false,"enableInternalTransfer":false,'
              b'"permitsUniversalTransfer":false,"enableMargin":false,'
              b'"enableVanillaOptions":false,"enablePortfolioMarginTrading":false,'
              b'"tradingAuthorityExpirationTime":1628985600000}'),
        (200, b'{"enableReading":true,"enableSpotAndMarginTrading":false,"enableFutures":true,'
              b'"enableWithdrawals":true,"enableInternalTransfer":false,'
              b'"permitsUniversalTransfer":true}'),
        (200, b'{"enableReading":true}'),
        (401, b'{"code":-2015,"msg":"Invalid API-key"}'),
        (200, b"not json"), (200, b"[1]"),
    ],
    Venue.KRAKEN_SPOT: [
        (200, b'{"error":[],"result":{"apiKeyName":"golden","permissions":["query-funds",'
              b'"modify-trades","close-trades","query-open-trades"],"nonceWindow":0,'
              b'"ipAllowlist":["1.2.3.4"],"validUntil":"0","lastUsed":1700000000}}'),
        (200, b'{"error":[],"result":{"permissions":["withdraw-funds","earn-funds",'
              b'"mystery-perm","send-funds"]}}'),
        (200, b'{"error":["EAPI:Invalid key"]}'),
        (200, b'{"error":[],"result":{"permissions":"query-funds"}}'),
    ],
    Venue.BYBIT: [
        (200, b'{"retCode":0,"retMsg":"","result":{"id":"1","note":"golden","apiKey":"k",'
              b'"readOnly":0,"secret":"","permissions":{"ContractTrade":["Order","Position"],'
              b'"Spot":["SpotTrade"],"Wallet":["AccountTransfer"],"Options":[],'
              b'"Derivatives":[],"CopyTrading":[],"BlockTrade":[],"Exchange":[],"NFT":[],'
              b'"Mystery":["Thing"]},"ips":["*"],"type":1,"deadlineDay":83,'
              b'"expiredAt":"2024-01-01T00:00:00Z","createdAt":"2023-01-01T00:00:00Z",'
              b'"unified":0,"uta":1,"isMaster":true}}'),
        (200, b'{"retCode":0,"result":{"readOnly":1,"permissions":{"Spot":["SpotTrade"]}}}'),
        (200, b'{"retCode":10003,"retMsg":"invalid key","result":{}}'),
        (200, b'{"retCode":0,"result":{"readOnly":2,"permissions":{}}}'),
        (200, b'{"retCode":0,"result":{"readOnly":0,"permissions":{"Spot":"SpotTrade"}}}'),
    ],
    Venue.OKX: [
        (200, b'{"code":"0","msg":"","data":[{"acctLv":"2","autoLoan":false,"ctIsoMode":"auto",'
              b'"greeksType":"PA","ip":"","label":"golden","level":"Lv1","mainUid":"44705892343'
              b'619584","perm":"read_only,trade","posMode":"long_short_mode","uid":"447058923436'
              b'19584"}]}'),
        (200, b'{"code":"0","data":[{"perm":"read_only,withdraw,trade,odd"}]}'),
        (200, b'{"code":"50111","msg":"Invalid OK-ACCESS-KEY","data":[]}'),
        (200, b'{"code":"0","data":[{"perm":5}]}'),
    ],
    Venue.COINBASE_ADVANCED: [
        (200, b'{"can_view":true,"can_trade":true,"can_transfer":false,'
              b'"portfolio_uuid":"0b2a1c9e","portfolio_type":"DEFAULT"}'),
        (200, b'{"can_view":true,"can_trade":false,"can_transfer":true}'),
        (200, b'{"can_view":true}'),
        (401, b'{"error":"unauthorized"}'),
    ],
    Venue.OANDA: [(200, b"{}")],
    Venue.ALPACA: [(200, b"{}")],
    Venue.IG: [(200, b"{}")],
    Venue.MATCH_TRADER: [(200, b"{}")],
    Venue.METAAPI: [(200, b"{}")],
    Venue.TRADELOCKER: [(200, b"{}")],
    Venue.DXTRADE: [(200, b"{}")],  # no permission query: refused
    Venue.CTRADER: [(200, b"{}")],  # no permission query: refused
    Venue.GATE: [(200, b"{}")],  # Gate has no permission query: refused
    Venue.KUCOIN: [
        (200, b'{"code":"200000","data":{"remark":"bot","apiKey":"k","apiVersion":3,'
              b'"permission":"General,Spot","ipWhitelist":"","createdAt":1,"uid":1,'
              b'"isMaster":true}}'),
        (200, b'{"code":"200000","data":{"permission":"General,Spot,Withdrawal,InnerTransfer,'
              b'LeadtradeFutures"}}'),
        (200, b'{"code":"400003","msg":"KC-API-KEY not exists"}'),
        (401, b'{"code":"400005","msg":"Invalid KC-API-SIGN"}'),
    ],
    Venue.BINANCE_USDM: [],
    Venue.DERIBIT: [
        (200, b'{"jsonrpc":"2.0","result":{"access_token":"golden-tok","expires_in":900,'
              b'"refresh_token":"golden-ref","scope":"account:read trade:read_write '
              b'wallet:none mainaccount expires:900","token_type":"bearer"}}'),
        (200, b'{"result":{"scope":"trade:read_write wallet:read_write odd:thing"}}'),
        (400, b'{"error":{"code":13004,"message":"invalid_credentials"}}'),
        (200, b'{"result":{"scope":5}}'),
    ],
    Venue.BITGET: [
        (200, b'{"code":"00000","msg":"success","requestTime":1695808949356,"data":{"userId":'
              b'"1","inviterId":"2","ips":"127.0.0.1","authorities":["stor","stow","coow"],'
              b'"parentId":1,"traderType":"not_trader","regisTime":"1246566789345"}}'),
        (200, b'{"code":"00000","data":{"authorities":["trade","readonly","wwow","wtow","zz"]}}'),
        (400, b'{"code":"40009","msg":"sign signature error","data":null}'),
        (200, b'{"code":"00000","data":{"authorities":"stor"}}'),
    ],
    Venue.KRAKEN_FUTURES: [],
    Venue.HYPERLIQUID: [
        (200, b'{"role":"user"}'),
        (200, b'{"role":"missing"}'),
        (200, b'{"role":"agent","data":{"user":"0xabababababababababababababababababababab"}}'),
        (200, b'{"role":"nobody"}'),
        (500, b'{"status":"err"}'),
    ],
}


# fmt: on


def _report(adapter: VenueAdapter, status: int, body: bytes) -> Any:
    try:
        report = adapter.parse_permissions(status, body)
    except Exception as exc:
        return error(exc)
    return {"scopes": sorted(s.value for s in report.scopes),
            "raw": dict(sorted(report.raw.items()))}  # fmt: skip


def venue_record(venue: Venue, adapter: VenueAdapter, paths: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {
            "venue": adapter.venue.value, "proxy_only": adapter.proxy_only,
            "single_permission_tier": adapter.single_permission_tier,
            "needs_nonce": adapter.needs_nonce,
            "algorithms": sorted(a.value for a in adapter.algorithms),
            "generatable": sorted(a.value for a in adapter.generatable),
        },
        "scope_vocabulary": {k: sorted(s.value for s in v)
                             for k, v in sorted(adapter.scope_vocabulary.items())},
    }  # fmt: skip
    urls: dict[str, Any] = {}
    for env in Environment:
        try:
            urls[env.value] = adapter.default_base_url(env)
        except Exception as exc:
            urls[env.value] = error(exc)
        # Where attestation sends the permission query (services/attestation.py reads it so).
        permission_url = getattr(adapter, "permission_base_url", adapter.default_base_url)
        try:
            urls[f"permission:{env.value}"] = permission_url(env)
        except Exception as exc:
            urls[f"permission:{env.value}"] = error(exc)
    out["base_urls"] = urls
    builds: dict[str, Any] = {}
    for index, (label, alg, form) in enumerate(key_forms(venue, adapter)):
        cred = credential(venue, alg, Environment.LIVE, form)
        for order_name, order in orders_for(venue):
            if index and order_name.split("+")[0] not in KEY_SUBSET:
                continue  # the order mapping is pinned with the first key type
            builds[f"{label}|{order_name}"] = attempt(
                lambda o=order, c=cred: adapter.build(o, c, CTX), alg
            )
        first_place = next(o for n, o in orders_for(venue) if n.startswith("limit-cid"))
        first_account = next(o for n, o in orders_for(venue) if n.startswith("account"))
        variants = [(env, "ctx", CTX) for env in Environment] + [
            (Environment.LIVE, name, ctx) for name, ctx in CTX_VARIANTS.items()
        ]
        for env, ctx_name, ctx in variants:
            env_cred = credential(venue, alg, env, form)
            key = f"{label}|{env.value}|{ctx_name}"
            builds[f"{key}|place"] = attempt(
                lambda c=env_cred, x=ctx, o=first_place: adapter.build(o, c, x), alg
            )
            builds[f"{key}|account"] = attempt(
                lambda c=env_cred, x=ctx, o=first_account: adapter.build(o, c, x), alg
            )
            builds[f"{key}|permission"] = attempt(
                lambda c=env_cred, x=ctx: adapter.permission_request(c, x), alg
            )
    wrong = [  # a credential of another venue, and an algorithm this venue refuses
        ("other-venue", dataclasses.replace(
            credential(venue, key_forms(venue, adapter)[0][1], Environment.LIVE),
            venue=Venue.IG if venue is not Venue.IG else Venue.OKX)),
        ("other-algorithm", credential(venue, KeyAlgorithm.SESSION_LOGIN, Environment.LIVE)),
        ("no-secret", dataclasses.replace(
            credential(venue, key_forms(venue, adapter)[0][1], Environment.LIVE),
            secret=None, private_key_pem=None, passphrase=None)),
        ("bad-api-key", dataclasses.replace(
            credential(venue, key_forms(venue, adapter)[0][1], Environment.LIVE),
            api_key="has space")),
        ("empty-secret", dataclasses.replace(
            credential(venue, key_forms(venue, adapter)[0][1], Environment.LIVE),
            secret=Secret(b"x y"), private_key_pem=Secret(b"not a pem"),
            passphrase=Secret(b" pad"))),
    ]  # fmt: skip
    for label, cred in wrong:
        order = next(o for n, o in orders_for(venue) if n.startswith("account"))
        builds[f"{label}|account"] = attempt(lambda c=cred, o=order: adapter.build(o, c, CTX),
                                             cred.algorithm)  # fmt: skip
        builds[f"{label}|permission"] = attempt(
            lambda c=cred: adapter.permission_request(c, CTX), cred.algorithm
        )
    out["builds"] = builds
    # Every (method, path) pair is checked; listed are the allowed ones and any refusal that is
    # not the plain ENDPOINT_NOT_ALLOWED naming that method and path.
    endpoints: dict[str, Any] = {"allowed": [], "other": {}}
    for method in ENDPOINT_METHODS:
        for path in paths:
            try:
                adapter.check_endpoint(method, path)
                endpoints["allowed"].append(f"{method} {path}")
            except VaultError as exc:
                shown = {"method": method.upper(), "path": path.split("?", 1)[0]}
                if exc.reason != "ENDPOINT_NOT_ALLOWED" or exc.metadata != shown:
                    endpoints["other"][f"{method} {path}"] = error(exc)
    out["endpoints"] = endpoints
    scopes: dict[str, Any] = {}
    for token in scope_tokens():
        try:
            scopes[token] = sorted(
                s.value for s in normalize_scopes([token], adapter.scope_vocabulary)
            )
        except VaultError as exc:
            scopes[token] = exc.reason
    out["normalize_scopes"] = scopes
    out["permissions"] = [
        {"status": status, "body": body.decode(), "report": _report(adapter, status, body)}
        for status, body in PERMISSION_BODIES[venue]
    ]  # fmt: skip
    return out


def compute(paths: list[str]) -> dict[str, Any]:
    """Every adapter's record; ``paths`` are the endpoint candidates (kept in the golden file)."""
    out: dict[str, Any] = {"endpoint_paths": paths}
    for name, (venue, adapter) in adapters().items():
        out[name] = venue_record(venue, adapter, paths)
    return out


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: golden_venues.py --record")
    GOLDEN.parent.mkdir(exist_ok=True)
    paths = json.loads(GOLDEN.read_text())["endpoint_paths"] if GOLDEN.exists() else None
    GOLDEN.write_text(dumps(compute(paths or endpoint_paths())))
    print(f"wrote {GOLDEN}")
