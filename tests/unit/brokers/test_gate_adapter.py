"""Gate.io v4: the documentation's two signature examples, ccxt's ``sign()``, units, endpoints.

Vectors: Gate APIv4 docs, "API Signature string generation" examples
(https://www.gate.io/docs/developers/apiv4/en/#api-signature-string-generation): key ``key``,
secret ``secret``, Timestamp 1541993715 (reference broker-breadth §2, VERIFIED there too).
"""

from __future__ import annotations

import hashlib
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
from vault_server.brokers.schemes import prehash_headers as ph
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.gate import ADAPTER, SCOPE_VOCABULARY, prehash
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

DOC_TS = 1541993715
DOC = VenueCredential(Venue.GATE, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "key",
                      secret=Secret("secret"))  # fmt: skip
GET_SIGN = (
    "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6"
    "fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"
)
POST_SIGN = (
    "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541f"
    "c4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0"
)
POST_BODY = {"contract": "BTC_USD", "type": "limit", "size": 100, "price": 6800,
             "time_in_force": "gtc"}  # fmt: skip
NOW = 1_700_000_000_123
CTX = SigningContext(now_ms=NOW)
LIMIT = OrderSpec(Operation.PLACE_ORDER, symbol="BTC_USDT", side=Side.BUY,
                  order_type=OrderType.LIMIT, quantity=Decimal("0.01"), price=Decimal("30000"),
                  client_order_id="c1")  # fmt: skip


def doc_sign(call: Call) -> str:
    """Sign ``call`` with the doc's key at the doc's time; the scheme's request, not a copy."""
    request = ADAPTER.spec.scheme.sign(call, "https://api.gateio.ws", DOC,
                                       SigningContext(now_ms=DOC_TS * 1000))  # fmt: skip
    headers = dict(request.headers)
    assert (headers["KEY"], headers["Timestamp"]) == ("key", str(DOC_TS))
    return headers["SIGN"]


def test_documentation_get_example() -> None:
    call = Call("GET", "/api/v4/futures/orders",
                (("contract", "BTC_USD"), ("status", "finished"), ("limit", "50")))  # fmt: skip
    assert doc_sign(call) == GET_SIGN


def test_documentation_post_example() -> None:
    assert (
        hashlib.sha512(json.dumps(POST_BODY, separators=(",", ":")).encode()).hexdigest()[:8]
        == "ad3c1692"
    )
    assert doc_sign(Call("POST", "/api/v4/futures/orders", json=POST_BODY)) == POST_SIGN


def test_prehash_layout() -> None:
    parts = ph.Prehash("1", "get", "/api/v4/spot/accounts", "", b"", "", 0)
    empty = hashlib.sha512(b"").hexdigest()
    assert prehash(parts) == f"GET\n/api/v4/spot/accounts\n\n{empty}\n1".encode()


@pytest.mark.parametrize(
    "order",
    [
        LIMIT,
        OrderSpec(Operation.PLACE_ORDER, symbol="BTC_USDT", side=Side.BUY,
                  order_type=OrderType.MARKET, quote_quantity=Decimal("25")),
        OrderSpec(Operation.CANCEL_ORDER, symbol="BTC_USDT", venue_order_id="12345"),
        OrderSpec(Operation.QUERY_ORDER, symbol="BTC_USDT", client_order_id="c1"),
        OrderSpec(Operation.QUERY_OPEN_ORDERS),
        OrderSpec(Operation.QUERY_ACCOUNT, extras={"currency": "USDT"}),
    ],
)  # fmt: skip
def test_ccxt_signs_the_same_request(order: OrderSpec) -> None:
    ccxt = pytest.importorskip("ccxt")
    secret = "golden-test-secret-gate-" + "0" * 40
    cred = replace(DOC, api_key="golden-key", secret=Secret(secret))
    request = ADAPTER.build(order, cred, CTX)
    exchange = ccxt.gate({"apiKey": "golden-key", "secret": secret})
    exchange.nonce = lambda: NOW
    path, _, query = request.url.removeprefix("https://api.gateio.ws/api/v4/spot/").partition("?")
    params: dict[str, object] = dict(p.split("=", 1) for p in query.split("&") if p)
    if request.body:
        params = json.loads(request.body)
    if "/" in path:  # orders/{id}: ccxt implodes the id into its path template
        path, params["order_id"] = "orders/{order_id}", path.split("/", 1)[1]
    out = exchange.sign(path, ["private", "spot"], request.method, params)
    assert out["url"] == request.url
    assert (out["body"] or "").encode() == request.body
    assert out["headers"]["SIGN"] == dict(request.headers)["SIGN"]
    assert out["headers"]["Timestamp"] == dict(request.headers)["Timestamp"]


