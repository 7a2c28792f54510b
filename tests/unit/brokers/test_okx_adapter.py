"""OKX v5 adapter: derived vectors through the signing code, every build re-signed independently,
freshness, passphrase handling, endpoint policy, scopes and permission parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

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
from vault_server.brokers.venues import okx
from vault_server.brokers.venues.okx import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    UnknownScope,
    VenueUnavailable,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

DOC_SECRET = "22582BD0CFF14C41EDBF1AB98506286D"  # the OKX docs' example secret
PASSPHRASE = "Pass phrase#1"
DOC_TS = "2020-12-08T09:08:57.715Z"
DOC_MS = 1_607_418_537_715
CRED = VenueCredential(
    Venue.OKX, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "okx-key",
    secret=Secret(DOC_SECRET), passphrase=Secret(PASSPHRASE),
)  # fmt: skip
CTX = SigningContext(now_ms=DOC_MS)
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="BTC-USDT", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("0.010"), price=Decimal("30000"), client_order_id="b15",
)  # fmt: skip


def header(request: PreparedRequest, name: str) -> str:
    values = [v for k, v in request.headers if k == name]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def independent_sign(request: PreparedRequest, secret: str = DOC_SECRET) -> str:
    """Re-sign from the request's own bytes: timestamp header + method + path?query + body."""
    parts = urlsplit(request.url)
    request_path = parts.path + (f"?{parts.query}" if parts.query else "")
    prehash = (header(request, "OK-ACCESS-TIMESTAMP") + request.method + request_path).encode()
    digest = hmac.new(secret.encode(), prehash + request.body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_adapter_satisfies_the_protocol() -> None:
    adapter: VenueAdapter = ADAPTER
    assert not adapter.proxy_only and not adapter.single_permission_tier and not adapter.needs_nonce
    assert adapter.algorithms == {KeyAlgorithm.HMAC_SHA256} and adapter.generatable == frozenset()
    for env in Environment:
        assert adapter.default_base_url(env) == "https://www.okx.com"


# --- derived vectors (reference §6.2) --------------------------------------------------------
def test_timestamp_format() -> None:
    assert okx.okx_timestamp(DOC_MS) == DOC_TS
    assert okx.okx_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert okx.okx_timestamp(1_700_000_000_001) == "2023-11-14T22:13:20.001Z"


def test_derived_vectors_reproduce_through_the_signing_function() -> None:
    secret = Secret(DOC_SECRET)
    get = okx.okx_signature(secret, DOC_TS, "GET", "/api/v5/account/balance?ccy=BTC", b"")
    assert get == "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="
    body = b'{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}'
    post = okx.okx_signature(secret, DOC_TS, "POST", "/api/v5/account/set-leverage", body)
    assert post == "eCnnCgWLjlQ9XnpUkrcny3qNq3WW/81KNrDr/XR6Xv8="
    assert okx.okx_signature(secret, DOC_TS, "get", "/api/v5/account/balance?ccy=BTC", b"") == get


def test_get_vector_reproduces_through_build() -> None:
    request = ADAPTER.build(OrderSpec(Operation.QUERY_ACCOUNT, extras={"ccy": "BTC"}), CRED, CTX)
    assert (request.method, request.url) == (
        "GET",
        "https://www.okx.com/api/v5/account/balance?ccy=BTC",
    )
    assert header(request, "OK-ACCESS-SIGN") == "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="
    assert header(request, "OK-ACCESS-TIMESTAMP") == DOC_TS
    assert header(request, "OK-ACCESS-KEY") == "okx-key"
    assert header(request, "OK-ACCESS-PASSPHRASE") == PASSPHRASE
    assert request.body == b""
    assert "Content-Type" not in dict(request.headers) and "expTime" not in dict(request.headers)


def test_set_leverage_is_signed_but_never_allowed() -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint("POST", "/api/v5/account/set-leverage")


# --- request shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("order", "method", "path", "payload"),
    [
        (ORDER, "POST", "/api/v5/trade/order",
         '{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.01",'
         '"px":"30000","clOrdId":"b15"}'),
        (OrderSpec(Operation.PLACE_ORDER, symbol="BTC-USDT-SWAP", side=Side.SELL,
                   order_type=OrderType.MARKET, quantity=Decimal("2"),
                   extras={"tdMode": "cross", "reduceOnly": "true", "posSide": "net"}),
         "POST", "/api/v5/trade/order",
         '{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"sell","ordType":"market","sz":"2",'
         '"posSide":"net","reduceOnly":true}'),
        (OrderSpec(Operation.PLACE_ORDER, symbol="ETH-USDT", side=Side.BUY,
                   order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(2000),
                   time_in_force=TimeInForce.IOC), "POST", "/api/v5/trade/order",
         '{"instId":"ETH-USDT","tdMode":"cash","side":"buy","ordType":"ioc","sz":"1","px":"2000"}'),
        (OrderSpec(Operation.PLACE_ORDER, symbol="ETH-USDT", side=Side.BUY,
                   order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(2000),
                   time_in_force=TimeInForce.FOK), "POST", "/api/v5/trade/order",
         '{"instId":"ETH-USDT","tdMode":"cash","side":"buy","ordType":"fok","sz":"1","px":"2000"}'),
        (OrderSpec(Operation.PLACE_ORDER, symbol="ETH-USDT", side=Side.SELL,
                   order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(2000),
                   extras={"postOnly": "true"}), "POST", "/api/v5/trade/order",
         '{"instId":"ETH-USDT","tdMode":"cash","side":"sell","ordType":"post_only","sz":"1",'
         '"px":"2000"}'),
        (OrderSpec(Operation.CANCEL_ORDER, symbol="BTC-USDT", venue_order_id="590908157585625111"),
         "POST", "/api/v5/trade/cancel-order", '{"instId":"BTC-USDT","ordId":"590908157585625111"}'),
        (OrderSpec(Operation.CANCEL_ORDER, symbol="BTC-USDT", client_order_id="b15"),
         "POST", "/api/v5/trade/cancel-order", '{"instId":"BTC-USDT","clOrdId":"b15"}'),
        (OrderSpec(Operation.AMEND_ORDER, symbol="BTC-USDT", client_order_id="b15",
                   quantity=Decimal("0.02"), price=Decimal("29000.50"),
                   extras={"cxlOnFail": "true", "reqId": "r1"}),
         "POST", "/api/v5/trade/amend-order",
         '{"instId":"BTC-USDT","clOrdId":"b15","newSz":"0.02","newPx":"29000.5",'
         '"cxlOnFail":true,"reqId":"r1"}'),
        (OrderSpec(Operation.QUERY_ORDER, symbol="BTC-USDT", venue_order_id="680800019749904384"),
         "GET", "/api/v5/trade/order?instId=BTC-USDT&ordId=680800019749904384", ""),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS, extras={"instType": "SPOT"}),
         "GET", "/api/v5/trade/orders-pending?instType=SPOT", ""),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTC-USDT"),
         "GET", "/api/v5/trade/orders-pending?instId=BTC-USDT", ""),
        (OrderSpec(Operation.QUERY_ACCOUNT), "GET", "/api/v5/account/balance", ""),
    ],
)  # fmt: skip
def test_operations_build_signed_requests(
    order: OrderSpec, method: str, path: str, payload: str
) -> None:
    request = ADAPTER.build(order, CRED, SigningContext(now_ms=1_700_000_000_000))
    assert (request.method, request.url) == (method, "https://www.okx.com" + path)
    assert request.body == payload.encode()
    assert header(request, "OK-ACCESS-SIGN") == independent_sign(request)
    assert header(request, "OK-ACCESS-TIMESTAMP") == "2023-11-14T22:13:20.000Z"
    if payload:
        assert json.loads(payload)  # valid JSON, compact
        assert header(request, "Content-Type") == "application/json"


