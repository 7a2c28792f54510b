"""Binance Spot / USD-M adapters: operations, extras, endpoint policy, scopes, permissions."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

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
    VenueAdapter,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.spec import SpecAdapter as BinanceAdapter
from vault_server.brokers.venues.binance_spot import ADAPTER as SPOT
from vault_server.brokers.venues.binance_usdm import ADAPTER as USDM
from vault_server.core.errors import (
    EndpointNotAllowed,
    InternalError,
    InvalidArgument,
    OperationNotSupported,
    UnknownScope,
    VenueUnavailable,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

SECRET = "s3cr3t-hmac-value-never-printed"
CTX = SigningContext(now_ms=1_700_000_000_000, recv_window_ms=5000)


def cred(adapter: BinanceAdapter, env: Environment = Environment.LIVE) -> VenueCredential:
    return VenueCredential(
        adapter.venue, env, KeyAlgorithm.HMAC_SHA256, "api-key-1", secret=Secret(SECRET)
    )


def params_of(adapter: BinanceAdapter, order: OrderSpec) -> tuple[str, str, list[tuple[str, str]]]:
    request = adapter.build(order, cred(adapter), CTX)
    url = urlsplit(request.url)
    return request.method, url.path, parse_qsl(url.query)


def test_adapters_satisfy_the_protocol_and_describe_themselves() -> None:
    adapters: list[VenueAdapter] = [SPOT, USDM]
    assert [a.venue for a in adapters] == [Venue.BINANCE_SPOT, Venue.BINANCE_USDM]
    assert not SPOT.proxy_only and not SPOT.single_permission_tier and not SPOT.needs_nonce
    assert SPOT.generatable == {KeyAlgorithm.ED25519, KeyAlgorithm.RSA}
    assert USDM.generatable == {KeyAlgorithm.RSA}
    assert KeyAlgorithm.ED25519 not in USDM.algorithms
    assert SECRET not in repr(SPOT)


@pytest.mark.parametrize(
    ("adapter", "env", "url"),
    [
        (SPOT, Environment.LIVE, "https://api.binance.com"),
        (SPOT, Environment.TESTNET, "https://testnet.binance.vision"),
        (USDM, Environment.LIVE, "https://fapi.binance.com"),
        (USDM, Environment.TESTNET, "https://testnet.binancefuture.com"),
    ],
)
def test_base_urls(adapter: BinanceAdapter, env: Environment, url: str) -> None:
    assert adapter.default_base_url(env) == url
    with pytest.raises(OperationNotSupported):
        adapter.default_base_url(Environment.PAPER)


def test_ctx_base_url_overrides_the_environment_default() -> None:
    order = OrderSpec(Operation.QUERY_ACCOUNT)
    ctx = SigningContext(now_ms=1, base_url="http://127.0.0.1:9/")
    assert SPOT.build(order, cred(SPOT), ctx).url.startswith("http://127.0.0.1:9/api/v3/account?")


@pytest.mark.parametrize(
    ("adapter", "order", "method", "path", "params"),
    [
        (SPOT, OrderSpec(Operation.CANCEL_ORDER, symbol="BTCUSDT", venue_order_id="42"),
         "DELETE", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", "42")]),
        (SPOT, OrderSpec(Operation.QUERY_ORDER, symbol="BTCUSDT", client_order_id="c-1"),
         "GET", "/api/v3/order", [("symbol", "BTCUSDT"), ("origClientOrderId", "c-1")]),
        (SPOT, OrderSpec(Operation.AMEND_ORDER, symbol="BTCUSDT", venue_order_id="7",
                         quantity=Decimal("0.50")),
         "PUT", "/api/v3/order/amend/keepPriority",
         [("symbol", "BTCUSDT"), ("orderId", "7"), ("newQty", "0.5")]),
        (SPOT, OrderSpec(Operation.QUERY_OPEN_ORDERS), "GET", "/api/v3/openOrders", []),
        (SPOT, OrderSpec(Operation.QUERY_ACCOUNT), "GET", "/api/v3/account", []),
        (USDM, OrderSpec(Operation.AMEND_ORDER, symbol="BTCUSDT", venue_order_id="7",
                         side=Side.SELL, quantity=Decimal("2"), price=Decimal("30000")),
         "PUT", "/fapi/v1/order", [("symbol", "BTCUSDT"), ("orderId", "7"), ("side", "SELL"),
                                   ("quantity", "2"), ("price", "30000")]),
        (USDM, OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="ETHUSDT"), "GET",
         "/fapi/v1/openOrders", [("symbol", "ETHUSDT")]),
        (USDM, OrderSpec(Operation.QUERY_ACCOUNT), "GET", "/fapi/v3/account", []),
        (USDM, OrderSpec(Operation.PLACE_ORDER, symbol="BTCUSDT", side=Side.SELL,
                         order_type=OrderType.STOP_LOSS, quantity=Decimal("1"),
                         stop_price=Decimal("25000"), extras={"reduceOnly": "true",
                                                              "positionSide": "BOTH"}),
         "POST", "/fapi/v1/order",
         [("symbol", "BTCUSDT"), ("side", "SELL"), ("type", "STOP_MARKET"), ("quantity", "1"),
          ("stopPrice", "25000"), ("positionSide", "BOTH"), ("reduceOnly", "true")]),
    ],
)  # fmt: skip
def test_operations_build_the_documented_request(
    adapter: BinanceAdapter,
    order: OrderSpec,
    method: str,
    path: str,
    params: list[tuple[str, str]],
) -> None:
    got_method, got_path, got = params_of(adapter, order)
    assert (got_method, got_path) == (method, path)
    assert got[:-3] == params
    assert [name for name, _ in got[-3:]] == ["recvWindow", "timestamp", "signature"]


@pytest.mark.parametrize(
    ("adapter", "order", "field"),
    [
        (SPOT, OrderSpec(Operation.PLACE_ORDER, symbol="X", order_type=OrderType.LIMIT,
                         quantity=Decimal(1), price=Decimal(1)), "order.side"),
        (SPOT, OrderSpec(Operation.PLACE_ORDER, symbol="X", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal(1)), "order.price"),
        (SPOT, OrderSpec(Operation.PLACE_ORDER, symbol="X", side=Side.BUY,
                         order_type=OrderType.MARKET, quantity=Decimal(1), price=Decimal(1)),
         "order.price"),
        (SPOT, OrderSpec(Operation.PLACE_ORDER, symbol="X", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal(0), price=Decimal(1)),
         "order.quantity"),
        (SPOT, OrderSpec(Operation.PLACE_ORDER, symbol="X", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(0)),
         "order.price"),
        (SPOT, OrderSpec(Operation.PLACE_ORDER, symbol="X", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(1),
                         time_in_force=TimeInForce.DAY), "order.time_in_force"),
        (SPOT, OrderSpec(Operation.CANCEL_ORDER, symbol="X"), "order.venue_order_id"),
        (SPOT, OrderSpec(Operation.CANCEL_ORDER, symbol="X", venue_order_id="abc"),
         "order.venue_order_id"),
        (SPOT, OrderSpec(Operation.CANCEL_ORDER, venue_order_id="1"), "order.symbol"),
        (SPOT, OrderSpec(Operation.AMEND_ORDER, symbol="X", venue_order_id="1",
                         quantity=Decimal(1), price=Decimal(2)), "order.price"),
        (USDM, OrderSpec(Operation.AMEND_ORDER, symbol="X", venue_order_id="1",
                         quantity=Decimal(1), price=Decimal(2)), "order.side"),
        (USDM, OrderSpec(Operation.PLACE_ORDER, symbol="X", side=Side.BUY,
                         order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(1),
                         time_in_force=TimeInForce.GTD), "order.extras"),
        (SPOT, OrderSpec(Operation.QUERY_ACCOUNT, extras={"omitZeroBalances": "true"}),
         "order.extras"),
    ],
)  # fmt: skip
def test_malformed_orders_are_refused_with_the_field_named(
    adapter: BinanceAdapter, order: OrderSpec, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        adapter.build(order, cred(adapter), CTX)
    assert info.value.field == field


def place(extras: dict[str, str]) -> OrderSpec:
    return OrderSpec(
        Operation.PLACE_ORDER,
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("1"),
        price=Decimal("1"),
        extras=extras,
    )


@pytest.mark.parametrize(
    "extras",
    [
        {"timestamp": "1"}, {"recvWindow": "60000"}, {"signature": "00"}, {"symbol": "ETHBTC"},
        {"price": "0.0001"}, {"quantity": "1000"}, {"newClientOrderId": "x"},
        {"quoteOrderQty": "100000"}, {"closePosition": "true"}, {"Timestamp": "1"},
        {"newOrderRespType": "EVERYTHING"}, {"selfTradePreventionMode": "NONE&price=1"},
        {f"k{i}": "v" for i in range(17)},
    ],
)  # fmt: skip
def test_extras_are_allow_listed_and_never_override_signed_fields(extras: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        SPOT.build(place(extras), cred(SPOT), CTX)
    assert info.value.field == "order.extras"


def test_accepted_extras_are_validated_and_sorted_before_the_freshness_fields() -> None:
    extras = {"selfTradePreventionMode": "EXPIRE_MAKER", "newOrderRespType": "RESULT"}
    _, _, got = params_of(SPOT, place(extras))
    names = [name for name, _ in got]
    assert names == ["symbol", "side", "type", "timeInForce", "quantity", "price",
                     "newOrderRespType", "selfTradePreventionMode", "recvWindow", "timestamp",
                     "signature"]  # fmt: skip
    assert dict(got)["timeInForce"] == "GTC"  # Binance requires one; GTC is the default


@pytest.mark.parametrize("window", [0, -1, 60_001, 9_999_999])
def test_recv_window_outside_1_to_60000_ms_is_refused(window: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        SPOT.build(place({}), cred(SPOT), SigningContext(now_ms=1, recv_window_ms=window))
    assert info.value.field == "recv_window_ms"


def test_wrong_venue_or_key_type_is_refused() -> None:
    with pytest.raises(InternalError):
        SPOT.build(place({}), cred(USDM), CTX)
    ed = VenueCredential(Venue.BINANCE_USDM, Environment.LIVE, KeyAlgorithm.ED25519, "k")
    with pytest.raises(OperationNotSupported):
        USDM.build(place({}), ed, CTX)
    bad_key = VenueCredential(
        Venue.BINANCE_SPOT,
        Environment.LIVE,
        KeyAlgorithm.HMAC_SHA256,
        "k\r\nX: y",
        secret=Secret("s"),
    )
    with pytest.raises(InvalidArgument):
        SPOT.build(place({}), bad_key, CTX)


def test_the_secret_never_appears_in_the_request() -> None:
    request = SPOT.build(place({}), cred(SPOT), CTX)
    assert SECRET not in repr(request) and SECRET.encode() not in request.body


# --- endpoint policy ---------------------------------------------------------------------------
SAPI_BLOCKED = [
    ("POST", "/sapi/v1/capital/withdraw/apply"), ("POST", "/sapi/v1/localentity/withdraw/apply"),
    ("POST", "/sapi/v1/asset/transfer"), ("POST", "/sapi/v1/futures/transfer"),
    ("POST", "/sapi/v1/margin/transfer"), ("POST", "/sapi/v1/sub-account/transfer/subToSub"),
    ("POST", "/sapi/v1/sub-account/transfer/subToMaster"),
    ("POST", "/sapi/v1/sub-account/universalTransfer"),
    ("POST", "/sapi/v1/sub-account/futures/transfer"),
    ("POST", "/sapi/v1/sub-account/margin/transfer"), ("POST", "/sapi/v1/asset/dust"),
    ("POST", "/sapi/v1/giftcard/createCode"),
    ("POST", "/sapi/v1/account/apiRestrictions/ipRestriction"),
    ("POST", "/sapi/v2/sub-account/subAccountApi/ipRestriction"),
    ("POST", "/sapi/v1/account/apiRestrictions"), ("DELETE", "/sapi/v1/account/apiRestrictions"),
    ("GET", "/sapi/v1/capital/config/getall"), ("POST", "/sapi/v1/margin/loan"),
]  # fmt: skip
SMUGGLING = [
    ("GET", "/api/v3/../sapi/v1/capital/withdraw/apply"),
    ("POST", "/api/v3/order/../../../sapi/v1/capital/withdraw/apply"),
    ("POST", "/API/V3/ORDER"), ("POST", "/api/v3/order/"), ("POST", "/api/v3/%6Frder"),
    ("POST", "/api/v3//order"), ("POST", "//api/v3/order"), ("POST", "/api/v3/./order"),
    ("GET", "/SAPI/v1/account/apiRestrictions"), ("GET", "/sapi/v1/account/apiRestrictions/"),
    ("GET", "/sapi/v1/account/apiRestrictions%2F..%2F..%2Fcapital%2Fwithdraw%2Fapply"),
    ("GET", "/sapi/v1/account/%61piRestrictions"),
    ("POST", "/api/v3/order;/sapi/v1/capital/withdraw/apply"), ("POST", "/api/v3/order\x00"),
    ("POST", "/api/v3/order#x"), ("POST", " /api/v3/order"), ("POST", "/api/v3/order%20"),
    ("POST", "https://api.binance.com/sapi/v1/capital/withdraw/apply"),
    ("POST", "/api/v3/order/%2e%2e/%2e%2e/%2e%2e/sapi/v1/asset/transfer"),
    ("POST", "/api/v3/order\\..\\..\\sapi"), ("TRACE", "/api/v3/order"),
]  # fmt: skip
SPOT_ALLOWED = [
    ("POST", "/api/v3/order"), ("DELETE", "/api/v3/order"), ("GET", "/api/v3/order"),
    ("PUT", "/api/v3/order/amend/keepPriority"), ("GET", "/api/v3/openOrders"),
    ("DELETE", "/api/v3/openOrders"), ("GET", "/api/v3/account"), ("POST", "/api/v3/order/test"),
    ("POST", "/api/v3/orderList/oco"), ("POST", "/api/v3/sor/order"),
    ("GET", "/sapi/v1/account/apiRestrictions"), ("get", "/api/v3/account"),
    ("POST", "/api/v3/order?symbol=BTCUSDT&signature=00"),
]  # fmt: skip
USDM_ALLOWED = [
    ("POST", "/fapi/v1/order"), ("PUT", "/fapi/v1/order"), ("DELETE", "/fapi/v1/order"),
    ("GET", "/fapi/v1/order"), ("GET", "/fapi/v1/openOrders"), ("GET", "/fapi/v3/account"),
    ("DELETE", "/fapi/v1/allOpenOrders"), ("POST", "/fapi/v1/batchOrders"),
    ("GET", "/sapi/v1/account/apiRestrictions"),
]  # fmt: skip
USDM_BLOCKED = [
    ("POST", "/fapi/v1/leverage"), ("POST", "/fapi/v1/marginType"),
    ("POST", "/fapi/v1/positionMargin"), ("POST", "/fapi/v1/positionSide/dual"),
    ("POST", "/fapi/v1/multiAssetsMargin"), ("POST", "/api/v3/order"),
    ("POST", "/fapi/v1/listenKey"), ("GET", "/fapi/v1/order/../../../sapi/v1/asset/transfer"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), SAPI_BLOCKED + SMUGGLING)
@pytest.mark.parametrize("adapter", [SPOT, USDM], ids=["spot", "usdm"])
def test_fund_moving_and_smuggled_endpoints_are_refused(
    adapter: BinanceAdapter, method: str, path: str
) -> None:
    with pytest.raises(EndpointNotAllowed) as info:
        adapter.check_endpoint(method, path)
    assert info.value.reason == "ENDPOINT_NOT_ALLOWED"
    assert "?" not in info.value.metadata["path"]


@pytest.mark.parametrize(("method", "path"), USDM_BLOCKED)
def test_usdm_settings_and_other_markets_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        USDM.check_endpoint(method, path)


@pytest.mark.parametrize(
    ("adapter", "method", "path"),
    [(SPOT, m, p) for m, p in SPOT_ALLOWED] + [(USDM, m, p) for m, p in USDM_ALLOWED],
)
def test_trading_and_query_endpoints_pass(adapter: BinanceAdapter, method: str, path: str) -> None:
    adapter.check_endpoint(method, path)


# --- scopes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        "enableWithdrawals", "Enable Withdrawals", "ENABLE_WITHDRAWALS", "enable-withdrawals",
        "ｅｎａｂｌｅＷｉｔｈｄｒａｗａｌｓ", "enableWіthdrawals", "enableInternalTransfer",
        "permitsUniversalTransfer", "Permits Universal Transfer", "Enable Margin Loan, Repay & Transfer",
        "withdraw", "transfer", "enable\u200bwithdrawals",
    ],
)  # fmt: skip
def test_withdraw_and_transfer_scope_variants_are_rejected(token: str) -> None:
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["enableReading", token], SPOT.scope_vocabulary)


def test_trading_scopes_normalise() -> None:
    vocab = SPOT.scope_vocabulary
    assert normalize_scopes(["enableReading", "Enable Spot & Margin Trading"], vocab) == {
        Scope.READ,
        Scope.TRADE,
    }
    assert normalize_scopes(["READ", "enableFutures"], USDM.scope_vocabulary) == {
        Scope.READ,
        Scope.TRADE,
    }
    with pytest.raises(UnknownScope):
        normalize_scopes(["enableEverything"], vocab)


def test_every_non_fund_moving_vocabulary_token_is_usable() -> None:
    for token, scopes in SPOT.scope_vocabulary.items():
        if not scopes & {Scope.WITHDRAW, Scope.TRANSFER}:
            assert normalize_scopes([token], SPOT.scope_vocabulary) == scopes


# --- permissions ------------------------------------------------------------------------------
DOC_EXAMPLE = {
    "ipRestrict": False, "createTime": 1698645219000, "enableInternalTransfer": False,
    "enableFutures": False, "enablePortfolioMarginTrading": True, "enableVanillaOptions": False,
    "permitsUniversalTransfer": False, "enableReading": True, "enableSpotAndMarginTrading": False,
    "enableWithdrawals": False, "enableMargin": False,
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "spot", "usdm"),
    [
        ({}, {Scope.READ}, {Scope.READ}),
        ({"enableSpotAndMarginTrading": True}, {Scope.READ, Scope.TRADE}, {Scope.READ}),
        ({"enableFutures": True}, {Scope.READ}, {Scope.READ, Scope.TRADE}),
        ({"enableWithdrawals": True}, {Scope.READ, Scope.WITHDRAW}, {Scope.READ, Scope.WITHDRAW}),
        ({"enableInternalTransfer": True}, {Scope.READ, Scope.TRANSFER},
         {Scope.READ, Scope.TRANSFER}),
        ({"permitsUniversalTransfer": True, "enableReading": False}, {Scope.TRANSFER},
         {Scope.TRANSFER}),
    ],
)  # fmt: skip
def test_permissions_are_parsed_from_api_restrictions(
    changes: dict[str, bool], spot: set[Scope], usdm: set[Scope]
) -> None:
    body = json.dumps(DOC_EXAMPLE | changes).encode()
    assert SPOT.parse_permissions(200, body).scopes == spot
    report = USDM.parse_permissions(200, body)
    assert report.scopes == usdm
    withdrawals = "true" if changes.get("enableWithdrawals") else "false"
    assert report.raw["enableWithdrawals"] == withdrawals
    assert report.raw["createTime"] == "1698645219000"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b'{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}'),
        (200, b'{"code": -1022, "msg": "Signature for this request is not valid."}'),
        (200, json.dumps({k: v for k, v in DOC_EXAMPLE.items() if k != "enableWithdrawals"})
         .encode()),
        (200, json.dumps(DOC_EXAMPLE | {"permitsUniversalTransfer": "false"}).encode()),
        (200, b"<html>"), (200, b"[]"), (502, b""),
    ],
)  # fmt: skip
def test_failed_or_incomplete_permission_answers_are_errors(status: int, body: bytes) -> None:
    with pytest.raises(VenueUnavailable):
        SPOT.parse_permissions(status, body)


@pytest.mark.parametrize("adapter", [SPOT, USDM], ids=["spot", "usdm"])
def test_permission_request_targets_api_binance_com(adapter: BinanceAdapter) -> None:
    request = adapter.permission_request(cred(adapter), CTX)
    assert request is not None and request.method == "GET"
    url = urlsplit(request.url)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "api.binance.com",
        "/sapi/v1/account/apiRestrictions",
    )
    assert [k for k, _ in parse_qsl(url.query)] == ["recvWindow", "timestamp", "signature"]
    assert adapter.permission_request(cred(adapter, Environment.TESTNET), CTX) is None
    stubbed = SigningContext(now_ms=1, base_url="http://127.0.0.1:1")
    assert adapter.permission_request(cred(adapter, Environment.TESTNET), stubbed) is not None