def test_order_fields_and_freshness() -> None:
    request = ADAPTER.build(LIMIT, replace(DOC, secret=Secret("s")), CTX)
    assert request.url == "https://api.gateio.ws/api/v4/spot/orders"
    assert json.loads(request.body) == {
        "currency_pair": "BTC_USDT", "type": "limit", "account": "spot", "side": "buy",
        "amount": "0.01", "price": "30000", "time_in_force": "gtc", "text": "t-c1",
    }  # fmt: skip
    headers = dict(request.headers)
    assert headers["Timestamp"] == "1700000000" and request.expire_at_ms == NOW + 5000
    assert headers["X-Gate-Exptime"] == str(NOW + 5000)
    long = ADAPTER.build(LIMIT, DOC, replace(CTX, recv_window_ms=60_000))
    assert long.expire_at_ms == NOW + 59_000  # inside Gate's 60 s of a seconds timestamp
    post_only = replace(LIMIT, extras={"postOnly": "true", "account": "unified"})
    body = json.loads(ADAPTER.build(post_only, DOC, CTX).body)
    assert (body["time_in_force"], body["account"]) == ("poc", "unified")
    ioc = json.loads(ADAPTER.build(replace(LIMIT, time_in_force=TimeInForce.IOC), DOC, CTX).body)
    assert ioc["time_in_force"] == "ioc"


def test_market_units_follow_gate() -> None:
    buy = OrderSpec(Operation.PLACE_ORDER, symbol="BTC_USDT", side=Side.BUY,
                    order_type=OrderType.MARKET, quantity=Decimal("0.5"))  # fmt: skip
    with pytest.raises(InvalidArgument, match="quote currency: use quote_quantity"):
        ADAPTER.build(buy, DOC, CTX)
    body = json.loads(ADAPTER.build(replace(buy, quantity=None, quote_quantity=Decimal("20")),
                                    DOC, CTX).body)  # fmt: skip
    assert (body["amount"], body["time_in_force"], "price" in body) == ("20", "ioc", False)
    sell = replace(buy, side=Side.SELL)
    assert json.loads(ADAPTER.build(sell, DOC, CTX).body)["amount"] == "0.5"
    for refused in (replace(sell, quantity=None, quote_quantity=Decimal("20")),
                    replace(LIMIT, quantity=None, quote_quantity=Decimal("20"))):  # fmt: skip
        with pytest.raises(InvalidArgument, match="market buys only"):
            ADAPTER.build(refused, DOC, CTX)
    stop = replace(LIMIT, order_type=OrderType.STOP_LIMIT, stop_price=Decimal("1"))
    with pytest.raises(InvalidArgument, match="price-triggered"):
        ADAPTER.build(stop, DOC, CTX)


def test_ids_amend_and_refusals() -> None:
    amend = OrderSpec(Operation.AMEND_ORDER, symbol="BTC_USDT", client_order_id="t-abc",
                      price=Decimal("29000"))  # fmt: skip
    request = ADAPTER.build(amend, DOC, CTX)
    assert request.method == "PATCH" and request.body == b'{"price":"29000"}'
    assert request.url.endswith("/api/v4/spot/orders/t-abc?currency_pair=BTC_USDT")
    for bad in (replace(amend, client_order_id="x" * 29), replace(amend, client_order_id="a/b"),
                replace(amend, client_order_id=None, venue_order_id="../1"),
                replace(amend, symbol="BTCUSDT")):  # fmt: skip
        with pytest.raises(InvalidArgument):
            ADAPTER.build(bad, DOC, CTX)
    with pytest.raises(InvalidArgument, match="auto_borrow is a signed core field"):
        ADAPTER.build(replace(LIMIT, extras={"auto_borrow": "true"}), DOC, CTX)
    with pytest.raises(OperationNotSupported, match="Gate has no paper environment"):
        ADAPTER.build(LIMIT, replace(DOC, environment=Environment.PAPER), CTX)
    testnet = ADAPTER.build(LIMIT, replace(DOC, environment=Environment.TESTNET), CTX)
    assert testnet.url.startswith("https://api-testnet.gateapi.io/api/v4/")
    with pytest.raises(OperationNotSupported):
        ADAPTER.build(LIMIT, replace(DOC, algorithm=KeyAlgorithm.HMAC_SHA256), CTX)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v4/withdrawals"), ("POST", "/api/v4/wallet/transfers"),
     ("POST", "/api/v4/wallet/sub_account_transfers"), ("DELETE", "/api/v4/withdrawals/1"),
     ("POST", "/api/v4/sub_accounts/1/keys"), ("POST", "/api/v4/earn/uni/lends"),
     ("POST", "/api/v4/margin/uni/loans"), ("POST", "/api/v4/spot/orders/../../withdrawals"),
     ("POST", "/api/v4/spot/%2e%2e/withdrawals"), ("GET", "/api/v4/wallet/deposit_address"),
     ("POST", "/api/v4/futures/usdt/orders"), ("POST", "/api/v4/spot/batch_orders")],
)  # fmt: skip
def test_fund_moving_and_unlisted_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)
    with pytest.raises(EndpointNotAllowed):
        ADAPTER._sign(Call(method, path), DOC, CTX)


def test_vocabulary_and_no_attestation() -> None:
    assert normalize_scopes(["spot", "read_only"], SCOPE_VOCABULARY) == {Scope.READ, Scope.TRADE}
    for token in ("wallet", "Withdraw", "earn", "loan", "sub_account", "transfer"):
        with pytest.raises(WithdrawalScopeRejected):
            normalize_scopes(["spot", token], SCOPE_VOCABULARY)
    assert ADAPTER.permission_request(DOC, CTX) is None  # Gate reports no key permissions
