"""TradeLocker: the order mapping, its refusals and allow-list, and the session protocol driven
over real HTTP against the loopback stub (login -> authorize -> order, expiry, rotating refresh,
bad password and lockout, platform down, the shared forex flow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.forex_flow import Account
from tests.venue_stubs.tradelocker_stub import ACC_NUM, FLOW, TradeLockerStub
from vault_server.brokers import registry
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
    SizeUnit,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.lifecycle import (
    Answer,
    Lifecycle,
    LoginRefused,
    ReauthorizationNeeded,
    SessionContext,
    SessionTokens,
)
from vault_server.brokers.revealed import secret_values
from vault_server.brokers.venues.tradelocker import ADAPTER
from vault_server.brokers.venues.tradelocker_session import RENEW_MARGIN_MS, SESSION
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    VenueUnavailable,
)
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
HOST = "https://demo.tradelocker.com/backend-api"
ACCOUNT = Account()


def credential(account: Account = ACCOUNT, **changes: Any) -> VenueCredential:
    password = changes.pop("password", account.password)
    cred = VenueCredential(
        Venue.TRADELOCKER, Environment.PAPER, KeyAlgorithm.SESSION_LOGIN, ACC_NUM,
        secret=Secret(password.encode()), account_id=account.account_id,
        username=account.username, server=account.server,
    )  # fmt: skip
    return replace(cred, **changes)


def build(order: OrderSpec, base_url: str | None = None, **changes: Any) -> PreparedRequest:
    ctx = SigningContext(now_ms=NOW, base_url=base_url)
    return ADAPTER.build(order, credential(**changes), ctx)


def body(request: PreparedRequest) -> Any:
    return json.loads(request.body)


def place(**changes: Any) -> OrderSpec:
    order = OrderSpec(
        Operation.PLACE_ORDER, symbol="206:452", side=Side.BUY, order_type=OrderType.MARKET,
        quantity=Decimal("0.01"), stop_loss=ProtectiveLevel(price=Decimal("1.05")),
        take_profit=ProtectiveLevel(price=Decimal("1.2")),
    )  # fmt: skip
    return replace(order, **changes)


def op(operation: Operation, **fields: Any) -> OrderSpec:
    return OrderSpec(operation, **fields)


# --- mapping -------------------------------------------------------------------------------------
def test_market_order_with_sl_and_tp_in_lots() -> None:
    request = build(place())
    assert (request.method, request.url) == ("POST", HOST + "/trade/accounts/1001/orders")
    assert request.body == (
        b'{"tradableInstrumentId":206,"routeId":452,"side":"buy","qty":0.01,"type":"market",'
        b'"validity":"IOC","stopLoss":1.05,"stopLossType":"absolute","takeProfit":1.2,'
        b'"takeProfitType":"absolute"}'
    )
    assert ("Content-Type", "application/json") in request.headers
    assert not any(name == "Authorization" for name, _ in request.headers)  # the session's job
    assert ADAPTER.size_unit is SizeUnit.LOTS and ADAPTER.lifecycle is Lifecycle.PASSWORD_SESSION
    assert ADAPTER.proxy_only and ADAPTER.single_permission_tier and ADAPTER.session is SESSION


def test_distance_levels_are_offsets_and_strategy_id_is_the_client_id() -> None:
    order = place(stop_loss=ProtectiveLevel(distance=Decimal("0.002")), take_profit=None,
                  client_order_id="sig-42")  # fmt: skip
    sent = body(build(order))
    assert (sent["stopLoss"], sent["stopLossType"], sent["strategyId"]) == (
        0.002,
        "offset",
        "sig-42",
    )
    assert "takeProfit" not in sent
    with pytest.raises(InvalidArgument, match="client_order_id"):
        build(replace(order, client_order_id="x" * 32))


def test_limit_is_gtc_and_stop_carries_its_stop_price() -> None:
    limit = place(order_type=OrderType.LIMIT, price=Decimal("1.08505"), side=Side.SELL)
    sent = body(build(limit))
    assert (sent["type"], sent["validity"], sent["price"], sent["side"]) == (
        "limit", "GTC", 1.08505, "sell"
    )  # fmt: skip
    assert body(build(replace(limit, time_in_force=TimeInForce.GTC)))["validity"] == "GTC"
    with pytest.raises(InvalidArgument, match="GTC only"):
        build(replace(limit, time_in_force=TimeInForce.IOC))
    with pytest.raises(InvalidArgument, match="IOC only"):
        build(place(time_in_force=TimeInForce.GTC))
    stop = body(build(place(order_type=OrderType.STOP_LOSS, stop_price=Decimal("1.07"))))
    assert (stop["type"], stop["validity"], stop["stopPrice"]) == ("stop", "GTC", 1.07)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"symbol": "EURUSD"}, "order.symbol"),
        ({"symbol": "206"}, "order.symbol"),
        ({"quantity": None, "quote_quantity": Decimal("100")}, "order.quote_quantity"),
        ({"quantity": Decimal("0")}, "order.quantity"),
        ({"quantity": Decimal("0.1000000000000000055511151231257827")}, "order.quantity"),
        ({"order_type": OrderType.STOP_LIMIT, "price": Decimal("1"), "stop_price": Decimal("1")},
         "order.order_type"),
        ({"extras": {"routeId": "9"}}, "order.extras"),
        ({"stop_loss": ProtectiveLevel()}, "order.stop_loss"),
        ({"take_profit": ProtectiveLevel(price=Decimal("1"), distance=Decimal("1"))},
         "order.take_profit"),
    ],
)  # fmt: skip
def test_place_refusals(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        build(place(**changes))
    assert err.value.field == field


def test_position_operations() -> None:
    amend = build(op(Operation.AMEND_POSITION, position_id="77",
                     stop_loss=ProtectiveLevel(price=Decimal("1.06"))))  # fmt: skip
    assert (amend.method, amend.url, body(amend)) == (
        "PATCH", HOST + "/trade/positions/77", {"stopLoss": 1.06}
    )  # fmt: skip
    whole = build(op(Operation.CLOSE_POSITION, position_id="77"))
    assert (whole.method, whole.url, whole.body) == (
        "DELETE", HOST + "/trade/positions/77", b'{"qty":0}'
    )  # fmt: skip
    part = build(op(Operation.CLOSE_POSITION, position_id="77", quantity=Decimal("0.5")))
    assert body(part) == {"qty": 0.5}
    listed = build(op(Operation.QUERY_POSITIONS))
    assert (listed.method, listed.url) == ("GET", HOST + "/trade/accounts/1001/positions")


def test_position_refusals_never_drop_a_level() -> None:
    with pytest.raises(InvalidArgument, match="prices only"):
        build(op(Operation.AMEND_POSITION, position_id="77",
                 stop_loss=ProtectiveLevel(distance=Decimal("0.002"))))  # fmt: skip
    with pytest.raises(InvalidArgument, match="required"):
        build(op(Operation.AMEND_POSITION, position_id="77"))
    with pytest.raises(InvalidArgument, match="close_position"):
        build(op(Operation.CLOSE_POSITION, position_id="77",
                 stop_loss=ProtectiveLevel(price=Decimal("1.06"))))  # fmt: skip
    for bad in (None, "../7", "7a"):
        with pytest.raises(InvalidArgument, match="position_id"):
            build(op(Operation.CLOSE_POSITION, position_id=bad))


def test_order_operations_and_queries() -> None:
    cancel = build(op(Operation.CANCEL_ORDER, venue_order_id="123"))
    assert (cancel.method, cancel.url, cancel.body) == ("DELETE", HOST + "/trade/orders/123", b"")
    amend = build(op(Operation.AMEND_ORDER, venue_order_id="123", price=Decimal("1.09"),
                     quantity=Decimal("0.02")))  # fmt: skip
    assert (amend.method, body(amend)) == ("PATCH", {"price": 1.09, "qty": 0.02})
    assert build(op(Operation.QUERY_OPEN_ORDERS)).url == HOST + "/trade/accounts/1001/orders"
    assert build(op(Operation.QUERY_ACCOUNT)).url == HOST + "/trade/accounts/1001/state"
    with pytest.raises(InvalidArgument, match="venue_order_id"):
        build(op(Operation.CANCEL_ORDER, client_order_id="c1"))
    with pytest.raises(InvalidArgument):
        build(op(Operation.AMEND_ORDER, venue_order_id="123"))
    with pytest.raises(OperationNotSupported):
        build(op(Operation.QUERY_ORDER, venue_order_id="123"))


def test_credential_and_unit_refusals() -> None:
    with pytest.raises(InvalidArgument, match="accountId"):
        build(place(), account_id="ACC-1")
    with pytest.raises(InvalidArgument, match="size_unit"):
        build(place(size_unit=SizeUnit.BASE_UNITS))
    assert body(build(place(size_unit=SizeUnit.LOTS)))["qty"] == 0.01
    with pytest.raises(OperationNotSupported):
        build(place(), algorithm=KeyAlgorithm.BEARER)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/trade/accounts/1001/orders", True),
        ("GET", "/trade/accounts/1001/positions", True),
        ("PATCH", "/trade/positions/9", True),
        ("DELETE", "/trade/orders/9", True),
        ("DELETE", "/trade/accounts/1001/positions", False),  # close every position
        ("DELETE", "/trade/accounts/1001/orders", False),  # cancel every order
        ("GET", "/trade/accounts/1001/instruments", False),
        ("POST", "/auth/jwt/token", False),
        ("GET", "/auth/jwt/all-accounts", False),
        ("PATCH", "/trade/positions/9/../x", False),
    ],
)
def test_endpoint_allow_list(method: str, path: str, allowed: bool) -> None:
    if allowed:
        ADAPTER.check_endpoint(method, path)
    else:
        with pytest.raises(EndpointNotAllowed):
            ADAPTER.check_endpoint(method, path)


def test_registered_and_no_longer_planned() -> None:
    assert Venue.TRADELOCKER not in registry.PLANNED
    assert registry.adapter_for(Venue.TRADELOCKER) is ADAPTER


def test_login_request_and_field_checks() -> None:
    ctx = SessionContext(now_ms=NOW, base_url=HOST)
    request = SESSION.login(credential(), ctx)
    assert (request.method, request.url) == ("POST", HOST + "/auth/jwt/token")
    assert body(request) == {"email": ACCOUNT.username, "password": ACCOUNT.password,
                             "server": ACCOUNT.server}  # fmt: skip
    for changes, field in (({"username": "no-email"}, "username"), ({"server": ""}, "server"),
                           ({"api_key": "appkey1"}, "api_key")):  # fmt: skip
        with pytest.raises(InvalidArgument, match=field):
            SESSION.login(credential(**changes), ctx)
    with pytest.raises(InvalidArgument, match="UTF-8"):
        SESSION.login(replace(credential(), secret=Secret(b"\xff\xfe")), ctx)
    assert SESSION.renew_margin_ms == RENEW_MARGIN_MS and SESSION.refresh_rotates
    assert not SESSION.retry_safe_on_expiry


@pytest.mark.parametrize(
    "raw", [b"not json", b"[]", b'{"accessToken":"x","refreshToken":"y"}', b"{}"]
)
def test_a_garbled_login_answer_is_unavailable_not_a_bad_login(raw: bytes) -> None:
    ctx = SessionContext(now_ms=NOW, base_url=HOST)
    with pytest.raises(VenueUnavailable):
        SESSION.parse_login(Answer(201, (), raw), credential(), ctx)


# --- protocol against the stub --------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stub(clock: Clock) -> Iterator[TradeLockerStub]:
    with TradeLockerStub(ACCOUNT, clock=clock) as running:
        yield running


def send(request: PreparedRequest) -> Answer:
    reply = httpx.request(request.method, request.url, headers=list(request.headers),
                          content=request.body, timeout=5)  # fmt: skip
    return Answer(reply.status_code, tuple(reply.headers.items()), reply.content)


def ctx(stub: TradeLockerStub, clock: Clock) -> SessionContext:
    return SessionContext(now_ms=clock.now, base_url=stub.base_url)


def login(
    stub: TradeLockerStub, clock: Clock, cred: VenueCredential | None = None
) -> SessionTokens:
    cred = cred or credential()
    answer = send(SESSION.login(cred, ctx(stub, clock)))
    return SESSION.parse_login(answer, cred, ctx(stub, clock))


def trade(stub: TradeLockerStub, order: OrderSpec, tokens: SessionTokens) -> Answer:
    request = ADAPTER.build(order, credential(), SigningContext(now_ms=NOW, base_url=stub.base_url))
    return send(SESSION.authorize(request, tokens, credential()))


def test_login_authorize_and_trade_through_the_stub(stub: TradeLockerStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    assert stub.logins == 1 and tokens.expires_at_ms == NOW + stub.access_ttl_ms
    assert tokens.refresh_expires_at_ms == NOW + stub.refresh_ttl_ms
    request = SESSION.authorize(build(place(), stub.base_url), tokens, credential())
    headers = dict(request.headers)
    assert isinstance(headers["Authorization"], RedactedHeader)
    assert headers["accNum"] == ACC_NUM and not isinstance(headers["accNum"], RedactedHeader)
    assert tokens.values["access"] in secret_values(request.headers)
    answer = send(request)
    assert answer.status == 200 and not SESSION.expired(answer.status, {}, answer.body)
    position = stub.positions[FLOW.position_id(stub, answer.body)]
    assert (position["stopLoss"], position["takeProfit"], position["qty"]) == (1.05, 1.2, 0.01)


def test_the_shared_flow_amend_then_close(stub: TradeLockerStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    placed = trade(stub, place(symbol=FLOW.symbol, quantity=Decimal(FLOW.quantity)), tokens)
    position_id = FLOW.position_id(stub, placed.body)
    amend = op(Operation.AMEND_POSITION, position_id=position_id,
               stop_loss=ProtectiveLevel(price=Decimal(FLOW.amended_stop_loss)))  # fmt: skip
    assert trade(stub, amend, tokens).status == 200
    assert stub.positions[position_id]["stopLoss"] == float(FLOW.amended_stop_loss)
    assert stub.positions[position_id]["takeProfit"] == float(FLOW.take_profit)
    partial = op(Operation.CLOSE_POSITION, position_id=position_id, quantity=Decimal("0.004"))
    assert trade(stub, partial, tokens).status == 200
    assert stub.positions[position_id]["qty"] == pytest.approx(0.006)
    listed = json.loads(trade(stub, op(Operation.QUERY_POSITIONS), tokens).body)
    assert listed["d"]["positions"][0][0] == position_id
    assert trade(stub, op(Operation.CLOSE_POSITION, position_id=position_id), tokens).status == 200
    assert stub.positions == {}


def test_expired_access_token_is_the_sessions_end(stub: TradeLockerStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    clock.now = tokens.expires_at_ms
    answer = trade(stub, op(Operation.QUERY_ACCOUNT), tokens)
    assert answer.status == 401 and SESSION.expired(answer.status, {}, answer.body)
    assert stub.positions == {}


def test_expire_sessions_ends_every_access_token(stub: TradeLockerStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    stub.expire_sessions()
    answer = trade(stub, place(), tokens)
    assert SESSION.expired(answer.status, {}, answer.body) and stub.positions == {}


def test_refresh_rotates_and_the_old_refresh_token_is_refused(
    stub: TradeLockerStub, clock: Clock
) -> None:
    first = login(stub, clock)
    clock.now += 60_000
    request = SESSION.refresh(first, credential(), ctx(stub, clock))
    assert request is not None and request.url == stub.base_url + "/auth/jwt/refresh"
    second = SESSION.parse_refresh(send(request), first, credential(), ctx(stub, clock))
    assert second.values["access"] != first.values["access"]
    assert second.values["refresh"] != first.values["refresh"]
    assert second.expires_at_ms == clock.now + stub.access_ttl_ms and stub.logins == 1
    assert trade(stub, op(Operation.QUERY_ACCOUNT), second).status == 200
    with pytest.raises(ReauthorizationNeeded):
        SESSION.parse_refresh(send(request), first, credential(), ctx(stub, clock))
    empty = SessionTokens(values={"access": "a"}, expires_at_ms=NOW)
    assert SESSION.refresh(empty, credential(), ctx(stub, clock)) is None


def test_expired_refresh_token_is_refused(stub: TradeLockerStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    clock.now = tokens.refresh_expires_at_ms or 0
    request = SESSION.refresh(tokens, credential(), ctx(stub, clock))
    assert request is not None
    with pytest.raises(ReauthorizationNeeded):
        SESSION.parse_refresh(send(request), tokens, credential(), ctx(stub, clock))


def test_wrong_password_is_refused_and_locks_the_account(
    stub: TradeLockerStub, clock: Clock
) -> None:
    wrong = credential(password="not-the-password")
    for _ in range(FLOW.wrong_password_locks_after):
        with pytest.raises(LoginRefused):
            login(stub, clock, wrong)
    assert stub.failed_logins == FLOW.wrong_password_locks_after and stub.locked
    with pytest.raises(LoginRefused):
        login(stub, clock)  # the right password no longer helps
    assert stub.logins == 0


def test_platform_down_is_unavailable(stub: TradeLockerStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    stub.down = True
    with pytest.raises(VenueUnavailable):
        login(stub, clock)
    request = SESSION.refresh(tokens, credential(), ctx(stub, clock))
    assert request is not None
    with pytest.raises(VenueUnavailable):
        SESSION.parse_refresh(send(request), tokens, credential(), ctx(stub, clock))
    assert stub.failed_logins == 0


def test_the_stub_refuses_what_tradelocker_refuses(stub: TradeLockerStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    good = SESSION.authorize(build(place(), stub.base_url), tokens, credential())
    no_acc_num = replace(good, headers=tuple(h for h in good.headers if h[0] != "accNum"))
    assert send(no_acc_num).status == 400
    wrong_validity = replace(good, body=good.body.replace(b'"IOC"', b'"GTC"'))
    assert send(wrong_validity).status == 400
    lone_level = replace(good, body=good.body.replace(b',"stopLossType":"absolute"', b""))
    assert send(lone_level).status == 400
    not_json = replace(good, body=b"{")
    assert send(not_json).status == 400
    foreign = replace(good, url=good.url.replace("/1001/", "/1002/"))
    assert send(foreign).status == 404
    assert stub.positions == {} and send(good).status == 200