@pytest.mark.parametrize(
    ("window", "expire"), [(1000, 1000), (5000, 5000), (30_000, 30_000), (60_000, 30_000)]
)
def test_freshness_is_the_signed_timestamp_capped_at_30s(window: int, expire: int) -> None:
    ctx = SigningContext(now_ms=DOC_MS, recv_window_ms=window)
    place = ADAPTER.build(ORDER, CRED, ctx)
    assert place.expire_at_ms == DOC_MS + expire
    assert header(place, "expTime") == str(DOC_MS + expire)
    amend = OrderSpec(Operation.AMEND_ORDER, symbol="BTC-USDT", venue_order_id="1",
                      price=Decimal(1))  # fmt: skip
    assert header(ADAPTER.build(amend, CRED, ctx), "expTime") == str(DOC_MS + expire)
    cancel = OrderSpec(Operation.CANCEL_ORDER, symbol="BTC-USDT", venue_order_id="1")
    cancelled = ADAPTER.build(cancel, CRED, ctx)
    assert "expTime" not in dict(cancelled.headers) and cancelled.expire_at_ms == DOC_MS + expire


@pytest.mark.parametrize("window", [0, -1, 60_001])
def test_window_outside_bounds_is_refused(window: int) -> None:
    with pytest.raises(InvalidArgument):
        ADAPTER.build(ORDER, CRED, SigningContext(now_ms=DOC_MS, recv_window_ms=window))


