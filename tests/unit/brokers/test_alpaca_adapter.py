"""Alpaca adapter: proxy-only static-header requests, order shapes, allow-list, scopes."""

from __future__ import annotations

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
    VenueAdapter,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.venues.alpaca import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

KEY_ID = "PKTESTKEYID0123456789"
SECRET = "sEcReT0123456789abcdefghijklmnopqrstuvwxyz"
CRED = VenueCredential(
    Venue.ALPACA, Environment.PAPER, KeyAlgorithm.STATIC_HEADERS, KEY_ID, secret=Secret(SECRET)
)
CTX = SigningContext(now_ms=1_700_000_000_000, recv_window_ms=2000)
OID = "61e69015-8549-4bfd-b9c3-01e75843f47d"
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="AAPL", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("10"), price=Decimal("187.50"), client_order_id="strat-1",
)  # fmt: skip
PAPER = "https://paper-api.alpaca.markets"


def test_adapter_satisfies_the_protocol() -> None:
    adapter: VenueAdapter = ADAPTER
    assert adapter.proxy_only and adapter.single_permission_tier and not adapter.needs_nonce
    assert adapter.algorithms == {KeyAlgorithm.STATIC_HEADERS} and not adapter.generatable
    assert adapter.default_base_url(Environment.LIVE) == "https://api.alpaca.markets"
    assert adapter.default_base_url(Environment.PAPER) == PAPER


def test_secret_appears_only_in_its_header() -> None:
    request = ADAPTER.build(ORDER, CRED, CTX)
    assert [v for k, v in request.headers if k == "APCA-API-SECRET-KEY"] == [SECRET]
    assert dict(request.headers)["APCA-API-KEY-ID"] == KEY_ID
    others = "".join(k + v for k, v in request.headers if k != "APCA-API-SECRET-KEY")
    assert SECRET not in others + request.url + request.body.decode()
    assert SECRET not in repr(request)
    assert request.expire_at_ms == 1_700_000_002_000


@pytest.mark.parametrize(
    ("order", "method", "url", "body"),
    [
        (ORDER, "POST", "/v2/orders",
         b'{"symbol":"AAPL","qty":"10","side":"buy","type":"limit","time_in_force":"day",'
         b'"limit_price":"187.5","client_order_id":"strat-1"}'),
        (OrderSpec(Operation.PLACE_ORDER, symbol="BTC/USD", side=Side.SELL,
                   order_type=OrderType.MARKET, quantity=Decimal("0.5"),
                   time_in_force=TimeInForce.IOC), "POST", "/v2/orders",
         b'{"symbol":"BTC/USD","qty":"0.5","side":"sell","type":"market","time_in_force":"ioc"}'),
        (OrderSpec(Operation.PLACE_ORDER, symbol="AAPL", side=Side.SELL,
                   order_type=OrderType.STOP_LOSS, quantity=Decimal(1), stop_price=Decimal(150),
                   time_in_force=TimeInForce.GTC, extras={"extended_hours": "false"}),
         "POST", "/v2/orders",
         b'{"symbol":"AAPL","qty":"1","side":"sell","type":"stop","time_in_force":"gtc",'
         b'"stop_price":"150","extended_hours":false}'),
        (OrderSpec(Operation.PLACE_ORDER, symbol="AAPL", side=Side.BUY,
                   order_type=OrderType.STOP_LIMIT, quantity=Decimal(1), price=Decimal(151),
                   stop_price=Decimal(150), time_in_force=TimeInForce.FOK), "POST", "/v2/orders",
         b'{"symbol":"AAPL","qty":"1","side":"buy","type":"stop_limit","time_in_force":"fok",'
         b'"limit_price":"151","stop_price":"150"}'),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id=OID, quantity=Decimal(5),
                   price=Decimal("186"), time_in_force=TimeInForce.GTC, client_order_id="strat-2"),
         "PATCH", f"/v2/orders/{OID}",
         b'{"qty":"5","limit_price":"186","time_in_force":"gtc","client_order_id":"strat-2"}'),
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id=OID), "DELETE", f"/v2/orders/{OID}", b""),
        (OrderSpec(Operation.QUERY_ORDER, venue_order_id=OID), "GET", f"/v2/orders/{OID}", b""),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS), "GET", "/v2/orders?status=open", b""),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="BTC/USD"), "GET",
         "/v2/orders?status=open&symbols=BTC%2FUSD", b""),
        (OrderSpec(Operation.QUERY_ACCOUNT), "GET", "/v2/account", b""),
    ],
)  # fmt: skip
def test_request_shapes(order: OrderSpec, method: str, url: str, body: bytes) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    assert (request.method, request.url, request.body) == (method, PAPER + url, body)
    assert ("Content-Type" in dict(request.headers)) == bool(body)


