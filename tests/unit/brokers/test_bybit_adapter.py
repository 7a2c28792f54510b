"""Bybit v5 adapter: derived vectors, exact-body signing, endpoint policy, scopes, permissions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Scope,
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueAdapter,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.schemes import keys
from vault_server.brokers.venues.bybit import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    UnknownScope,
    VenueUnavailable,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"  # §5.4
DOC_KEY = "XXXXXXXXXX"
CRED = VenueCredential(
    Venue.BYBIT, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, DOC_KEY, secret=Secret(DOC_SECRET)
)
CTX = SigningContext(now_ms=1_658_385_579_423, recv_window_ms=5000)


def headers_of(request: PreparedRequest) -> dict[str, str]:
    return dict(request.headers)


def signed_bytes(request: PreparedRequest) -> bytes:
    h = headers_of(request)
    material = request.body if request.method == "POST" else urlsplit(request.url).query.encode()
    prefix = h["X-BAPI-TIMESTAMP"] + h["X-BAPI-API-KEY"] + h["X-BAPI-RECV-WINDOW"]
    return prefix.encode() + material


def test_adapter_satisfies_the_protocol() -> None:
    adapter: VenueAdapter = ADAPTER
    assert adapter.algorithms == {KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.RSA}
    assert adapter.generatable == {KeyAlgorithm.RSA}
    assert not adapter.needs_nonce and not adapter.proxy_only
    assert adapter.default_base_url(Environment.LIVE) == "https://api.bybit.com"
    assert adapter.default_base_url(Environment.TESTNET) == "https://api-testnet.bybit.com"
    assert adapter.default_base_url(Environment.PAPER) == "https://api-demo.bybit.com"


# --- derived vectors (§5.4) -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prehash", "expected"),
    [
        ("1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C",
         "dbf1ad442dbf4fcc499455ce59c117a079c36dd60c96c220a3560ba7047fd810"),
        ('1658385579423XXXXXXXXXX5000{"category": "option"}',
         "fa56f203be64bed4cc9e4b7f8ba536226636d04685e8733a7df4faa04a2c3ab3"),
        ('1658385579423XXXXXXXXXX5000{"category":"option"}',
         "03e435372ead974820df7edc9dcc3e26e0f15e0ac40bbfa1aac3dfc41c88ca81"),
    ],
    ids=["get", "post-spaced", "post-compact"],
)  # fmt: skip
def test_derived_vectors_via_the_primitive(prehash: str, expected: str) -> None:
    assert keys.hmac_sha256_hex(Secret(DOC_SECRET), prehash.encode()) == expected


def test_derived_get_vector_reproduces_through_build() -> None:
    order = OrderSpec(
        Operation.QUERY_OPEN_ORDERS, symbol="BTC-29JUL22-25000-C", extras={"category": "option"}
    )
    request = ADAPTER.build(order, CRED, SigningContext(now_ms=1658384314791))
    assert (
        request.url
        == "https://api.bybit.com/v5/order/realtime?category=option&symbol=BTC-29JUL22-25000-C"
    )
    assert headers_of(request) == {
        "X-BAPI-API-KEY": DOC_KEY,
        "X-BAPI-TIMESTAMP": "1658384314791",
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": "dbf1ad442dbf4fcc499455ce59c117a079c36dd60c96c220a3560ba7047fd810",
    }
    assert request.body == b"" and request.expire_at_ms == 1658384314791 + 5000


# --- POST bodies ----------------------------------------------------------------------------------
PLACE = OrderSpec(
    Operation.PLACE_ORDER,
    symbol="BTCUSDT",
    side=Side.SELL,
    order_type=OrderType.STOP_LIMIT,
    quantity=Decimal("0.010"),
    price=Decimal("1E+4"),
    stop_price=Decimal("10100.50"),
    time_in_force=TimeInForce.GTC,
    client_order_id="link-1",
    extras={"category": "linear", "positionIdx": "0", "reduceOnly": "true"},
)


def test_post_body_is_compact_json_and_exactly_what_is_signed() -> None:
    request = ADAPTER.build(PLACE, CRED, CTX)
    assert request.url == "https://api.bybit.com/v5/order/create"
    assert request.body == (
        b'{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Limit",'
        b'"qty":"0.01","price":"10000","triggerPrice":"10100.5","triggerDirection":2,'
        b'"timeInForce":"GTC","orderLinkId":"link-1","positionIdx":0,"reduceOnly":true}'
    )
    expected = hmac.new(DOC_SECRET.encode(), signed_bytes(request), hashlib.sha256).hexdigest()
    assert headers_of(request)["X-BAPI-SIGN"] == expected
    assert headers_of(request)["Content-Type"] == "application/json"


def test_rsa_signature_verifies_with_the_public_key_over_the_exact_body() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    credential = VenueCredential(
        Venue.BYBIT, Environment.LIVE, KeyAlgorithm.RSA, "rsa-key", private_key_pem=Secret(pem)
    )
    request = ADAPTER.build(PLACE, credential, CTX)
    signature = base64.b64decode(headers_of(request)["X-BAPI-SIGN"])
    public = key.public_key()
    public.verify(signature, signed_bytes(request), padding.PKCS1v15(), hashes.SHA256())
    spaced = json.dumps(json.loads(request.body)).encode()  # same JSON, different bytes
    tampered = signed_bytes(request).replace(request.body, spaced)
    with pytest.raises(InvalidSignature):
        public.verify(signature, tampered, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    ("kind", "side", "category", "trigger"),
    [
        (OrderType.STOP_LOSS, Side.BUY, "linear", {"triggerDirection": 1}),
        (OrderType.STOP_LOSS, Side.SELL, "linear", {"triggerDirection": 2}),
        (OrderType.TAKE_PROFIT, Side.BUY, "inverse", {"triggerDirection": 2}),
        (OrderType.TAKE_PROFIT, Side.SELL, "linear", {"triggerDirection": 1}),
        (OrderType.STOP_LOSS, Side.SELL, "spot", {"orderFilter": "StopOrder"}),
    ],
)
def test_triggered_orders(
    kind: OrderType, side: Side, category: str, trigger: dict[str, Any]
) -> None:
    order = OrderSpec(
        Operation.PLACE_ORDER,
        symbol="BTCUSDT",
        side=side,
        order_type=kind,
        quantity=Decimal(1),
        stop_price=Decimal(100),
        extras={"category": category},
    )
    body = json.loads(ADAPTER.build(order, CRED, CTX).body)
    assert body["orderType"] == "Market" and body["triggerPrice"] == "100"
    assert {k: body[k] for k in trigger} == trigger
    assert "timeInForce" not in body and "price" not in body


@pytest.mark.parametrize(
    ("order", "method", "path", "payload"),
    [
        (OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", venue_order_id="abc-123",
                   extras={"category": "linear"}),
         "POST", "/v5/order/cancel", b'{"category":"linear","symbol":"BTCUSDT","orderId":"abc-123"}'),
        (OrderSpec(Operation.AMEND_ORDER, symbol="BTCUSDT", client_order_id="link-1",
                   quantity=Decimal("2"), extras={"category": "spot"}),
         "POST", "/v5/order/amend",
         b'{"category":"spot","symbol":"BTCUSDT","orderLinkId":"link-1","qty":"2"}'),
        (OrderSpec(Operation.QUERY_ORDER, symbol="BTCUSDT", venue_order_id="abc",
                   extras={"category": "linear"}),
         "GET", "/v5/order/realtime", b"category=linear&symbol=BTCUSDT&orderId=abc"),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS, extras={"category": "linear", "settleCoin": "USDT"}),
         "GET", "/v5/order/realtime", b"category=linear&settleCoin=USDT"),
        (OrderSpec(Operation.QUERY_ACCOUNT), "GET", "/v5/account/wallet-balance",
         b"accountType=UNIFIED"),
        (OrderSpec(Operation.QUERY_ACCOUNT, extras={"accountType": "CONTRACT"}), "GET",
         "/v5/account/wallet-balance", b"accountType=CONTRACT"),
    ],
)  # fmt: skip
def test_operations(order: OrderSpec, method: str, path: str, payload: bytes) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    url = urlsplit(request.url)
    assert (request.method, url.path) == (method, path)
    assert (request.body if method == "POST" else url.query.encode()) == payload
    expected = hmac.new(DOC_SECRET.encode(), signed_bytes(request), hashlib.sha256).hexdigest()
    assert headers_of(request)["X-BAPI-SIGN"] == expected


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", venue_order_id="a"), "order.extras"),
        (OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", extras={"category": "linear"}),
         "order.venue_order_id"),
        (OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", venue_order_id="a",
                   extras={"category": "margin"}), "order.extras"),
        (OrderSpec(Operation.AMEND_ORDER, symbol="BTCUSDT", venue_order_id="a",
                   extras={"category": "linear"}), "order.quantity"),
        (OrderSpec(Operation.PLACE_ORDER, symbol="BTCUSDT", side=Side.BUY,
                   order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(1),
                   time_in_force=TimeInForce.DAY, extras={"category": "spot"}),
         "order.time_in_force"),
        (OrderSpec(Operation.QUERY_ACCOUNT, extras={"accountType": "FUND"}), "order.extras"),
    ],
)  # fmt: skip
def test_malformed_orders_are_refused(order: OrderSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == field


@pytest.mark.parametrize(
    "extra",
    [
        {"qty": "100"}, {"price": "1"}, {"symbol": "ETHUSDT"}, {"orderLinkId": "x"},
        {"timestamp": "1"}, {"recv_window": "60000"}, {"marketUnit": "quoteCoin"},
        {"isLeverage": "1"}, {"takeProfit": "1"}, {"positionIdx": "3"}, {"reduceOnly": "yes"},
    ],
)  # fmt: skip
def test_extras_are_allow_listed(extra: dict[str, str]) -> None:
    order = OrderSpec(**{**PLACE.__dict__, "extras": {"category": "linear", **extra}})
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == "order.extras"


@pytest.mark.parametrize("window", [0, 60_001])
def test_recv_window_is_capped(window: int) -> None:
    with pytest.raises(InvalidArgument):
        ADAPTER.build(PLACE, CRED, SigningContext(now_ms=1, recv_window_ms=window))


# --- endpoint policy ---------------------------------------------------------------------------
BLOCKED = [
    ("POST", "/v5/asset/withdraw/create"), ("POST", "/v5/asset/withdraw/cancel"),
    ("POST", "/v5/asset/transfer/inter-transfer"), ("POST", "/v5/asset/transfer/universal-transfer"),
    ("POST", "/v5/user/update-api"), ("POST", "/v5/user/update-sub-api"),
    ("POST", "/v5/user/create-sub-api"), ("POST", "/v5/user/delete-api"),
    ("POST", "/v5/user/delete-sub-api"), ("POST", "/v5/user/create-sub-member"),
    ("POST", "/v5/user/frozen-sub-member"), ("POST", "/v5/user/del-submember"),
    ("POST", "/v5/user/query-api"), ("GET", "/v5/asset/deposit/query-address"),
    ("POST", "/v5/earn/place-order"), ("POST", "/v5/position/set-leverage"),
    ("GET", "/v5/order/realtime/../../asset/withdraw/create"), ("POST", "/V5/ORDER/CREATE"),
    ("POST", "/v5/order/create/"), ("POST", "/v5//order/create"), ("POST", "/v5/order/%63reate"),
    ("GET", "/v5/user/query-api/"), ("GET", "/v5/user/query-api/../update-api"),
    ("POST", "/v5/order/create;/v5/asset/withdraw/create"),
]  # fmt: skip
ALLOWED = [
    ("POST", "/v5/order/create"), ("POST", "/v5/order/amend"), ("POST", "/v5/order/cancel"),
    ("POST", "/v5/order/cancel-all"), ("GET", "/v5/order/realtime"),
    ("GET", "/v5/order/history"), ("GET", "/v5/account/wallet-balance"),
    ("GET", "/v5/user/query-api"), ("GET", "/v5/order/realtime?category=linear"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), BLOCKED)
def test_fund_moving_key_management_and_smuggled_endpoints_are_refused(
    method: str, path: str
) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


@pytest.mark.parametrize(("method", "path"), ALLOWED)
def test_trading_endpoints_pass(method: str, path: str) -> None:
    ADAPTER.check_endpoint(method, path)


# --- scopes and permissions ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    ["Wallet", "Withdraw", "AccountTransfer", "SubMemberTransfer", "SubMemberTransferList",
     "Earn", "FiatBybitPay", "FiatP2P", "account_transfer", "ＷＩＴＨＤＲＡＷ"],
)  # fmt: skip
def test_fund_moving_scopes_are_rejected(token: str) -> None:
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["SpotTrade", token], ADAPTER.scope_vocabulary)


def test_trading_scopes_normalise() -> None:
    vocab = ADAPTER.scope_vocabulary
    assert normalize_scopes(["Order", "Position", "SpotTrade"], vocab) == {Scope.TRADE}
    assert normalize_scopes(["Read-Write"], vocab) == {Scope.READ, Scope.TRADE}
    assert normalize_scopes(["readOnly"], vocab) == {Scope.READ}
    with pytest.raises(UnknownScope):
        normalize_scopes(["Everything"], vocab)
    for token, scopes in vocab.items():
        if not scopes & {Scope.WITHDRAW, Scope.TRANSFER}:
            assert normalize_scopes([token], vocab) == scopes


# The response example of bybit-exchange/docs v5/user/apikey-info.mdx
DOC_RESPONSE: dict[str, Any] = {
    "retCode": 0, "retMsg": "",
    "result": {
        "id": "16651472", "note": "testxxx", "apiKey": "opjSlSOzqIeXROT5rq", "readOnly": 0,
        "secret": "",
        "permissions": {"ContractTrade": [], "Spot": [], "Wallet": ["AccountTransfer"],
                        "Options": [], "Derivatives": [], "CopyTrading": [], "BlockTrade": [],
                        "Exchange": [], "NFT": []},
        "ips": ["*"], "type": 1, "deadlineDay": 88, "expiredAt": "2023-05-15T03:13:24Z",
        "createdAt": "2023-02-15T03:13:24Z", "unified": 0, "uta": 0, "userID": 53888001,
        "inviterID": 0, "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0,
    },
    "retExtInfo": {}, "time": 1676430843547,
}  # fmt: skip


def with_result(**changes: Any) -> bytes:
    return json.dumps({**DOC_RESPONSE, "result": {**DOC_RESPONSE["result"], **changes}}).encode()


def test_documented_response_with_a_wallet_permission_is_fund_moving() -> None:
    report = ADAPTER.parse_permissions(200, json.dumps(DOC_RESPONSE).encode())
    assert report.scopes == {Scope.READ, Scope.TRANSFER, Scope.WITHDRAW}
    assert report.raw["permissions.Wallet"] == "AccountTransfer"
    assert report.raw["readOnly"] == "0" and report.raw["ips"] == "*"
    assert "apiKey" not in report.raw and "secret" not in report.raw


TRADING = {"ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"], "Wallet": []}


@pytest.mark.parametrize(
    ("changes", "scopes"),
    [
        ({"permissions": TRADING}, {Scope.READ, Scope.TRADE}),
        ({"permissions": TRADING, "readOnly": 1}, {Scope.READ}),
        ({"permissions": {**TRADING, "Wallet": ["Withdraw"]}},
         {Scope.READ, Scope.TRADE, Scope.WITHDRAW, Scope.TRANSFER}),
        ({"permissions": {**TRADING, "Earn": ["Earn"]}}, {Scope.READ, Scope.TRADE, Scope.TRANSFER}),
        ({"permissions": {"Exchange": ["ExchangeHistory"]}}, {Scope.READ}),
        ({"permissions": {"Spot": ["SpotTrade"], "FiatBybitPay": ["Pay"]}},
         {Scope.READ, Scope.TRADE, Scope.TRANSFER}),
    ],
)  # fmt: skip
def test_permissions_map_to_scopes(changes: dict[str, Any], scopes: set[Scope]) -> None:
    assert ADAPTER.parse_permissions(200, with_result(**changes)).scopes == scopes


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"retCode": 10003, "retMsg": "API key is invalid.", "result": {}}'),
        (200, b'{"retCode": 10004, "retMsg": "error sign!", "result": {}}'),
        (200, with_result(readOnly=None)), (200, with_result(permissions=[])),
        (200, with_result(permissions={"Wallet": "Withdraw"})), (403, b""), (200, b"[1]"),
    ],
)  # fmt: skip
def test_failed_permission_answers_are_errors(status: int, body: bytes) -> None:
    with pytest.raises(VenueUnavailable):
        ADAPTER.parse_permissions(status, body)


def test_permission_request_signs_an_empty_query() -> None:
    request = ADAPTER.permission_request(CRED, CTX)
    assert request is not None
    assert (request.method, request.url) == ("GET", "https://api.bybit.com/v5/user/query-api")
    prehash = f"{CTX.now_ms}{DOC_KEY}5000".encode()
    expected = hmac.new(DOC_SECRET.encode(), prehash, hashlib.sha256).hexdigest()
    assert headers_of(request)["X-BAPI-SIGN"] == expected
