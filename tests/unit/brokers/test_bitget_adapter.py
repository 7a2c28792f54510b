"""Bitget v2 adapter: ccxt cross-check, independent re-signing, freshness, demo header, units,
endpoint policy, scopes, permission parsing, and a round trip through the loopback stub.

Bitget publishes no signature vector (reference broker-breadth.md: "None found; DERIVED via
ccxt"), so the vector here is ccxt's ``bitget.sign`` for the same request, key and timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt
import httpx
import pytest

from tests.venue_stubs.bitget_stub import BitgetKey, BitgetStub
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
from vault_server.brokers.registry import adapter_for
from vault_server.brokers.venues import bitget
from vault_server.brokers.venues.bitget import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    UnknownScope,
    VenueUnavailable,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

NOW = 1_659_076_670_000  # the docs' example ACCESS-TIMESTAMP
SECRET, PHRASE = secrets.token_hex(16), "Pp" + secrets.token_hex(6)
CRED = VenueCredential(
    Venue.BITGET, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "bg_" + secrets.token_hex(8),
    secret=Secret(SECRET), passphrase=Secret(PHRASE),
)  # fmt: skip
CTX = SigningContext(now_ms=NOW)
LIMIT = OrderSpec(
    Operation.PLACE_ORDER, symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("0.010"), price=Decimal("30000"), client_order_id="b-15",
)  # fmt: skip
FUT = {"productType": "USDT-FUTURES", "marginMode": "crossed", "marginCoin": "USDT"}


def header(request: PreparedRequest, name: str) -> str:
    values = [v for k, v in request.headers if k == name]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def independent_sign(request: PreparedRequest) -> str:
    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    prehash = (header(request, "ACCESS-TIMESTAMP") + request.method + path).encode()
    digest = hmac.new(SECRET.encode(), prehash + request.body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def ccxt_sign(path: str, api: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    exchange = ccxt.bitget({"apiKey": CRED.api_key, "secret": SECRET, "password": PHRASE})
    exchange.nonce = lambda: NOW
    result: dict[str, Any] = exchange.sign(path, ["private", api], method, params)
    return result


def test_adapter_satisfies_the_protocol_and_is_registered() -> None:
    adapter: VenueAdapter = ADAPTER
    assert adapter_for(Venue.BITGET) is ADAPTER
    assert not adapter.proxy_only and not adapter.single_permission_tier and not adapter.needs_nonce
    assert adapter.algorithms == {KeyAlgorithm.HMAC_SHA256}
    assert {adapter.default_base_url(env) for env in Environment} == {"https://api.bitget.com"}


@pytest.mark.parametrize(
    ("order", "ccxt_path", "api"),
    [
        (LIMIT, "v2/spot/trade/place-order", "spot"),
        (OrderSpec(Operation.PLACE_ORDER, symbol="BTCUSDT", side=Side.SELL,
                   order_type=OrderType.LIMIT, quantity=Decimal("2"), price=Decimal("31000.5"),
                   time_in_force=TimeInForce.IOC, extras=FUT),
         "v2/mix/order/place-order", "mix"),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTCUSDT",
                   extras={"productType": "USDT-FUTURES"}), "v2/mix/order/orders-pending", "mix"),
        (OrderSpec(Operation.QUERY_ORDER, symbol="BTCUSDT", venue_order_id="1001"),
         "v2/spot/trade/orderInfo", "spot"),
        (OrderSpec(Operation.QUERY_ACCOUNT, extras={"coin": "USDT"}),
         "v2/spot/account/assets", "spot"),
    ],
)  # fmt: skip
def test_signature_matches_ccxt(order: OrderSpec, ccxt_path: str, api: str) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    parts = urlsplit(request.url)
    params = json.loads(request.body) if request.body else dict(
        p.split("=", 1) for p in parts.query.split("&") if p
    )  # fmt: skip
    theirs = ccxt_sign(ccxt_path, api, request.method, params)
    assert theirs["url"] == request.url
    assert (theirs["body"] or "").encode() == request.body
    for name in ("ACCESS-KEY", "ACCESS-SIGN", "ACCESS-TIMESTAMP", "ACCESS-PASSPHRASE"):
        assert header(request, name) == theirs["headers"][name], name
    assert header(request, "ACCESS-SIGN") == independent_sign(request)


def test_headers_freshness_and_demo_flag() -> None:
    request = ADAPTER.build(LIMIT, CRED, SigningContext(now_ms=NOW, recv_window_ms=60_000))
    assert [k for k, _ in request.headers] == [
        "ACCESS-KEY",
        "ACCESS-SIGN",
        "ACCESS-TIMESTAMP",
        "ACCESS-PASSPHRASE",
        "Content-Type",
    ]
    assert header(request, "ACCESS-TIMESTAMP") == str(NOW)
    assert request.expire_at_ms == NOW + 30_000  # Bitget's 30 s, whatever the window
    assert ADAPTER.build(LIMIT, CRED, CTX).expire_at_ms == NOW + 5000
    assert SECRET not in repr(request) and PHRASE not in repr(request.headers)
    for env in (Environment.PAPER, Environment.TESTNET):
        demo = VenueCredential(**{**CRED.__dict__, "environment": env})
        assert header(ADAPTER.build(LIMIT, demo, CTX), "paptrading") == "1"
    assert all(k != "paptrading" for k, _ in request.headers)


def test_spot_market_buy_is_quote_sized_only() -> None:
    buy = OrderSpec(Operation.PLACE_ORDER, symbol="BTCUSDT", side=Side.BUY,
                    order_type=OrderType.MARKET, quantity=Decimal("0.5"))  # fmt: skip
    with pytest.raises(InvalidArgument) as err:
        ADAPTER.build(buy, CRED, CTX)
    assert err.value.field == "order.quantity" and "quote_quantity" in err.value.message
    quote = OrderSpec(**{**buy.__dict__, "quantity": None, "quote_quantity": Decimal("250")})
    body = json.loads(ADAPTER.build(quote, CRED, CTX).body)
    assert body == {"symbol": "BTCUSDT", "side": "buy", "orderType": "market", "size": "250"}
    sell = OrderSpec(**{**buy.__dict__, "side": Side.SELL})
    assert json.loads(ADAPTER.build(sell, CRED, CTX).body)["size"] == "0.5"
    for order in (OrderSpec(**{**quote.__dict__, "side": Side.SELL}),
                  OrderSpec(**{**quote.__dict__, "extras": FUT}),
                  OrderSpec(**{**LIMIT.__dict__, "quantity": None,
                               "quote_quantity": Decimal("300")})):  # fmt: skip
        with pytest.raises(InvalidArgument) as err:
            ADAPTER.build(order, CRED, CTX)
        assert err.value.field == "order.quote_quantity"


def test_order_mapping_rules() -> None:
    post = OrderSpec(**{**LIMIT.__dict__, "extras": {"postOnly": "true"}})
    assert json.loads(ADAPTER.build(post, CRED, CTX).body)["force"] == "post_only"
    fut = json.loads(ADAPTER.build(OrderSpec(**{**LIMIT.__dict__, "extras": FUT}), CRED, CTX).body)
    assert list(fut)[:5] == ["symbol", "productType", "marginMode", "marginCoin", "side"]
    amend = OrderSpec(Operation.AMEND_ORDER, symbol="BTCUSDT", venue_order_id="77",
                      quantity=Decimal("1"), price=Decimal("2"))  # fmt: skip
    request = ADAPTER.build(amend, CRED, CTX)
    assert urlsplit(request.url).path == "/api/v2/spot/trade/cancel-replace-order"
    assert json.loads(request.body) == {"symbol": "BTCUSDT", "price": "2", "size": "1",
                                        "orderId": "77"}  # fmt: skip
    bad: list[tuple[OrderSpec, type[Exception]]] = [
        (OrderSpec(**{**LIMIT.__dict__, "extras": {"productType": "USDT-FUTURES"}}),
         InvalidArgument),  # marginMode/marginCoin missing
        (OrderSpec(**{**LIMIT.__dict__, "symbol": "BTC/USDT"}), InvalidArgument),
        (OrderSpec(**{**LIMIT.__dict__, "client_order_id": "x" * 51}), InvalidArgument),
        (OrderSpec(**{**LIMIT.__dict__, "extras": {"size": "9"}}), InvalidArgument),
        (OrderSpec(**{**LIMIT.__dict__, "time_in_force": TimeInForce.DAY}), InvalidArgument),
        (OrderSpec(**{**amend.__dict__, "extras": {"productType": "USDT-FUTURES"}}),
         OperationNotSupported),
    ]  # fmt: skip
    for order, error in bad:
        with pytest.raises(error):
            ADAPTER.build(order, CRED, CTX)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v2/spot/wallet/withdrawal"), ("POST", "/api/v2/spot/wallet/transfer"),
     ("POST", "/api/v2/spot/wallet/subaccount-transfer"), ("GET", "/api/v2/spot/wallet/deposit-address"),
     ("POST", "/api/v2/user/create-virtual-subaccount-apikey"), ("POST", "/api/v2/convert/trade"),
     ("POST", "/api/v2/spot/wallet/WITHDRAWAL"), ("POST", "/api/v2/spot/wallet/with%64rawal"),
     ("GET", "/api/v2/spot/trade/orderInfo/../../wallet/withdrawal"),
     ("DELETE", "/api/v2/spot/trade/place-order")],
)  # fmt: skip
def test_fund_moving_and_unlisted_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed) as err:
        ADAPTER.check_endpoint(method, path)
    assert err.value.metadata["path"] == path


def test_scope_vocabulary() -> None:
    vocab = ADAPTER.scope_vocabulary
    assert normalize_scopes(["stor", "stow", "coow", "readonly", "trade"], vocab) == {
        Scope.READ,
        Scope.TRADE,
    }
    for token in ("wwow", "wtow", "withdraw", "transfer", "chow", "p2p", "WWOW", "w_t_o_w"):
        with pytest.raises(WithdrawalScopeRejected):
            normalize_scopes(["stor", token], vocab)
    with pytest.raises(UnknownScope):
        normalize_scopes(["admin"], vocab)


def _answer(authorities: Any, code: str = "00000", status: int = 200) -> tuple[int, bytes]:
    data = {"userId": "1", "ips": "", "authorities": authorities, "parentId": 1}
    return status, json.dumps({"code": code, "msg": "success", "data": data}).encode()


def test_permission_parsing() -> None:
    report = ADAPTER.parse_permissions(*_answer(["stor", "stow"]))
    assert report.scopes == {Scope.READ, Scope.TRADE} and report.raw["authorities"] == "stor,stow"
    assert ADAPTER.parse_permissions(*_answer(["stow", "wwow"])).scopes >= {Scope.WITHDRAW}
    assert Scope.TRANSFER in ADAPTER.parse_permissions(*_answer(["wtow"])).scopes
    odd = ADAPTER.parse_permissions(*_answer(["stor", "zzzz", "new_wallet_thing"]))
    assert Scope.TRANSFER in odd.scopes and odd.raw["unknownPermissions"] == "zzzz"
    for bad in (_answer(["stor"], code="40009", status=400), _answer("stor,stow"),
                _answer([1]), (200, b"not json")):  # fmt: skip
        with pytest.raises(VenueUnavailable):
            ADAPTER.parse_permissions(*bad)


@pytest.fixture
def stub() -> Iterator[BitgetStub]:
    keys = {CRED.api_key: BitgetKey(SECRET, PHRASE), "demo": BitgetKey(SECRET, PHRASE, demo=True)}
    with BitgetStub(keys, clock=lambda: NOW) as running:
        yield running


def _send(request: PreparedRequest) -> tuple[int, dict[str, Any]]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
    return response.status_code, response.json()


def test_stub_round_trip(stub: BitgetStub) -> None:
    ctx = SigningContext(now_ms=NOW, base_url=stub.base_url)
    demo = VenueCredential(**{**CRED.__dict__, "api_key": "demo", "environment": Environment.PAPER})
    quote = OrderSpec(Operation.PLACE_ORDER, symbol="BTCUSDT", side=Side.BUY,
                      order_type=OrderType.MARKET, quote_quantity=Decimal("25"))  # fmt: skip
    for cred, order in ((CRED, LIMIT), (demo, quote), (CRED, OrderSpec(**{**LIMIT.__dict__,
                                                                       "extras": FUT}))):  # fmt: skip
        status, reply = _send(ADAPTER.build(order, cred, ctx))
        assert (status, reply["code"]) == (200, "00000"), reply
    assert [size for _, size in stub.placed] == [
        (Decimal("0.01"), "base"),
        (Decimal("25"), "quote"),
        (Decimal("0.01"), "base"),
    ]
    for order in (OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTCUSDT"),
                  OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", client_order_id="b-15")):  # fmt: skip
        assert _send(ADAPTER.build(order, CRED, ctx))[1]["code"] == "00000"
    permission = ADAPTER.permission_request(CRED, ctx)
    assert permission is not None
    status, reply = _send(permission)
    report = ADAPTER.parse_permissions(status, json.dumps(reply).encode())
    assert report.scopes == {Scope.READ, Scope.TRADE}
    stale = ADAPTER.build(LIMIT, CRED, SigningContext(now_ms=NOW - 30_001, base_url=stub.base_url))
    assert _send(stale)[1]["code"] == "40005"
    wrong = VenueCredential(**{**CRED.__dict__, "passphrase": Secret("nope")})
    assert _send(ADAPTER.build(LIMIT, wrong, ctx))[1]["code"] == "40012"


def test_missing_passphrase_is_refused() -> None:
    with pytest.raises(InvalidArgument) as err:
        ADAPTER.build(LIMIT, VenueCredential(**{**CRED.__dict__, "passphrase": None}), CTX)
    assert err.value.field == "credential.passphrase"
    assert bitget.MAX_TIMESTAMP_AGE_MS == 30_000
