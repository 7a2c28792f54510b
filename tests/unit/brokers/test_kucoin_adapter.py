"""KuCoin: the signature and version-2 passphrase against hand computation and ccxt's ``sign()``.

KuCoin publishes no signature with a fixed output (reference broker-breadth §2: "None published
found; DERIVED via ccxt"), so the rule from KuCoin's "Authentication" page
(https://www.kucoin.com/docs-new/authentication) is computed here with hashlib/hmac, and each
request is compared with ccxt 4.5.64 ``kucoin.sign()`` for the same key, secret, passphrase and
time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    Scope,
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.kucoin import ADAPTER, SCOPE_VOCABULARY
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    VenueUnavailable,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

SECRET, PHRASE = "golden-test-secret-kucoin", "golden-test-passphrase"
CRED = VenueCredential(Venue.KUCOIN, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "golden-key",
                       secret=Secret(SECRET), passphrase=Secret(PHRASE))  # fmt: skip
NOW = 1_700_000_000_123
CTX = SigningContext(now_ms=NOW)
LIMIT = OrderSpec(Operation.PLACE_ORDER, symbol="BTC-USDT", side=Side.BUY,
                  order_type=OrderType.LIMIT, quantity=Decimal("0.01"), price=Decimal("30000"),
                  client_order_id="c1")  # fmt: skip
ORDERS = [
    LIMIT,
    OrderSpec(Operation.PLACE_ORDER, symbol="BTC-USDT", side=Side.BUY,
              order_type=OrderType.MARKET, quote_quantity=Decimal("25")),
    OrderSpec(Operation.CANCEL_ORDER, symbol="BTC-USDT", venue_order_id="5bd6e9286d99522a52e458de"),
    OrderSpec(Operation.QUERY_ORDER, symbol="BTC-USDT", client_order_id="c1"),
    OrderSpec(Operation.AMEND_ORDER, symbol="BTC-USDT", client_order_id="c1",
              price=Decimal("29000")),
    OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTC-USDT"),
    OrderSpec(Operation.QUERY_ACCOUNT, extras={"currency": "USDT", "type": "trade"}),
]  # fmt: skip


def b64_hmac(key: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("order", ORDERS)
def test_signature_follows_kucoins_rule(order: OrderSpec) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    headers = dict(request.headers)
    endpoint = request.url.removeprefix("https://api.kucoin.com")
    prehash = f"{NOW}{request.method}{endpoint}".encode() + request.body
    assert headers["KC-API-SIGN"] == b64_hmac(SECRET, prehash)
    assert headers["KC-API-PASSPHRASE"] == b64_hmac(SECRET, PHRASE.encode())
    assert PHRASE not in headers.values() and SECRET not in headers.values()
    assert (headers["KC-API-KEY"], headers["KC-API-TIMESTAMP"]) == ("golden-key", str(NOW))
    assert headers["KC-API-KEY-VERSION"] == "2"
    assert request.expire_at_ms == NOW + 5000


@pytest.mark.parametrize("order", ORDERS)
def test_ccxt_signs_the_same_request(order: OrderSpec) -> None:
    ccxt = pytest.importorskip("ccxt")
    request = ADAPTER.build(order, CRED, CTX)
    exchange = ccxt.kucoin({"apiKey": "golden-key", "secret": SECRET, "password": PHRASE})
    exchange.options["partner"] = {}  # ccxt's own broker headers are not part of KuCoin's rule
    exchange.nonce = lambda: NOW
    path, _, query = request.url.removeprefix("https://api.kucoin.com/api/v1/").partition("?")
    params: dict[str, object] = dict(p.split("=", 1) for p in query.split("&") if p)
    if request.body:
        params = json.loads(request.body)
    out = exchange.sign(path, "private", request.method, params)
    assert out["url"] == request.url
    assert (out["body"] or "").encode() == request.body
    ours = dict(request.headers)
    for name in ("KC-API-SIGN", "KC-API-PASSPHRASE", "KC-API-TIMESTAMP", "KC-API-KEY-VERSION"):
        assert out["headers"][name] == ours[name], name


def test_order_fields_and_units() -> None:
    assert json.loads(ADAPTER.build(LIMIT, CRED, CTX).body) == {
        "clientOid": "c1", "symbol": "BTC-USDT", "side": "buy", "type": "limit",
        "size": "0.01", "price": "30000", "timeInForce": "GTC",
    }  # fmt: skip
    market = replace(LIMIT, order_type=OrderType.MARKET, price=None)
    assert json.loads(ADAPTER.build(market, CRED, CTX).body)["size"] == "0.01"
    funds = replace(market, side=Side.SELL, quantity=None, quote_quantity=Decimal("25"))
    body = json.loads(ADAPTER.build(funds, CRED, CTX).body)
    assert body["funds"] == "25" and "size" not in body
    with pytest.raises(InvalidArgument, match="market orders only"):
        ADAPTER.build(replace(LIMIT, quantity=None, quote_quantity=Decimal("1")), CRED, CTX)
    ioc = replace(LIMIT, time_in_force=TimeInForce.IOC, extras={"postOnly": "true"})
    body = json.loads(ADAPTER.build(ioc, CRED, CTX).body)
    assert (body["timeInForce"], body["postOnly"]) == ("IOC", True)
    for bad in (replace(LIMIT, time_in_force=TimeInForce.DAY),
                replace(LIMIT, symbol="BTCUSDT"), replace(LIMIT, client_order_id="a" * 41),
                replace(market, extras={"hidden": "true"}),
                replace(LIMIT, extras={"funds": "1"})):  # fmt: skip
        with pytest.raises(InvalidArgument):
            ADAPTER.build(bad, CRED, CTX)
    open_all = ADAPTER.build(OrderSpec(Operation.QUERY_OPEN_ORDERS), CRED, CTX)
    assert open_all.url.endswith("/api/v1/hf/orders/active/symbols")


def test_environment_freshness_and_credential() -> None:
    for env in (Environment.PAPER, Environment.TESTNET):
        with pytest.raises(OperationNotSupported, match="KuCoin has no sandbox"):
            ADAPTER.build(LIMIT, replace(CRED, environment=env), CTX)
    long = ADAPTER.build(LIMIT, CRED, replace(CTX, recv_window_ms=60_000))
    assert long.expire_at_ms == NOW + 5000  # KuCoin's own 5 s tolerance
    with pytest.raises(InvalidArgument, match="credential.passphrase"):
        ADAPTER.build(LIMIT, replace(CRED, passphrase=None), CTX)
    assert "***" in repr(ADAPTER.build(LIMIT, CRED, CTX).headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/withdrawals"), ("POST", "/api/v3/withdrawals"),
     ("DELETE", "/api/v1/withdrawals/abc"), ("POST", "/api/v2/accounts/inner-transfer"),
     ("POST", "/api/v3/accounts/universal-transfer"), ("POST", "/api/v2/accounts/sub-transfer"),
     ("POST", "/api/v1/accounts/sub-transfer"), ("POST", "/api/v1/sub/api-key"),
     ("POST", "/api/v1/user/api-key"), ("POST", "/api/v3/margin/borrow"),
     ("POST", "/api/v1/earn/orders"), ("DELETE", "/api/v1/hf/orders/../../withdrawals"),
     ("GET", "/api/v1/hf/orders/%2e%2e/withdrawals"), ("POST", "/api/v1/orders")],
)  # fmt: skip
def test_fund_moving_and_unlisted_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER._sign(Call(method, path), CRED, CTX)


def test_vocabulary() -> None:
    assert normalize_scopes(["General", "Spot"], SCOPE_VOCABULARY) == {Scope.READ, Scope.TRADE}
    for token in ("Withdrawal", "Transfer", "InnerTransfer", "Earn", "withdraw"):
        with pytest.raises(WithdrawalScopeRejected):
            normalize_scopes(["General", token], SCOPE_VOCABULARY)


@pytest.mark.parametrize(
    ("permission", "scopes"),
    [("General,Spot", {Scope.READ, Scope.TRADE}), ("General", {Scope.READ}),
     ("General,Spot,Withdrawal", {Scope.READ, Scope.TRADE, Scope.WITHDRAW}),
     ("General,InnerTransfer", {Scope.READ, Scope.TRANSFER}),
     ("General,Transfer", {Scope.READ, Scope.TRANSFER}),
     ("General,SubAccountTransferOut", {Scope.READ, Scope.TRANSFER})],
)  # fmt: skip
def test_permissions_are_parsed(permission: str, scopes: set[Scope]) -> None:
    body = json.dumps({"code": "200000", "data": {"permission": permission, "uid": 7,
                                                  "apiKey": "k", "isMaster": True}})  # fmt: skip
    report = ADAPTER.parse_permissions(200, body.encode())
    assert report.scopes == scopes and report.raw["permission"] == permission
    request = ADAPTER.permission_request(CRED, CTX)
    assert request is not None and request.url == "https://api.kucoin.com/api/v1/user/api-key"


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b'{"code":"400003","msg":"KC-API-KEY not exists"}'), (401, b"{}"), (200, b"[]"),
     (200, b'{"code":"200000","data":{"permission":7}}'), (200, b"not json")],
)  # fmt: skip
def test_permission_refusals(status: int, body: bytes) -> None:
    with pytest.raises(VenueUnavailable):
        ADAPTER.parse_permissions(status, body)
