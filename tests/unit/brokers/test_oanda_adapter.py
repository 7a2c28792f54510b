"""OANDA v20 adapter: proxy-only bearer requests, order shapes, allow-list, single-tier scopes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

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
from vault_server.brokers.venues.oanda import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    UnknownScope,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

TOKEN = "f00dcafe0123456789abcdef-0123456789abcdef0123456789abcdef0123"
ACCOUNT = "101-004-1234567-001"
CRED = VenueCredential(
    Venue.OANDA, Environment.LIVE, KeyAlgorithm.BEARER, "personal-token",
    secret=Secret(TOKEN), account_id=ACCOUNT,
)  # fmt: skip
CTX = SigningContext(now_ms=1_700_000_000_000)
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="EUR_USD", side=Side.SELL, order_type=OrderType.LIMIT,
    quantity=Decimal("1000"), price=Decimal("1.08500"), client_order_id="strat-1",
)  # fmt: skip
A = f"/v3/accounts/{ACCOUNT}"


def test_adapter_satisfies_the_protocol() -> None:
    adapter: VenueAdapter = ADAPTER
    assert adapter.proxy_only and adapter.single_permission_tier and not adapter.needs_nonce
    assert adapter.algorithms == {KeyAlgorithm.BEARER} and adapter.generatable == frozenset()
    assert adapter.default_base_url(Environment.LIVE) == "https://api-fxtrade.oanda.com"
    assert adapter.default_base_url(Environment.PAPER) == "https://api-fxpractice.oanda.com"
    assert adapter.default_base_url(Environment.TESTNET) == "https://api-fxpractice.oanda.com"


def test_secret_appears_only_in_the_authorization_header() -> None:
    request = ADAPTER.build(ORDER, CRED, CTX)
    auth = [v for k, v in request.headers if k == "Authorization"]
    assert auth == [f"Bearer {TOKEN}"]
    others = "".join(k + v for k, v in request.headers if k != "Authorization")
    assert TOKEN not in others + request.url + request.body.decode()
    assert TOKEN not in repr(request) and TOKEN not in str(request)


def test_place_order_shape() -> None:
    request = ADAPTER.build(ORDER, CRED, CTX)
    assert (request.method, request.url) == ("POST", f"https://api-fxtrade.oanda.com{A}/orders")
    assert request.body == (
        b'{"order":{"type":"LIMIT","instrument":"EUR_USD","units":"-1000","price":"1.085",'
        b'"timeInForce":"GTC","positionFill":"DEFAULT","clientExtensions":{"id":"strat-1"}}}'
    )
    headers = dict(request.headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Datetime-Format"] == "RFC3339"
    assert request.expire_at_ms == 1_700_000_005_000


def order_json(request: PreparedRequest) -> dict[str, Any]:
    return json.loads(request.body)["order"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"order_type": OrderType.MARKET, "price": None, "side": Side.BUY, "client_order_id": None},
         {"type": "MARKET", "instrument": "EUR_USD", "units": "1000", "timeInForce": "FOK",
          "positionFill": "DEFAULT"}),
        ({"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.IOC,
          "client_order_id": None, "extras": {"positionFill": "REDUCE_ONLY"}},
         {"type": "MARKET", "instrument": "EUR_USD", "units": "-1000", "timeInForce": "IOC",
          "positionFill": "REDUCE_ONLY"}),
        ({"time_in_force": TimeInForce.GTD, "client_order_id": None,
          "extras": {"gtdTime": "2030-01-01T00:00:00Z", "triggerCondition": "MID"}},
         {"type": "LIMIT", "instrument": "EUR_USD", "units": "-1000", "price": "1.085",
          "timeInForce": "GTD", "positionFill": "DEFAULT", "gtdTime": "2030-01-01T00:00:00Z",
          "triggerCondition": "MID"}),
        ({"time_in_force": TimeInForce.DAY, "client_order_id": None},
         {"type": "LIMIT", "instrument": "EUR_USD", "units": "-1000", "price": "1.085",
          "timeInForce": "GFD", "positionFill": "DEFAULT"}),
    ],
)  # fmt: skip
def test_order_request_variants(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    request = ADAPTER.build(OrderSpec(**{**ORDER.__dict__, **changes}), CRED, CTX)
    assert order_json(request) == expected
    assert list(order_json(request)) == list(expected)


@pytest.mark.parametrize(
    ("order", "method", "tail", "body"),
    [
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="6372"), "PUT", "/orders/6372/cancel", b""),
        (OrderSpec(Operation.CANCEL_ORDER, client_order_id="strat-1"), "PUT",
         "/orders/@strat-1/cancel", b""),
        (OrderSpec(Operation.QUERY_ORDER, venue_order_id="6372"), "GET", "/orders/6372", b""),
        (OrderSpec(Operation.QUERY_ORDER, client_order_id="strat-1"), "GET", "/orders/@strat-1", b""),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS), "GET", "/pendingOrders", b""),
        (OrderSpec(Operation.QUERY_ACCOUNT), "GET", "/summary", b""),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id="6372", symbol="EUR_USD", side=Side.BUY,
                   order_type=OrderType.LIMIT, quantity=Decimal(500), price=Decimal("1.07")),
         "PUT", "/orders/6372",
         b'{"order":{"type":"LIMIT","instrument":"EUR_USD","units":"500","price":"1.07",'
         b'"timeInForce":"GTC","positionFill":"DEFAULT"}}'),
    ],
)  # fmt: skip
def test_operations(order: OrderSpec, method: str, tail: str, body: bytes) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    assert (request.method, request.url, request.body) == (
        method, f"https://api-fxtrade.oanda.com{A}{tail}", body)  # fmt: skip
    assert ("Content-Type" in dict(request.headers)) == bool(body)


def test_practice_and_stub_base_urls() -> None:
    paper = VenueCredential(**{**CRED.__dict__, "environment": Environment.PAPER})
    assert ADAPTER.build(ORDER, paper, CTX).url.startswith("https://api-fxpractice.oanda.com/v3/")
    stub = SigningContext(now_ms=1, base_url="http://127.0.0.1:1")
    assert ADAPTER.build(ORDER, CRED, stub).url == f"http://127.0.0.1:1{A}/orders"


@pytest.mark.parametrize(
    ("cred", "field"),
    [
        (VenueCredential(**{**CRED.__dict__, "account_id": None}), "credential.account_id"),
        (VenueCredential(**{**CRED.__dict__, "account_id": "../../other"}), "credential.account_id"),
        (VenueCredential(**{**CRED.__dict__, "account_id": "101-004-1/../2-001"}),
         "credential.account_id"),
        (VenueCredential(**{**CRED.__dict__, "secret": None}), "credential.secret"),
        (VenueCredential(**{**CRED.__dict__, "secret": Secret("tok\r\nX-Evil: 1")}),
         "credential.secret"),
    ],
)  # fmt: skip
def test_bad_credentials_are_refused_without_echo(cred: VenueCredential, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(ORDER, cred, CTX)
    assert info.value.field == field and "Evil" not in str(info.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"symbol": "EURUSD"}, "order.symbol"), ({"symbol": "EUR_USD/../x"}, "order.symbol"),
        ({"order_type": OrderType.STOP_LOSS, "price": None, "stop_price": Decimal(1)},
         "order.order_type"),
        ({"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.GTC},
         "order.time_in_force"),
        ({"time_in_force": TimeInForce.GTD}, "order.extras"),
        ({"extras": {"gtdTime": "2030-01-01T00:00:00Z"}}, "order.extras"),
        ({"extras": {"units": "100000"}}, "order.extras"),
        ({"extras": {"positionFill": "ALL_IN"}}, "order.extras"),
        ({"order_type": OrderType.MARKET, "price": None, "extras": {"triggerCondition": "MID"}},
         "order.extras"),
        ({"client_order_id": "has/slash"}, "order.client_order_id"),
        ({"quantity": Decimal("-5")}, "order.quantity"),
    ],
)  # fmt: skip
def test_malformed_orders_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(OrderSpec(**{**ORDER.__dict__, **changes}), CRED, CTX)
    assert info.value.field == field


@pytest.mark.parametrize(
    "order",
    [
        OrderSpec(Operation.CANCEL_ORDER, venue_order_id="../configuration"),
        OrderSpec(Operation.CANCEL_ORDER, venue_order_id="12a"),
        OrderSpec(Operation.QUERY_ORDER, client_order_id="..%2Fconfiguration"),
        OrderSpec(Operation.QUERY_ORDER),
    ],
)
def test_specifiers_cannot_escape_the_path(order: OrderSpec) -> None:
    with pytest.raises(InvalidArgument):
        ADAPTER.build(order, CRED, CTX)


BLOCKED = [
    ("PATCH", f"{A}/configuration"), ("GET", f"{A}"), ("GET", f"{A}/transactions"),
    ("PUT", f"{A}/positions/EUR_USD/close"), ("PUT", f"{A}/trades/1/clientExtensions"),
    ("GET", f"{A}/trades"), ("GET", f"{A}/trades/1"), ("GET", f"{A}/openPositions"),
    ("POST", f"{A}/trades/1/close"), ("GET", f"{A}/trades/1/orders"),
    ("PUT", f"{A}/trades/@c1/close"), ("PUT", f"{A}/openTrades"),
    ("PUT", f"{A}/orders/1/clientExtensions"), ("GET", "/v3/accounts"),
    ("GET", f"{A}/orders"), ("DELETE", f"{A}/orders/1"), ("POST", f"{A}/orders/1"),
]  # fmt: skip
SMUGGLED = [
    ("POST", f"{A}/orders/../configuration"), ("POST", f"{A}/ORDERS"), ("POST", f"{A}/orders/"),
    ("POST", f"{A}/%6Frders"), ("POST", f"/v3/accounts//{ACCOUNT}/orders"),
    ("GET", f"{A}/orders/%2E%2E"), ("GET", f"{A}/orders/1/../../configuration"),
    ("GET", "/v3/accounts/../v3/accounts/1-1-1-1/summary"), ("POST", f"/V3/accounts/{ACCOUNT}/orders"),
    ("GET", f"{A}/orders/@a/b"), ("PUT", f"{A}/orders/1/cancel/"),
    ("PUT", f"{A}/trades/1/close/"), ("PUT", f"{A}/trades/../orders/1/close"),
    ("PUT", f"{A}/trades/%31/close"),
]  # fmt: skip
ALLOWED = [
    ("POST", f"{A}/orders"), ("PUT", f"{A}/orders/6372"), ("PUT", f"{A}/orders/@strat-1/cancel"),
    ("GET", f"{A}/orders/6372"), ("GET", f"{A}/pendingOrders"), ("get", f"{A}/summary"),
    ("PUT", f"{A}/trades/6375/close"), ("PUT", f"{A}/trades/6375/orders"),
    ("GET", f"{A}/openTrades"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), BLOCKED + SMUGGLED)
def test_unlisted_and_smuggled_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


@pytest.mark.parametrize(("method", "path"), ALLOWED)
def test_trading_endpoints_pass(method: str, path: str) -> None:
    ADAPTER.check_endpoint(method, path)


def test_no_permission_api() -> None:
    assert ADAPTER.permission_request(CRED, CTX) is None
    with pytest.raises(OperationNotSupported):
        ADAPTER.parse_permissions(200, b"{}")


@pytest.mark.parametrize("token", ["withdraw", "transfer", "TRANSFER_FUNDS", "fund-transfer",
                                   "withdrawals", "send funds"])  # fmt: skip
def test_fund_moving_scopes_are_rejected(token: str) -> None:
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["trading", token], ADAPTER.scope_vocabulary)


@pytest.mark.parametrize(
    ("tokens", "scopes"),
    [(["trading"], {Scope.READ, Scope.TRADE}), (["Full"], {Scope.READ, Scope.TRADE}),
     (["full_access"], {Scope.READ, Scope.TRADE}), (["trade"], {Scope.READ, Scope.TRADE}),
     (["read"], {Scope.READ})],
)  # fmt: skip
def test_single_tier_vocabulary(tokens: list[str], scopes: set[Scope]) -> None:
    assert normalize_scopes(tokens, ADAPTER.scope_vocabulary) == scopes
    with pytest.raises(UnknownScope):
        normalize_scopes(["godmode"], ADAPTER.scope_vocabulary)
