"""Match-Trader: the order mapping, its refusals and allow-list, and the session protocol driven
over real HTTP against the loopback stub (login -> authorize -> order, expiry, refresh, lockout,
platform down)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.forex_flow import Account
from tests.venue_stubs.match_trader_stub import FLOW, SYSTEM_UUID, MatchTraderStub
from vault_server.brokers import registry
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
from vault_server.brokers.lifecycle import Answer, Lifecycle, LoginRefused, SessionContext
from vault_server.brokers.venues.match_trader import ADAPTER
from vault_server.brokers.venues.match_trader_session import (
    MAX_REFRESHES,
    SESSION,
    SYSTEM_PLACEHOLDER,
    TOKEN_TTL_MS,
)
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    VenueUnavailable,
)
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
PREFIX = f"/mtr-api/{SYSTEM_PLACEHOLDER}"


def credential(account: Account, *, password: str | None = None) -> VenueCredential:
    return VenueCredential(
        Venue.MATCH_TRADER, Environment.PAPER, KeyAlgorithm.SESSION_LOGIN, account.username,
        secret=Secret(password if password is not None else account.password),
        account_id=account.account_id, username=account.username, server=account.server,
    )  # fmt: skip


ACCOUNT = Account()
CRED = credential(ACCOUNT)


def build(order: OrderSpec, base_url: str = "https://mtr.example.test") -> PreparedRequest:
    return ADAPTER.build(order, CRED, SigningContext(now_ms=NOW, base_url=base_url))


def body(request: PreparedRequest) -> Any:
    return json.loads(request.body)


def place(**changes: Any) -> OrderSpec:
    order = OrderSpec(
        Operation.PLACE_ORDER, symbol="EURUSD", side=Side.BUY, order_type=OrderType.MARKET,
        quantity=Decimal("0.1"), stop_loss=ProtectiveLevel(price=Decimal("1.05")),
        take_profit=ProtectiveLevel(price=Decimal("1.2")),
    )  # fmt: skip
    return replace(order, **changes)


# --- mapping -------------------------------------------------------------------------------------
def test_market_order_opens_a_position_with_sl_and_tp_in_lots() -> None:
    request = build(place())
    assert (request.method, request.url) == (
        "POST", f"https://mtr.example.test{PREFIX}/position/open"
    )  # fmt: skip
    assert request.body == (
        b'{"instrument":"EURUSD","orderSide":"BUY","volume":0.1,'
        b'"slPrice":1.05,"tpPrice":1.2,"isMobile":false}'
    )
    assert ("Content-Type", "application/json") in request.headers
    assert ADAPTER.size_unit is SizeUnit.LOTS and ADAPTER.lifecycle is Lifecycle.PASSWORD_SESSION
    assert ADAPTER.proxy_only and ADAPTER.single_permission_tier


def test_limit_order_is_a_gtc_pending_order() -> None:
    order = place(order_type=OrderType.LIMIT, price=Decimal("1.08505"), side=Side.SELL,
                  take_profit=None, time_in_force=TimeInForce.GTC)  # fmt: skip
    request = build(order)
    assert request.url.endswith(f"{PREFIX}/pending-order/create")
    assert body(request) == {"instrument": "EURUSD", "orderSide": "SELL", "volume": 0.1,
                             "type": "LIMIT", "price": 1.08505, "slPrice": 1.05,
                             "isMobile": False}  # fmt: skip
    with pytest.raises(InvalidArgument, match="GTC"):
        build(replace(order, time_in_force=TimeInForce.IOC))


def test_market_order_without_levels_sends_none() -> None:
    assert "slPrice" not in body(build(place(stop_loss=None, take_profit=None)))


@pytest.mark.parametrize("field", ["stop_loss", "take_profit"])
def test_a_distance_level_is_refused_never_dropped(field: str) -> None:
    with pytest.raises(InvalidArgument, match="prices only"):
        build(place(**{field: ProtectiveLevel(distance=Decimal("0.002"))}))


def test_amend_position_sets_the_levels_given() -> None:
    order = OrderSpec(Operation.AMEND_POSITION, position_id="5001",
                      stop_loss=ProtectiveLevel(price=Decimal("1.06")))  # fmt: skip
    request = build(order)
    assert request.url.endswith(f"{PREFIX}/position/edit")
    assert body(request) == {"positionId": "5001", "slPrice": 1.06}
    with pytest.raises(InvalidArgument, match="stop_loss"):
        build(replace(order, stop_loss=None))
    with pytest.raises(InvalidArgument, match="position_id"):
        build(replace(order, position_id=None))


def test_close_position_whole_or_partial_needs_an_explicit_volume() -> None:
    order = OrderSpec(Operation.CLOSE_POSITION, position_id="5001", symbol="EURUSD",
                      side=Side.BUY, quantity=Decimal("0.05"))  # fmt: skip
    request = build(order)
    assert request.url.endswith(f"{PREFIX}/position/close")
    assert body(request) == {"positionId": "5001", "instrument": "EURUSD", "orderSide": "BUY",
                             "volume": 0.05}  # fmt: skip
    with pytest.raises(InvalidArgument, match="quantity"):
        build(replace(order, quantity=None))
    with pytest.raises(InvalidArgument, match="stop_loss"):
        build(replace(order, stop_loss=ProtectiveLevel(price=Decimal("1"))))


def test_cancel_pending_order() -> None:
    order = OrderSpec(Operation.CANCEL_ORDER, venue_order_id="5002", symbol="EURUSD",
                      side=Side.SELL)  # fmt: skip
    assert body(build(order)) == {"id": "5002", "instrument": "EURUSD", "orderSide": "SELL",
                                  "type": "LIMIT"}  # fmt: skip
    with pytest.raises(InvalidArgument, match="side"):
        build(replace(order, side=None))


@pytest.mark.parametrize(("operation", "path"), [
    (Operation.QUERY_POSITIONS, "/open-positions"),
    (Operation.QUERY_OPEN_ORDERS, "/active-orders"),
    (Operation.QUERY_ACCOUNT, "/balance"),
])  # fmt: skip
def test_queries(operation: Operation, path: str) -> None:
    request = build(OrderSpec(operation))
    assert (request.method, request.url, request.body) == (
        "GET", f"https://mtr.example.test{PREFIX}{path}", b""
    )  # fmt: skip


@pytest.mark.parametrize("operation", [Operation.AMEND_ORDER, Operation.QUERY_ORDER])
def test_operations_the_platform_lacks_are_refused(operation: Operation) -> None:
    with pytest.raises(OperationNotSupported):
        build(OrderSpec(operation, venue_order_id="5002"))


@pytest.mark.parametrize("changes", [
    {"quote_quantity": Decimal("100"), "quantity": None},
    {"size_unit": SizeUnit.BASE_UNITS},
    {"position_id": "5001"},
    {"quantity": Decimal("0.1234567890123456")},
    {"symbol": "EUR USD"},
    {"extras": {"comment": "x"}},
    {"order_type": OrderType.STOP_LOSS, "stop_price": Decimal("1.1")},
])  # fmt: skip
def test_bad_orders_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises((InvalidArgument, OperationNotSupported)):
        build(place(**changes))


@pytest.mark.parametrize(("method", "path"), [
    ("POST", f"/mtr-api/{SYSTEM_UUID}/position/open"),
    ("GET", f"/mtr-api/{SYSTEM_UUID}/open-positions"),
    ("POST", f"{PREFIX}/pending-order/cancel"),
])  # fmt: skip
def test_allow_list_admits_trading_endpoints(method: str, path: str) -> None:
    ADAPTER.check_endpoint(method, path)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"{PREFIX}/position/open"),
    ("POST", "/manager/co-login"),
    ("POST", "/manager/refresh-token"),
    ("POST", f"{PREFIX}/withdraw"),
    ("POST", f"{PREFIX}/closed-positions"),
    ("POST", "/mtr-api/not-a-uuid/position/open"),
    ("GET", f"{PREFIX}/open-positions/../withdraw"),
])  # fmt: skip
def test_allow_list_refuses_everything_else(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


def test_environments_and_registry() -> None:
    assert ADAPTER.default_base_url(Environment.PAPER) == "https://mtr-demo-prod.match-trader.com"
    with pytest.raises(OperationNotSupported, match="own platform"):
        ADAPTER.default_base_url(Environment.LIVE)
    assert registry.adapter_for(Venue.MATCH_TRADER).venue is Venue.MATCH_TRADER
    assert Venue.MATCH_TRADER not in registry.PLANNED
    assert ADAPTER.permission_request(CRED, SigningContext(now_ms=NOW)) is None


@pytest.mark.parametrize("changes", [
    {"username": "not-an-email"}, {"server": "bad broker"}, {"account_id": None},
    {"secret": None},
])  # fmt: skip
def test_login_refuses_incomplete_material(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        SESSION.login(replace(CRED, **changes), SessionContext(NOW, "https://x.test"))


# --- protocol against the stub -------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stub(clock: Clock) -> Iterator[MatchTraderStub]:
    with MatchTraderStub(ACCOUNT, clock=clock) as running:
        yield running


def send(request: PreparedRequest, step: int = 0) -> Answer:
    reply = httpx.request(request.method, request.url, headers=list(request.headers),
                          content=request.body, timeout=5)  # fmt: skip
    return Answer(reply.status_code, tuple(reply.headers.items()), reply.content, step)


def ctx(stub: MatchTraderStub, clock: Clock) -> SessionContext:
    return SessionContext(clock.now, stub.base_url)


def login(stub: MatchTraderStub, clock: Clock, cred: VenueCredential = CRED) -> Any:
    context = ctx(stub, clock)
    return SESSION.parse_login(send(SESSION.login(cred, context)), cred, context)


def trade(stub: MatchTraderStub, tokens: Any, order: OrderSpec) -> Answer:
    request = ADAPTER.build(order, CRED, SigningContext(now_ms=NOW, base_url=stub.base_url))
    return send(SESSION.authorize(request, tokens, CRED))


def test_login_then_order_with_sl_tp_amend_and_close(stub: MatchTraderStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    assert stub.logins == 1
    assert tokens.facts["systemUuid"] == SYSTEM_UUID
    assert tokens.expires_at_ms == NOW + TOKEN_TTL_MS
    placed = trade(stub, tokens, place())
    assert placed.status == 200, placed.body
    position_id = FLOW.position_id(stub, placed.body)
    assert stub.positions[position_id]["stopLoss"] == 1.05
    amend = OrderSpec(Operation.AMEND_POSITION, position_id=position_id,
                      stop_loss=ProtectiveLevel(price=Decimal(FLOW.amended_stop_loss)))  # fmt: skip
    assert trade(stub, tokens, amend).status == 200
    assert stub.positions[position_id]["stopLoss"] == 1.06
    assert stub.positions[position_id]["takeProfit"] == 1.2  # left unchanged
    close = OrderSpec(Operation.CLOSE_POSITION, position_id=position_id, symbol="EURUSD",
                      side=Side.BUY, quantity=Decimal("0.04"))  # fmt: skip
    assert trade(stub, tokens, close).status == 200  # partial
    assert stub.positions[position_id]["volume"] == pytest.approx(0.06)
    assert trade(stub, tokens, replace(close, quantity=Decimal("0.06"))).status == 200
    assert stub.positions == {}
    listed = trade(stub, tokens, OrderSpec(Operation.QUERY_POSITIONS))
    assert (listed.status, json.loads(listed.body)) == (200, {"positions": []})


def test_session_headers_are_redacted_and_the_path_gets_the_system_uuid(
    stub: MatchTraderStub, clock: Clock
) -> None:
    tokens = login(stub, clock)
    request = ADAPTER.build(place(), CRED, SigningContext(now_ms=NOW, base_url=stub.base_url))
    authorized = SESSION.authorize(request, tokens, CRED)
    assert f"/mtr-api/{SYSTEM_UUID}/position/open" in authorized.url
    secret_headers = {n: v for n, v in authorized.headers if n in ("Auth-trading-api", "Cookie")}
    assert secret_headers["Cookie"] == "co-auth=" + tokens.values["coAuth"]
    assert all(repr(v) == "'***'" for v in secret_headers.values())
    assert tokens.values["coAuth"] not in repr(tokens)


def test_an_unauthorized_request_is_refused_by_the_stub(
    stub: MatchTraderStub, clock: Clock
) -> None:
    request = ADAPTER.build(place(), CRED, SigningContext(now_ms=NOW, base_url=stub.base_url))
    answer = send(request)
    assert answer.status == 401 and SESSION.expired(answer.status, {}, answer.body)
    assert stub.positions == {}


def test_expired_session_is_recognised(stub: MatchTraderStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    stub.expire_sessions()
    answer = trade(stub, tokens, place())
    assert answer.status == 401
    assert SESSION.expired(answer.status, dict(answer.headers), answer.body)
    assert not SESSION.expired(400, {}, b"{}")
    assert stub.positions == {}


def test_token_lifetime_is_enforced_by_the_stub(stub: MatchTraderStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    clock.now = tokens.expires_at_ms
    assert trade(stub, tokens, OrderSpec(Operation.QUERY_ACCOUNT)).status == 401


def test_refresh_gives_new_tokens_and_retires_the_old(stub: MatchTraderStub, clock: Clock) -> None:
    old = login(stub, clock)
    clock.now += 14 * 60_000
    refresh = SESSION.refresh(old, CRED, ctx(stub, clock))
    assert refresh is not None
    new = SESSION.parse_refresh(send(refresh), old, CRED, ctx(stub, clock))
    assert new.values["coAuth"] != old.values["coAuth"]
    assert new.values["tradingApiToken"] != old.values["tradingApiToken"]
    assert new.expires_at_ms == clock.now + TOKEN_TTL_MS
    assert new.facts["systemUuid"] == SYSTEM_UUID
    assert trade(stub, new, OrderSpec(Operation.QUERY_ACCOUNT)).status == 200
    assert trade(stub, old, OrderSpec(Operation.QUERY_ACCOUNT)).status == 401
    with pytest.raises(VenueUnavailable):  # the old token cannot refresh again
        SESSION.parse_refresh(send(refresh), old, CRED, ctx(stub, clock))
    assert stub.logins == 1


def test_refresh_budget_turns_into_a_login(stub: MatchTraderStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    for _ in range(MAX_REFRESHES):
        clock.now += 60_000
        request = SESSION.refresh(tokens, CRED, ctx(stub, clock))
        assert request is not None
        tokens = SESSION.parse_refresh(send(request), tokens, CRED, ctx(stub, clock))
    assert SESSION.refresh(tokens, CRED, ctx(stub, clock)) is None  # a fifth would be refused
    clock.now += 60 * 60_000
    assert SESSION.refresh(tokens, CRED, ctx(stub, clock)) is not None  # the hour has passed


def test_a_refresh_the_platform_refuses_is_unavailable_not_reauthorization(
    clock: Clock,
) -> None:
    with MatchTraderStub(ACCOUNT, clock=clock, max_refreshes=1) as stub:
        tokens = login(stub, clock)
        first = SESSION.refresh(tokens, CRED, ctx(stub, clock))
        assert first is not None
        tokens = SESSION.parse_refresh(send(first), tokens, CRED, ctx(stub, clock))
        second = SESSION.refresh(tokens, CRED, ctx(stub, clock))
        assert second is not None
        refused = send(second)
        assert refused.status == 429
        with pytest.raises(VenueUnavailable):
            SESSION.parse_refresh(refused, tokens, CRED, ctx(stub, clock))


def test_wrong_password_is_refused_and_locks_after_five(
    stub: MatchTraderStub, clock: Clock
) -> None:
    wrong = credential(ACCOUNT, password="not-the-password")
    for _ in range(FLOW.wrong_password_locks_after):
        with pytest.raises(LoginRefused):
            login(stub, clock, wrong)
    assert stub.failed_logins == FLOW.wrong_password_locks_after
    with pytest.raises(LoginRefused):  # locked: even the right password is refused
        login(stub, clock)
    assert stub.logins == 0


def test_a_login_without_the_account_is_refused(stub: MatchTraderStub, clock: Clock) -> None:
    with pytest.raises(LoginRefused, match="trading account"):
        login(stub, clock, replace(CRED, account_id="9999"))


def test_platform_down_is_unavailable(stub: MatchTraderStub, clock: Clock) -> None:
    stub.fail_with = 503
    with pytest.raises(VenueUnavailable):
        login(stub, clock)
    assert stub.logins == 0 and stub.failed_logins == 0


def test_garbage_login_answers_are_unavailable() -> None:
    context = SessionContext(NOW, "https://x.test")
    for raw in (b"<html>", b"[]", b'{"token": "has space", "accounts": []}'):
        with pytest.raises(VenueUnavailable):
            SESSION.parse_login(Answer(200, (), raw), CRED, context)


def test_a_jwt_token_expiry_is_read() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": NOW // 1000 + 600}).encode()).decode()
    token = "eyJhbGciOiJIUzI1NiJ9." + claims.rstrip("=") + ".sig"
    answer = {"token": token, "accounts": [{
        "tradingAccountId": ACCOUNT.account_id, "tradingApiToken": "tat-1",
        "offer": {"system": {"uuid": SYSTEM_UUID}}}]}  # fmt: skip
    tokens = SESSION.parse_login(
        Answer(200, (), json.dumps(answer).encode()), CRED, SessionContext(NOW, "https://x.test")
    )
    assert tokens.expires_at_ms == (NOW // 1000 + 600) * 1000


def test_flow_material_matches_the_stub_login(stub: MatchTraderStub, clock: Clock) -> None:
    material = FLOW.material(ACCOUNT)
    cred = replace(CRED, username=material["username"], server=material["server"],
                   account_id=material["account_id"], secret=Secret(material["secret"]))  # fmt: skip
    assert login(stub, clock, cred).facts["tradingAccountId"] == ACCOUNT.account_id


def test_the_stub_refuses_what_the_platform_would(stub: MatchTraderStub, clock: Clock) -> None:
    tokens = login(stub, clock)
    request = SESSION.authorize(build(place(), stub.base_url), tokens, CRED)
    without_trading_token = [(n, v) for n, v in request.headers if n != "Auth-trading-api"]
    assert send(replace(request, headers=tuple(without_trading_token))).status == 401
    assert send(replace(request, body=b"{not json")).status == 400
    assert send(replace(request, body=b'{"instrument":"EURUSD","orderSide":"BUY"}')).status == 400
    other_system = request.url.replace(SYSTEM_UUID, "00000000-0000-4000-8000-000000000000")
    assert send(replace(request, url=other_system)).status == 404
    assert stub.positions == {}


def test_an_explicit_lots_size_unit_is_accepted() -> None:
    assert body(build(place(size_unit=SizeUnit.LOTS)))["volume"] == 0.1


def test_a_non_utf8_password_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="UTF-8"):
        SESSION.login(replace(CRED, secret=Secret(b"\xff\xfe")), SessionContext(NOW, "https://x"))