@pytest.mark.parametrize("env", [Environment.PAPER, Environment.TESTNET])
def test_demo_trading_header_outside_live(env: Environment) -> None:
    request = ADAPTER.build(ORDER, VenueCredential(**{**CRED.__dict__, "environment": env}), CTX)
    assert header(request, "x-simulated-trading") == "1"
    assert "x-simulated-trading" not in dict(ADAPTER.build(ORDER, CRED, CTX).headers)


def test_base_url_override_points_at_a_stub() -> None:
    ctx = SigningContext(now_ms=DOC_MS, base_url="http://127.0.0.1:9/")
    assert ADAPTER.build(ORDER, CRED, ctx).url == "http://127.0.0.1:9/api/v5/trade/order"


# --- credential handling ----------------------------------------------------------------------
@pytest.mark.parametrize("passphrase", [None, Secret(""), Secret("line\nbreak"), Secret(" pad")])
def test_missing_or_unsafe_passphrase_is_refused_without_echo(passphrase: Secret | None) -> None:
    cred = VenueCredential(**{**CRED.__dict__, "passphrase": passphrase})
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(ORDER, cred, CTX)
    assert info.value.field == "credential.passphrase"
    assert "line" not in str(info.value) and "pad" not in str(info.value)


def test_secret_never_appears_and_passphrase_is_masked_in_repr() -> None:
    request = ADAPTER.build(ORDER, CRED, CTX)
    text = repr(request) + request.url + request.body.decode()
    assert DOC_SECRET not in text + "".join(v for _, v in request.headers)
    assert PASSPHRASE not in repr(request)


@pytest.mark.parametrize(
    ("cred", "error"),
    [
        (VenueCredential(**{**CRED.__dict__, "secret": None}), InvalidArgument),
        (VenueCredential(**{**CRED.__dict__, "algorithm": KeyAlgorithm.RSA}), OperationNotSupported),
        (VenueCredential(**{**CRED.__dict__, "api_key": "has space"}), InvalidArgument),
    ],
)  # fmt: skip
def test_bad_credentials_are_refused(cred: VenueCredential, error: type[Exception]) -> None:
    with pytest.raises(error):
        ADAPTER.build(ORDER, cred, CTX)


