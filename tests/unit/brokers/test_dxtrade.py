"""DXtrade: the password session (login, DXAPI token, ping), order shapes, and a loopback flow.

The session engine is not part of these tests: they drive ``dxtrade_session.SESSION`` and the
adapter by hand against ``tests/venue_stubs/dxtrade_stub.py`` (login -> order with SL/TP ->
amend SL -> close, expiry and a resend, a stale ETag, the lockout the stub enforces).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pipsync.vault.v1 import trading_pb2

from tests.support.forex_flow import Account
from tests.venue_stubs.dxtrade_stub import FLOW, DxtradeStub, Login, account_code
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
    VenueAdapter,
    VenueCredential,
)
from vault_server.brokers.lifecycle import Answer, Lifecycle, LoginRefused, SessionContext
from vault_server.brokers.lifecycle import SessionTokens as Tokens
from vault_server.brokers.revealed import secret_values
from vault_server.brokers.venues import dxtrade_session as ds
from vault_server.brokers.venues.dxtrade import ADAPTER, DEMO_URL
from vault_server.brokers.venues.dxtrade_session import SESSION
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    VenueUnavailable,
)
from vault_server.core.secret import Secret

PASSWORD = "pw-canary-0123456789abcdef"
ACCOUNT = "default:dealtest"
CRED = VenueCredential(
    Venue.DXTRADE, Environment.PAPER, KeyAlgorithm.SESSION_LOGIN, "", secret=Secret(PASSWORD),
    account_id=ACCOUNT, username="dealtest", server="default",
)  # fmt: skip
NOW = 1_700_000_000_000
CTX = SigningContext(now_ms=NOW)
SCTX = SessionContext(now_ms=NOW, base_url=DEMO_URL)
A = f"{DEMO_URL}/accounts/{ACCOUNT}"
TOKENS = Tokens(values={"sessionToken": "tok-abc123XYZ"}, expires_at_ms=NOW + 1000,
                facts={"timeoutMs": "600000"})  # fmt: skip
SL, TP = ProtectiveLevel(price=Decimal("1.08")), ProtectiveLevel(price=Decimal("1.12"))
MARKET = OrderSpec(
    Operation.PLACE_ORDER, symbol="EUR/USD", side=Side.BUY, order_type=OrderType.MARKET,
    quantity=Decimal("10000"), client_order_id="strat-1",
)  # fmt: skip


def build(order: OrderSpec, **ctx: Any) -> PreparedRequest:
    return ADAPTER.build(order, CRED, SigningContext(now_ms=NOW, **ctx))


def body(request: PreparedRequest) -> Any:
    return json.loads(request.body)


def answer(status: int, data: Any = None, raw: bytes | None = None) -> Answer:
    payload = raw if raw is not None else (b"" if data is None else json.dumps(data).encode())
    return Answer(status, (("Content-Type", "application/json"),), payload)


# --- the adapter --------------------------------------------------------------------------------
def test_adapter_facts() -> None:
    adapter: VenueAdapter = ADAPTER
    assert adapter.venue is Venue.DXTRADE and adapter.proxy_only and adapter.single_permission_tier
    assert adapter.algorithms == {KeyAlgorithm.SESSION_LOGIN} and not adapter.generatable
    assert adapter.lifecycle is Lifecycle.PASSWORD_SESSION and adapter.session is SESSION
    assert adapter.size_unit is SizeUnit.BASE_UNITS  # "quantity ... in units (not in lots)"
    assert SESSION.retry_safe_on_expiry and not SESSION.refresh_rotates
    assert 0 < SESSION.renew_margin_ms < ds.DEFAULT_TIMEOUT_MS
    assert adapter.default_base_url(Environment.PAPER) == "https://demo.dx.trade/dxsca-web"
    assert adapter.default_base_url(Environment.TESTNET) == DEMO_URL
    assert adapter.permission_request(CRED, CTX) is None  # no permission API


def test_live_has_no_default_and_uses_the_configured_broker_host() -> None:
    with pytest.raises(OperationNotSupported, match="venue_base_urls"):
        ADAPTER.default_base_url(Environment.LIVE)
    live = VenueCredential(**{**CRED.__dict__, "environment": Environment.LIVE})
    with pytest.raises(OperationNotSupported):
        ADAPTER.build(MARKET, live, CTX)
    ctx = SigningContext(now_ms=NOW, base_url="https://trade.broker.example/dxsca-web/")
    request = ADAPTER.build(MARKET, live, ctx)
    assert request.url == "https://trade.broker.example/dxsca-web/accounts/default:dealtest/orders"


def test_credential_checks() -> None:
    wrong = VenueCredential(**{**CRED.__dict__, "algorithm": KeyAlgorithm.BEARER})
    with pytest.raises(OperationNotSupported):
        ADAPTER.build(MARKET, wrong, CTX)
    for account in (None, "dealtest", "default:", ":x", "default:deal/test", "a:b:c", "../x:y"):
        bad = VenueCredential(**{**CRED.__dict__, "account_id": account})
        with pytest.raises(InvalidArgument, match="credential.account_id"):
            ADAPTER.build(MARKET, bad, CTX)


# --- the session --------------------------------------------------------------------------------
def test_login_request() -> None:
    request = SESSION.login(CRED, SCTX)
    assert (request.method, request.url) == ("POST", DEMO_URL + "/login")
    assert body(request) == {"username": "dealtest", "domain": "default", "password": PASSWORD}
    assert dict(request.headers) == {"Content-Type": "application/json",
                                     "Accept": "application/json"}  # fmt: skip
    assert PASSWORD not in repr(request) and request.expire_at_ms == NOW + ds.CALL_WINDOW_MS


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", None), ("username", ""), ("username", " lead"), ("username", "a\nb"),
     ("server", None), ("server", "de fault"), ("server", "-x"), ("secret", None)],
)  # fmt: skip
def test_login_refuses_incomplete_material(field: str, value: Any) -> None:
    bad = VenueCredential(**{**CRED.__dict__, field: value})
    with pytest.raises(InvalidArgument, match=f"credential.{field}"):
        SESSION.login(bad, SCTX)


def test_parse_login() -> None:
    tokens = SESSION.parse_login(
        answer(200, {"sessionToken": "t0k", "timeout": 900000}), CRED, SCTX
    )
    assert tokens.values == {"sessionToken": "t0k"} and tokens.expires_at_ms == NOW + 900_000
    assert tokens.refresh_expires_at_ms is None and tokens.facts == {"timeoutMs": "900000"}
    assert "t0k" not in repr(tokens)


@pytest.mark.parametrize(
    ("timeout", "ms"),
    [(1_800_000, 1_800_000), ("600000", 600_000), ("00:30:00", 1_800_000), ("PT15M", 900_000),
     (None, ds.DEFAULT_TIMEOUT_MS), ("soon", ds.DEFAULT_TIMEOUT_MS), (0, ds.DEFAULT_TIMEOUT_MS),
     (True, ds.DEFAULT_TIMEOUT_MS), (10**12, ds.MAX_TIMEOUT_MS)],
)  # fmt: skip
def test_timeout_forms(timeout: Any, ms: int) -> None:
    data = {"sessionToken": "t0k"} | ({} if timeout is None else {"timeout": timeout})
    assert SESSION.parse_login(answer(200, data), CRED, SCTX).expires_at_ms == NOW + ms


@pytest.mark.parametrize("status", [400, 401, 403])
def test_refused_login(status: int) -> None:
    refused = answer(status, {"errorCode": "3", "description": f"Incorrect password {PASSWORD}"})
    with pytest.raises(LoginRefused) as caught:
        SESSION.parse_login(refused, CRED, SCTX)
    assert caught.value.metadata == {"status": str(status), "venueErrorCode": "3"}
    assert PASSWORD not in str(caught.value)  # the venue's text is never passed on


@pytest.mark.parametrize(
    "reply",
    [answer(429, {}), answer(503, {}), answer(404, {}), answer(200, {"timeout": 5}), answer(200, raw=b"<html>"),
     answer(200, ["x"]), answer(200, {"sessionToken": "has space"}),
     answer(200, {"sessionToken": "a\r\nX-Injected: 1"}), answer(200, {"sessionToken": 7})],
)  # fmt: skip
def test_login_answers_that_are_not_a_session(reply: Answer) -> None:
    with pytest.raises(VenueUnavailable):
        SESSION.parse_login(reply, CRED, SCTX)


def test_authorize_adds_the_dxapi_header_first() -> None:
    request = SESSION.authorize(build(MARKET), TOKENS, CRED)
    name, value = request.headers[0]
    assert (name, value) == ("Authorization", "DXAPI tok-abc123XYZ")
    assert isinstance(value, RedactedHeader) and "tok-abc123XYZ" not in repr(request.headers)
    assert "tok-abc123XYZ" in secret_values(request.headers)  # scrubbed from answers


def test_ping_refresh_keeps_the_token_and_moves_the_expiry() -> None:
    ping = SESSION.refresh(TOKENS, CRED, SCTX)
    assert (ping.method, ping.url, ping.body) == ("POST", DEMO_URL + "/ping", b"")
    assert dict(ping.headers)["Authorization"] == "DXAPI tok-abc123XYZ"
    later = SessionContext(now_ms=NOW + 5000, base_url=DEMO_URL)
    for reply, expiry in (
        (answer(200, {"sessionToken": "tok-abc123XYZ", "timeout": 1_200_000}), 1_200_000),
        (answer(200, {}), 600_000),  # no timeout: the login's
        (answer(200), 600_000),  # empty body
    ):
        tokens = SESSION.parse_refresh(reply, TOKENS, CRED, later)
        assert tokens.values == TOKENS.values and tokens.expires_at_ms == NOW + 5000 + expiry
    renamed = SESSION.parse_refresh(answer(200, {"sessionToken": "new-tok"}), TOKENS, CRED, later)
    assert renamed.values == {"sessionToken": "new-tok"}


def test_a_refused_ping_ends_the_session_without_counting_as_a_bad_login() -> None:
    gone = SESSION.parse_refresh(answer(401, {"errorCode": "1"}), TOKENS, CRED, SCTX)
    assert gone.expires_at_ms == NOW and gone.values == TOKENS.values
    for reply in (answer(500, {}), answer(429, {}), answer(200, {"sessionToken": "bad token"})):
        with pytest.raises(VenueUnavailable):
            SESSION.parse_refresh(reply, TOKENS, CRED, SCTX)


def test_expired_is_401_only() -> None:
    assert SESSION.expired(401, {}, b"")
    assert not any(SESSION.expired(s, {}, b"") for s in (200, 400, 403, 404, 409, 412, 429, 500))


# --- orders -------------------------------------------------------------------------------------
def test_market_order() -> None:
    request = build(MARKET)
    assert (request.method, request.url) == ("POST", A + "/orders")
    assert request.body == (
        b'{"orderCode":"strat-1","type":"MARKET","instrument":"EUR/USD","quantity":10000,'
        b'"positionEffect":"OPEN","side":"BUY","tif":"GTC"}'
    )
    assert dict(request.headers) == {"Accept": "application/json",
                                     "Content-Type": "application/json"}  # fmt: skip
    assert request.expire_at_ms == NOW + 5000


def test_limit_and_stop_orders() -> None:
    limit = OrderSpec(**{**MARKET.__dict__, "order_type": OrderType.LIMIT, "side": Side.SELL,
                         "price": Decimal("1.0850"), "time_in_force": TimeInForce.GTD,
                         "extras": {"expireDate": "2026-12-31T21:00:00Z"}})  # fmt: skip
    assert body(build(limit)) == {
        "orderCode": "strat-1", "type": "LIMIT", "instrument": "EUR/USD", "quantity": 10000,
        "positionEffect": "OPEN", "side": "SELL", "limitPrice": 1.085, "tif": "GTD",
        "expireDate": "2026-12-31T21:00:00Z"}  # fmt: skip
    stop = OrderSpec(**{**MARKET.__dict__, "order_type": OrderType.STOP_LOSS,
                        "stop_price": Decimal("1.2"), "time_in_force": TimeInForce.DAY})  # fmt: skip
    assert body(build(stop))["type"] == "STOP" and body(build(stop))["stopPrice"] == 1.2


def test_order_with_stop_loss_and_take_profit_is_an_if_then_group() -> None:
    order = OrderSpec(**{**MARKET.__dict__, "stop_loss": SL, "take_profit": TP})
    assert body(build(order)) == {"orders": [
        {"orderCode": "strat-1", "type": "MARKET", "instrument": "EUR/USD", "quantity": 10000,
         "positionEffect": "OPEN", "side": "BUY", "tif": "GTC"},
        {"orderCode": "strat-1-sl", "type": "STOP", "instrument": "EUR/USD",
         "positionEffect": "CLOSE", "side": "SELL", "stopPrice": 1.08, "tif": "GTC"},
        {"orderCode": "strat-1-tp", "type": "LIMIT", "instrument": "EUR/USD",
         "positionEffect": "CLOSE", "side": "SELL", "limitPrice": 1.12, "tif": "GTC"},
    ], "contingencyType": "IF-THEN"}  # fmt: skip
    only_tp = body(build(OrderSpec(**{**MARKET.__dict__, "take_profit": TP})))
    assert [o["orderCode"] for o in only_tp["orders"]] == ["strat-1", "strat-1-tp"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"client_order_id": None}, "order.client_order_id"),
     ({"client_order_id": "has space"}, "order.client_order_id"),
     ({"client_order_id": "group"}, "order.client_order_id"),
     ({"client_order_id": "x" * 62, "stop_loss": SL}, "order.client_order_id"),
     ({"symbol": "EUR USD"}, "order.symbol"),
     ({"quantity": Decimal("0.12345678901234567")}, "order.quantity"),
     ({"quantity": Decimal("-1")}, "order.quantity"),
     ({"quantity": None, "quote_quantity": Decimal("5")}, "order.quote_quantity"),
     ({"order_type": OrderType.TAKE_PROFIT, "stop_price": Decimal("1")}, "order.order_type"),
     ({"time_in_force": TimeInForce.DAY}, "order.time_in_force"),
     ({"stop_loss": ProtectiveLevel(distance=Decimal("0.01"))}, "order.stop_loss"),
     ({"position_id": "63649"}, "order.position_id"),
     ({"extras": {"positionEffect": "CLOSE"}}, "order.extras"),
     ({"extras": {"ifMatch": '"1"'}}, "order.extras"),
     ({"size_unit": SizeUnit.LOTS}, "order.size_unit")],
)  # fmt: skip
def test_place_refusals(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        build(OrderSpec(**{**MARKET.__dict__, **changes}))
    assert caught.value.field == field


def test_numbers_are_exact_json_numbers() -> None:
    order = OrderSpec(**{**MARKET.__dict__, "quantity": Decimal("0.00001"),
                         "stop_loss": ProtectiveLevel(price=Decimal("123456789.12345"))})  # fmt: skip
    raw = build(order).body
    assert b'"quantity":1e-05' in raw and b'"stopPrice":123456789.12345' in raw
    big = build(OrderSpec(**{**MARKET.__dict__, "quantity": Decimal("1E+25")})).body
    assert b'"quantity":10000000000000000000000000' in big


def test_close_position() -> None:
    close = OrderSpec(Operation.CLOSE_POSITION, symbol="EUR/USD", side=Side.BUY,
                      position_id="63649", client_order_id="close-1")  # fmt: skip
    request = build(close)
    assert (request.method, request.url) == ("POST", A + "/orders")
    assert body(request) == {"orderCode": "close-1", "type": "MARKET", "instrument": "EUR/USD",
                             "positionEffect": "CLOSE", "positionCode": "63649", "side": "SELL",
                             "tif": "GTC"}  # fmt: skip
    part = body(build(OrderSpec(**{**close.__dict__, "quantity": Decimal("2500")})))
    assert part["quantity"] == 2500
    for changes in ({"position_id": None}, {"client_order_id": None}, {"side": None},
                    {"price": Decimal("1")}, {"stop_loss": SL}, {"symbol": None}):  # fmt: skip
        with pytest.raises(InvalidArgument):
            build(OrderSpec(**{**close.__dict__, **changes}))


def test_amend_position_modifies_the_existing_protective_order() -> None:
    amend = OrderSpec(Operation.AMEND_POSITION, symbol="EUR/USD", side=Side.BUY,
                      position_id="63649", venue_order_id="strat-1-sl",
                      stop_loss=ProtectiveLevel(price=Decimal("1.09")),
                      extras={"ifMatch": '"7"'})  # fmt: skip
    request = build(amend)
    assert (request.method, request.url) == ("PUT", A + "/orders")
    assert dict(request.headers)["If-Match"] == '"7"'
    assert body(request) == {"orderCode": "strat-1-sl", "instrument": "EUR/USD",
                             "positionEffect": "CLOSE", "positionCode": "63649", "side": "SELL",
                             "stopPrice": 1.09, "tif": "GTC"}  # fmt: skip
    with pytest.raises(InvalidArgument, match="ifMatch is required"):
        build(OrderSpec(**{**amend.__dict__, "extras": {}}))
    for changes in ({"take_profit": TP}, {"stop_loss": None}, {"position_id": None}):
        with pytest.raises(InvalidArgument):
            build(OrderSpec(**{**amend.__dict__, **changes}))


def test_amend_position_adds_a_protective_order() -> None:
    add = OrderSpec(Operation.AMEND_POSITION, symbol="EUR/USD", side=Side.SELL,
                    position_id="63649", client_order_id="tp-2", take_profit=TP)  # fmt: skip
    request = build(add)
    assert (request.method, request.url, dict(request.headers).get("If-Match")) == (
        "POST", A + "/orders", None)  # fmt: skip
    assert body(request) == {"orderCode": "tp-2", "type": "LIMIT", "instrument": "EUR/USD",
                             "positionEffect": "CLOSE", "positionCode": "63649", "side": "BUY",
                             "limitPrice": 1.12, "tif": "GTC"}  # fmt: skip


def test_cancel_and_amend_order_are_conditional() -> None:
    cancel = OrderSpec(Operation.CANCEL_ORDER, venue_order_id="strat-1", extras={"ifMatch": '"3"'})
    request = build(cancel)
    assert (request.method, request.url, request.body) == ("DELETE", A + "/orders/strat-1", b"")
    assert dict(request.headers)["If-Match"] == '"3"'
    by_client = OrderSpec(**{**cancel.__dict__, "venue_order_id": None, "client_order_id": "c-9"})
    assert build(by_client).url == A + "/orders/c-9"
    for changes in ({"extras": {}}, {"extras": {"ifMatch": "a b"}}, {"venue_order_id": "x/../y"},
                    {"venue_order_id": "history"}, {"venue_order_id": None}):  # fmt: skip
        with pytest.raises(InvalidArgument):
            build(OrderSpec(**{**cancel.__dict__, **changes}))
    amend = OrderSpec(Operation.AMEND_ORDER, symbol="EUR/USD", side=Side.BUY,
                      order_type=OrderType.LIMIT, quantity=Decimal("5000"), price=Decimal("1.07"),
                      venue_order_id="strat-1", extras={"ifMatch": '"3"'})  # fmt: skip
    request = build(amend)
    assert (request.method, request.url) == ("PUT", A + "/orders")
    assert body(request) == {"orderCode": "strat-1", "instrument": "EUR/USD", "quantity": 5000,
                             "positionEffect": "OPEN", "side": "BUY", "limitPrice": 1.07,
                             "tif": "GTC"}  # fmt: skip
    grouped = body(build(OrderSpec(**{**amend.__dict__, "stop_loss": SL})))
    assert grouped["contingencyType"] == "IF-THEN"
    assert grouped["orders"][1] == {"orderCode": "strat-1-sl", "instrument": "EUR/USD",
                                    "positionEffect": "CLOSE", "side": "SELL", "stopPrice": 1.08,
                                    "tif": "GTC"}  # fmt: skip
    with pytest.raises(InvalidArgument, match="order_type"):
        build(OrderSpec(**{**amend.__dict__, "order_type": OrderType.MARKET, "price": None}))


def test_queries() -> None:
    assert build(OrderSpec(Operation.QUERY_OPEN_ORDERS)).url == A + "/orders"
    assert build(OrderSpec(Operation.QUERY_POSITIONS)).url == A + "/positions"
    assert build(OrderSpec(Operation.QUERY_ACCOUNT)).url == A + "/metrics"
    by_id = build(OrderSpec(Operation.QUERY_ORDER, venue_order_id="63649"))
    assert by_id.url == A + "/orders/history?with-order-id=63649" and by_id.method == "GET"
    by_client = build(OrderSpec(Operation.QUERY_ORDER, client_order_id="strat-1"))
    assert by_client.url == A + "/orders/history?with-client-id=strat-1"
    for bad in (OrderSpec(Operation.QUERY_ORDER), OrderSpec(Operation.QUERY_ORDER,
                venue_order_id="strat-1"), OrderSpec(Operation.QUERY_ACCOUNT, extras={"a": "b"})):  # fmt: skip
        with pytest.raises(InvalidArgument):
            build(bad)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/login"), ("POST", "/logout"), ("POST", "/ping"), ("GET", "/users/dealtest"),
     ("GET", f"/accounts/{ACCOUNT}/transfers"), ("DELETE", f"/accounts/{ACCOUNT}/orders/group"),
     ("DELETE", f"/accounts/{ACCOUNT}/orders/History"), ("DELETE", f"/accounts/{ACCOUNT}/orders"),
     ("POST", f"/accounts/{ACCOUNT}/orders/history"), ("GET", "/accounts/orders"),
     ("POST", "/accounts/default:withdrawals/orders"), ("GET", f"/accounts/{ACCOUNT}/portfolio")],
)  # fmt: skip
def test_endpoint_allow_list(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


# --- against the loopback stub ------------------------------------------------------------------
def send(request: PreparedRequest) -> Answer:
    reply = httpx.request(request.method, request.url, headers=list(request.headers),
                          content=request.body, timeout=5)  # fmt: skip
    return Answer(reply.status_code, tuple(reply.headers.items()), reply.content)


class Client:
    """What the session engine will do, by hand: log in, authorize, re-login once on expiry."""

    def __init__(self, stub: DxtradeStub, credential: VenueCredential) -> None:
        self.stub, self.credential, self.tokens = stub, credential, None
        self.sctx = SessionContext(now_ms=NOW, base_url=stub.base_url)

    def login(self) -> Tokens:
        self.tokens = SESSION.parse_login(
            send(SESSION.login(self.credential, self.sctx)), self.credential, self.sctx
        )
        return self.tokens

    def execute(self, order: OrderSpec) -> Answer:
        if self.tokens is None:
            self.login()
        request = ADAPTER.build(order, self.credential,
                                SigningContext(now_ms=NOW, base_url=self.stub.base_url))  # fmt: skip
        reply = send(SESSION.authorize(request, self.tokens, self.credential))
        if SESSION.expired(reply.status, dict(reply.headers), reply.body):
            assert SESSION.retry_safe_on_expiry
            self.login()
            reply = send(SESSION.authorize(request, self.tokens, self.credential))
        return reply


@pytest.fixture
def venue() -> Any:
    login = Login("dealtest", "default", PASSWORD, [ACCOUNT])
    with DxtradeStub([login], lock_after=3) as stub:
        yield (
            stub,
            Client(stub, VenueCredential(**{**CRED.__dict__, "environment": Environment.LIVE})),
        )


def etag(client: Client) -> str:
    return dict(client.execute(OrderSpec(Operation.QUERY_OPEN_ORDERS)).headers)["etag"]


def test_flow_place_with_protection_amend_and_close(venue: Any) -> None:
    stub, client = venue
    placed = client.execute(OrderSpec(**{**MARKET.__dict__, "stop_loss": SL, "take_profit": TP}))
    assert placed.status == 200 and stub.logins == 1
    position = FLOW.position_id(stub, placed.body)
    assert stub.positions[position] == {"symbol": "EUR/USD", "side": "BUY", "quantity": "10000",
                                        "stopLoss": "1.08", "takeProfit": "1.12"}  # fmt: skip
    listed = client.execute(OrderSpec(Operation.QUERY_POSITIONS)).json()["positions"]
    assert [p["positionCode"] for p in listed] == [position]
    amend = OrderSpec(Operation.AMEND_POSITION, symbol="EUR/USD", side=Side.BUY,
                      position_id=position, venue_order_id="strat-1-sl",
                      stop_loss=ProtectiveLevel(price=Decimal("1.09")),
                      extras={"ifMatch": etag(client)})  # fmt: skip
    assert client.execute(amend).status == 200
    assert stub.positions[position]["stopLoss"] == "1.09"
    assert client.execute(amend).status == 412  # the ETag it was sent with is stale now
    partly = OrderSpec(Operation.CLOSE_POSITION, symbol="EUR/USD", side=Side.BUY,
                       position_id=position, client_order_id="close-1", quantity=Decimal("4000"))  # fmt: skip
    assert client.execute(partly).status == 200
    assert stub.positions[position]["quantity"] == "6000"
    close = OrderSpec(**{**partly.__dict__, "client_order_id": "close-2", "quantity": None})
    assert client.execute(close).status == 200 and stub.positions == {}
    assert stub.logins == 1  # one session for all of it
    history = client.execute(OrderSpec(Operation.QUERY_ORDER, client_order_id="strat-1-sl"))
    assert history.json()["orders"][0]["status"] == "CANCELED"  # the position closed


def test_expired_session_logs_in_again_and_the_resend_executes_once(venue: Any) -> None:
    stub, client = venue
    client.login()
    stub.expire_sessions()
    placed = client.execute(MARKET)
    assert placed.status == 200 and stub.logins == 2
    assert [r.status for r in stub.requests if r.path.endswith("/orders")] == [401, 200]
    assert client.execute(MARKET).status == 409  # the same orderCode is never executed twice
    assert len(stub.positions) == 1


def test_ping_extends_the_session(venue: Any) -> None:
    stub, client = venue
    tokens = client.login()
    later = SessionContext(now_ms=NOW + 60_000, base_url=stub.base_url)
    renewed = SESSION.parse_refresh(send(SESSION.refresh(tokens, CRED, later)), tokens, CRED, later)
    assert renewed.values == tokens.values and renewed.expires_at_ms == NOW + 60_000 + 1_800_000
    stub.expire_sessions()
    gone = SESSION.parse_refresh(send(SESSION.refresh(tokens, CRED, later)), tokens, CRED, later)
    assert gone.expires_at_ms == later.now_ms


def test_a_grouped_entry_keeps_its_legs_only_when_amended_as_a_group(venue: Any) -> None:
    _, client = venue
    limit = OrderSpec(**{**MARKET.__dict__, "order_type": OrderType.LIMIT,
                         "price": Decimal("1.05"), "stop_loss": SL})  # fmt: skip
    assert client.execute(limit).status == 200
    amend = OrderSpec(Operation.AMEND_ORDER, symbol="EUR/USD", side=Side.BUY,
                      order_type=OrderType.LIMIT, quantity=Decimal("10000"),
                      price=Decimal("1.06"), venue_order_id="strat-1", stop_loss=SL,
                      extras={"ifMatch": etag(client)})  # fmt: skip
    assert client.execute(amend).status == 200
    working = client.execute(OrderSpec(Operation.QUERY_OPEN_ORDERS)).json()["orders"]
    assert sorted(o["clientOrderId"] for o in working) == ["strat-1", "strat-1-sl"]
    single = OrderSpec(**{**amend.__dict__, "stop_loss": None, "extras": {"ifMatch": etag(client)}})
    assert client.execute(single).status == 200
    working = client.execute(OrderSpec(Operation.QUERY_OPEN_ORDERS)).json()["orders"]
    assert [o["clientOrderId"] for o in working] == ["strat-1"]  # DXtrade dropped the leg
    cancel = OrderSpec(Operation.CANCEL_ORDER, venue_order_id="strat-1",
                       extras={"ifMatch": etag(client)})  # fmt: skip
    assert client.execute(cancel).status == 200
    assert client.execute(OrderSpec(Operation.QUERY_OPEN_ORDERS)).json()["orders"] == []


def test_wrong_password_is_refused_and_the_stub_locks_the_login(venue: Any) -> None:
    stub, client = venue
    bad = VenueCredential(**{**client.credential.__dict__, "secret": Secret("wrong")})
    for _ in range(3):
        with pytest.raises(LoginRefused):
            SESSION.parse_login(send(SESSION.login(bad, client.sctx)), bad, client.sctx)
    with pytest.raises(LoginRefused):  # locked now: even the right password
        client.login()
    assert (stub.logins, stub.failed_logins) == (0, 4)


def test_the_password_travels_only_in_the_login_body(venue: Any) -> None:
    stub, client = venue
    client.execute(OrderSpec(**{**MARKET.__dict__, "stop_loss": SL}))
    client.execute(OrderSpec(Operation.QUERY_POSITIONS))
    for request in stub.requests:
        seen = request.path + request.query + json.dumps(request.headers)
        assert PASSWORD not in seen
        assert (PASSWORD in request.body.decode()) == request.path.endswith("/login")


def test_other_accounts_and_broker_down(venue: Any) -> None:
    stub, client = venue
    other = VenueCredential(**{**client.credential.__dict__, "account_id": "default:other"})
    request = ADAPTER.build(OrderSpec(Operation.QUERY_POSITIONS), other,
                            SigningContext(now_ms=NOW, base_url=stub.base_url))  # fmt: skip
    assert send(SESSION.authorize(request, client.login(), other)).status == 404
    stub.down = True
    with pytest.raises(VenueUnavailable):
        client.login()


def test_flow_description() -> None:
    assert FLOW.venue == Venue.DXTRADE.value and FLOW.broker == trading_pb2.BROKER_DXTRADE
    account = Account()
    assert FLOW.material(account) == {"username": account.username, "server": account.server,
                                      "secret": account.password,
                                      "account_id": account_code(account)}  # fmt: skip
    with FLOW.stub(account) as stub:
        credential = VenueCredential(
            Venue.DXTRADE, Environment.PAPER, KeyAlgorithm.SESSION_LOGIN, "",
            secret=Secret(account.password), account_id=account_code(account),
            username=account.username, server=account.server,
        )  # fmt: skip
        client = Client(stub, credential)
        order = OrderSpec(Operation.PLACE_ORDER, symbol=FLOW.symbol, side=Side.BUY,
                          order_type=OrderType.MARKET, quantity=Decimal(FLOW.quantity),
                          client_order_id="flow-1",
                          stop_loss=ProtectiveLevel(price=Decimal(FLOW.stop_loss)),
                          take_profit=ProtectiveLevel(price=Decimal(FLOW.take_profit)))  # fmt: skip
        placed = client.execute(order)
        position = FLOW.position_id(stub, placed.body)
        assert stub.positions[position]["stopLoss"] == FLOW.stop_loss
        assert stub.positions[position]["takeProfit"] == FLOW.take_profit
        stub.expire_sessions()
        assert client.execute(OrderSpec(Operation.QUERY_POSITIONS)).status == 200
        assert stub.logins == 2 and stub.lock_after == FLOW.wrong_password_locks_after


def test_an_idle_session_times_out_and_use_extends_it() -> None:
    now = [NOW]
    login = Login("dealtest", "default", PASSWORD, [ACCOUNT])
    with DxtradeStub([login], clock=lambda: now[0], timeout_ms=60_000) as stub:
        client = Client(stub, CRED)
        tokens = client.login()
        assert tokens.expires_at_ms == NOW + 60_000  # the lifetime the venue announced
        positions = ADAPTER.build(OrderSpec(Operation.QUERY_POSITIONS), CRED,
                                  SigningContext(now_ms=NOW, base_url=stub.base_url))  # fmt: skip
        request = SESSION.authorize(positions, tokens, CRED)
        now[0] += 50_000
        assert send(request).status == 200  # used: 60 s from now again
        now[0] += 50_000
        assert send(request).status == 200
        now[0] += 60_001
        reply = send(request)
        assert reply.status == 401 and SESSION.expired(reply.status, {}, reply.body)