def test_live_environment_uses_the_live_host() -> None:
    live = VenueCredential(**{**CRED.__dict__, "environment": Environment.LIVE})
    assert ADAPTER.build(ORDER, live, CTX).url == "https://api.alpaca.markets/v2/orders"


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (OrderSpec(**{**ORDER.__dict__, "time_in_force": TimeInForce.GTD}), "order.time_in_force"),
        (OrderSpec(**{**ORDER.__dict__, "order_type": OrderType.TAKE_PROFIT_LIMIT,
                      "stop_price": Decimal(1)}), "order.order_type"),
        (OrderSpec(**{**ORDER.__dict__, "extras": {"notional": "1000"}}), "order.extras"),
        (OrderSpec(**{**ORDER.__dict__, "extras": {"order_class": "bracket"}}), "order.extras"),
        (OrderSpec(**{**ORDER.__dict__, "client_order_id": "bad id"}), "order.client_order_id"),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id=OID), "order.quantity"),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id=OID, price=Decimal(1),
                   extras={"trail": "1"}), "order.extras"),
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="../../v2/wallets/transfers"),
         "order.venue_order_id"),
        (OrderSpec(Operation.CANCEL_ORDER, client_order_id="strat-1"), "order.venue_order_id"),
        (OrderSpec(Operation.QUERY_ORDER, venue_order_id=OID + "/x"), "order.venue_order_id"),
    ],
)  # fmt: skip
def test_malformed_orders_are_refused(order: OrderSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == field


@pytest.mark.parametrize("secret", [None, Secret(""), Secret("two words"), Secret("x\ny")])
def test_missing_or_unsafe_secret_is_refused(secret: Secret | None) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(ORDER, VenueCredential(**{**CRED.__dict__, "secret": secret}), CTX)
    assert info.value.field == "credential.secret" and "words" not in str(info.value)


BLOCKED = [
    ("POST", "/v2/wallets/transfers"), ("GET", "/v2/wallets/transfers"), ("GET", "/v2/wallets"),
    ("PATCH", "/v2/wallets/whitelists/x/travel-rule-info"), ("POST", "/v2/wallets/whitelists"),
    ("PATCH", "/v2/account/configurations"), ("GET", "/v2/account/configurations"),
    ("DELETE", "/v2/positions"), ("DELETE", "/v2/orders"), ("GET", "/v2/account/activities"),
    ("POST", "/v1/transfers"),
]  # fmt: skip
SMUGGLED = [
    ("POST", "/v2/orders/../wallets/transfers"), ("POST", "/V2/ORDERS"), ("POST", "/v2/orders/"),
    ("POST", "/v2/%6Frders"), ("POST", "//v2/orders"), ("PATCH", f"/v2/orders/{OID}/../../account"),
    ("DELETE", f"/v2/orders/{OID}/"), ("GET", "/v2/orders/%2e%2e%2fwallets"),
    ("PUT", f"/v2/orders/{OID}"), ("POST", f"/v2/orders/{OID}"), ("GET", "/v2/orders:by_client_order_id"),
]  # fmt: skip
ALLOWED = [
    ("POST", "/v2/orders"), ("GET", "/v2/orders?status=open"), ("GET", f"/v2/orders/{OID}"),
    ("PATCH", f"/v2/orders/{OID}"), ("delete", f"/v2/orders/{OID}"), ("GET", "/v2/account"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), BLOCKED + SMUGGLED)
def test_blocked_and_smuggled_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


@pytest.mark.parametrize(("method", "path"), ALLOWED)
def test_trading_endpoints_pass(method: str, path: str) -> None:
    ADAPTER.check_endpoint(method, path)


def test_no_permission_api() -> None:
    assert ADAPTER.permission_request(CRED, CTX) is None
    with pytest.raises(OperationNotSupported):
        ADAPTER.parse_permissions(200, b"{}")


@pytest.mark.parametrize("token", ["crypto transfers", "wallet", "withdraw", "account:write transfer",
                                   "transfers", "TRANSFER"])  # fmt: skip
def test_fund_moving_scopes_are_rejected(token: str) -> None:
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["trading", token], ADAPTER.scope_vocabulary)


@pytest.mark.parametrize("tokens", [["trading"], ["full"], ["Trade"], ["read", "trading"]])
def test_trading_scopes_normalise(tokens: list[str]) -> None:
    assert normalize_scopes(tokens, ADAPTER.scope_vocabulary) == {Scope.READ, Scope.TRADE}