# --- malformed orders -------------------------------------------------------------------------
def _place(**changes: object) -> OrderSpec:
    return OrderSpec(**{**ORDER.__dict__, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (_place(order_type=OrderType.STOP_LIMIT, stop_price=Decimal(1)), "order.order_type"),
        (_place(time_in_force=TimeInForce.DAY), "order.time_in_force"),
        (_place(time_in_force=TimeInForce.GTD), "order.time_in_force"),
        (_place(client_order_id="has-dash"), "order.client_order_id"),
        (_place(client_order_id="x" * 33), "order.client_order_id"),
        (_place(time_in_force=TimeInForce.IOC, extras={"postOnly": "true"}), "order.extras"),
        (_place(extras={"sz": "100"}), "order.extras"),
        (_place(extras={"tgtCcy": "quote_ccy"}), "order.extras"),
        (_place(extras={"tdMode": "anything"}), "order.extras"),
        (_place(symbol=None), "order.symbol"),
        (_place(quantity=Decimal(0)), "order.quantity"),
        (OrderSpec(Operation.CANCEL_ORDER, symbol="BTC-USDT"), "order.venue_order_id"),
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="1"), "order.symbol"),
        (OrderSpec(Operation.AMEND_ORDER, symbol="BTC-USDT", venue_order_id="1"), "order.quantity"),
        (OrderSpec(Operation.AMEND_ORDER, symbol="BTC-USDT", venue_order_id="1",
                   price=Decimal(1), stop_price=Decimal(2)), "order.stop_price"),
        (OrderSpec(Operation.QUERY_ORDER, symbol="BTC-USDT", venue_order_id="1",
                   extras={"x": "y"}), "order.extras"),
        (OrderSpec(Operation.QUERY_ACCOUNT, extras={"ccy": "btc&x=1"}), "order.extras"),
    ],
)  # fmt: skip
def test_malformed_orders_are_refused(order: OrderSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == field


# --- endpoint policy --------------------------------------------------------------------------
BLOCKED = [
    ("POST", "/api/v5/asset/withdrawal"), ("POST", "/api/v5/asset/withdrawal-lightning"),
    ("POST", "/api/v5/asset/cancel-withdrawal"), ("POST", "/api/v5/asset/transfer"),
    ("POST", "/api/v5/asset/subaccount/transfer"), ("POST", "/api/v5/users/subaccount/modify-apikey"),
    ("POST", "/api/v5/users/subaccount/apikey"), ("POST", "/api/v5/users/subaccount/create-subaccount"),
    ("GET", "/api/v5/asset/balances"), ("POST", "/api/v5/account/set-leverage"),
    ("POST", "/api/v5/finance/savings/purchase-redempt"), ("POST", "/api/v5/asset/convert/trade"),
]  # fmt: skip
SMUGGLED = [
    ("POST", "/api/v5/trade/order/../../asset/transfer"), ("POST", "/api/v5/TRADE/ORDER"),
    ("POST", "/api/v5/trade/order/"), ("POST", "/api/v5/trade/%6Frder"),
    ("POST", "/api/v5//trade/order"), ("POST", "/api/v5/trade/order%2F..%2F..%2Fasset%2Ftransfer"),
    ("GET", "/api/v5/trade/cancel-order"), ("DELETE", "/api/v5/trade/order"),
    ("POST", "/api/v5/trade/order;/asset/transfer"), ("POST", "trade/order"),
    ("POST", "/api/v4/trade/order"), ("POST", "https://www.okx.com/api/v5/trade/order"),
]  # fmt: skip
ALLOWED = [
    ("POST", "/api/v5/trade/order"), ("POST", "/api/v5/trade/cancel-order"),
    ("POST", "/api/v5/trade/amend-order"), ("POST", "/api/v5/trade/batch-orders"),
    ("GET", "/api/v5/trade/order?instId=BTC-USDT&ordId=1"), ("GET", "/api/v5/trade/orders-pending"),
    ("GET", "/api/v5/account/balance"), ("get", "/api/v5/account/config"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), BLOCKED + SMUGGLED)
def test_blocked_and_smuggled_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed) as info:
        ADAPTER.check_endpoint(method, path)
    assert info.value.reason == "ENDPOINT_NOT_ALLOWED"


@pytest.mark.parametrize(("method", "path"), ALLOWED)
def test_trading_endpoints_pass(method: str, path: str) -> None:
    ADAPTER.check_endpoint(method, path)


def test_denial_reports_path_without_query_values() -> None:
    with pytest.raises(EndpointNotAllowed) as info:
        ADAPTER.check_endpoint("post", "/api/v5/asset/transfer?amt=1000000")
    assert info.value.metadata == {"method": "POST", "path": "/api/v5/asset/transfer"}


# --- scopes and permissions -------------------------------------------------------------------
@pytest.mark.parametrize(
    "token", ["withdraw", "Withdraw", "WITHDRAW", "transfer", "funding transfer", "with-draw",
              "wіthdraw", "ＷＩＴＨＤＲＡＷ", "enable_withdrawals", "Deposit"],
)  # fmt: skip
def test_fund_moving_scopes_are_rejected(token: str) -> None:
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["read_only", token], ADAPTER.scope_vocabulary)


def test_trading_scopes_normalise() -> None:
    vocab = ADAPTER.scope_vocabulary
    assert normalize_scopes(["read_only", "trade"], vocab) == {Scope.READ, Scope.TRADE}
    assert normalize_scopes(["Read", "TRADE"], vocab) == {Scope.READ, Scope.TRADE}
    with pytest.raises(UnknownScope):
        normalize_scopes(["admin"], vocab)


def config_body(perm: str, code: str = "0") -> bytes:
    row = {
        "uid": "44705892343619584",
        "mainUid": "44705892343619584",
        "acctLv": "2",
        "posMode": "net_mode",
        "autoLoan": False,
        "perm": perm,
        "ip": "",
        "label": "bot",
    }
    return json.dumps({"code": code, "msg": "", "data": [row]}).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("perm", "scopes"),
    [
        ("read_only,withdraw,trade", {Scope.READ, Scope.TRADE, Scope.WITHDRAW}),
        ("read_only,trade", {Scope.READ, Scope.TRADE}),
        ("read_only", {Scope.READ}),
        ("trade, read_only", {Scope.READ, Scope.TRADE}),
        ("read_only,transfer", {Scope.READ, Scope.TRANSFER}),
    ],
)
def test_perm_strings_map_to_scopes(perm: str, scopes: set[Scope]) -> None:
    report = ADAPTER.parse_permissions(200, config_body(perm))
    assert report.scopes == scopes
    assert report.raw["perm"] == perm and report.raw["label"] == "bot" and report.raw["ip"] == ""


def test_unknown_perm_tokens_are_recorded() -> None:
    report = ADAPTER.parse_permissions(200, config_body("read_only,futures_magic"))
    assert report.scopes == {Scope.READ} and report.raw["unknownPermissions"] == "futures_magic"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b'{"code":"50111","msg":"Invalid OK-ACCESS-KEY","data":[]}'),
        (200, config_body("read_only", code="50001")), (200, b'{"code":"0","data":[]}'),
        (200, b'{"code":"0","data":[{"perm":7}]}'), (200, b"<html>"), (200, b"[]"),
    ],
)  # fmt: skip
def test_failed_permission_answers_are_errors(status: int, body: bytes) -> None:
    with pytest.raises(VenueUnavailable):
        ADAPTER.parse_permissions(status, body)


def test_permission_request_is_a_signed_account_config_get() -> None:
    request = ADAPTER.permission_request(CRED, CTX)
    assert request is not None
    assert (request.method, request.url) == ("GET", "https://www.okx.com/api/v5/account/config")
    assert header(request, "OK-ACCESS-SIGN") == independent_sign(request)
