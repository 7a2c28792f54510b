"""MetaApi: the order mapping, the allow-list, and the derived-token protocol against the stub."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.venue_stubs.metaapi_stub import FLOW, MetaApiStub
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
    SessionContext,
    SessionTokens,
)
from vault_server.brokers.registry import PLANNED, adapter_for
from vault_server.brokers.venues import metaapi_session as ms
from vault_server.brokers.venues.metaapi import ADAPTER, client_api_url
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    VenueUnavailable,
)
from vault_server.core.secret import Secret

ACCOUNT = "865d3a4d-3803-486d-bdf3-a85679d9fad2"
NOW = 1_700_000_000_000
D = Decimal


def _cred(
    token: str = "", region: str | None = "london", account: str = ACCOUNT
) -> VenueCredential:
    return VenueCredential(
        Venue.METAAPI, Environment.LIVE, KeyAlgorithm.BEARER, "label",
        secret=Secret(token or "broad-" + secrets.token_hex(16)), account_id=account, server=region,
    )  # fmt: skip


CRED = _cred()
CTX = SigningContext(now_ms=NOW)
MARKET = OrderSpec(
    Operation.PLACE_ORDER, symbol="EURUSD", side=Side.BUY, order_type=OrderType.MARKET,
    quantity=D("0.01"), stop_loss=ProtectiveLevel(price=D("1.05")),
    take_profit=ProtectiveLevel(price=D("1.2")), client_order_id="strat-1",
)  # fmt: skip


def _body(request: PreparedRequest) -> dict[str, Any]:
    data = json.loads(request.body)
    assert isinstance(data, dict)
    return data


# --- mapping -------------------------------------------------------------------------------------
def test_market_order_with_stops_goes_to_the_regional_host() -> None:
    request = ADAPTER.build(MARKET, CRED, CTX)
    assert request.method == "POST"
    assert request.url == f"{client_api_url('london')}/users/current/accounts/{ACCOUNT}/trade"
    assert _body(request) == {"actionType": "ORDER_TYPE_BUY", "symbol": "EURUSD", "volume": 0.01,
                              "stopLoss": 1.05, "takeProfit": 1.2, "clientId": "strat-1"}  # fmt: skip
    # No credential material on the built request: the engine adds the narrowed token.
    assert all(name.lower() != "auth-token" for name, _ in request.headers)
    assert ("Content-Type", "application/json") in request.headers


def test_limit_stop_and_distance_levels() -> None:
    limit = replace(MARKET, side=Side.SELL, order_type=OrderType.LIMIT, price=D("1.12"),
                    stop_loss=ProtectiveLevel(distance=D("0.002")), take_profit=None,
                    time_in_force=TimeInForce.DAY, client_order_id=None)  # fmt: skip
    assert _body(ADAPTER.build(limit, CRED, CTX)) == {
        "actionType": "ORDER_TYPE_SELL_LIMIT", "symbol": "EURUSD", "volume": 0.01,
        "openPrice": 1.12, "stopLoss": 0.002, "stopLossUnits": "RELATIVE_PRICE",
        "expiration": {"type": "ORDER_TIME_DAY"},
    }  # fmt: skip
    stop = replace(MARKET, order_type=OrderType.STOP_LOSS, stop_price=D("1.15"), stop_loss=None,
                   take_profit=None, client_order_id=None)  # fmt: skip
    assert _body(ADAPTER.build(stop, CRED, CTX))["actionType"] == "ORDER_TYPE_BUY_STOP"
    assert _body(ADAPTER.build(stop, CRED, CTX))["openPrice"] == 1.15


@pytest.mark.parametrize(
    ("order", "body"),
    [
        (OrderSpec(Operation.AMEND_POSITION, position_id="46648037",
                   stop_loss=ProtectiveLevel(price=D("1.07"))),
         {"actionType": "POSITION_MODIFY", "positionId": "46648037", "stopLoss": 1.07}),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="46648037"),
         {"actionType": "POSITION_CLOSE_ID", "positionId": "46648037"}),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="46648037", quantity=D("0.5")),
         {"actionType": "POSITION_PARTIAL", "positionId": "46648037", "volume": 0.5}),
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="47137555"),
         {"actionType": "ORDER_CANCEL", "orderId": "47137555"}),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id="47137555", price=D("1.11"),
                   take_profit=ProtectiveLevel(price=D("1.3"))),
         {"actionType": "ORDER_MODIFY", "orderId": "47137555", "openPrice": 1.11,
          "takeProfit": 1.3}),
    ],
)  # fmt: skip
def test_trade_actions(order: OrderSpec, body: dict[str, Any]) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    assert request.url.endswith("/trade") and _body(request) == body


@pytest.mark.parametrize(
    ("order", "path"),
    [(OrderSpec(Operation.QUERY_POSITIONS), "/positions"),
     (OrderSpec(Operation.QUERY_OPEN_ORDERS), "/orders"),
     (OrderSpec(Operation.QUERY_ORDER, venue_order_id="47137555"), "/orders/47137555"),
     (OrderSpec(Operation.QUERY_ACCOUNT), "/accountInformation")],
)  # fmt: skip
def test_queries(order: OrderSpec, path: str) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    assert (request.method, request.body) == ("GET", b"")
    assert request.url == f"{client_api_url('london')}/users/current/accounts/{ACCOUNT}{path}"


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (replace(MARKET, stop_loss=ProtectiveLevel()), "order.stop_loss"),
        (replace(MARKET, stop_loss=ProtectiveLevel(price=D("1"), distance=D("1"))),
         "order.stop_loss"),
        (replace(MARKET, take_profit=ProtectiveLevel(price=D("-1"))), "order.take_profit.price"),
        (replace(MARKET, quantity=None, quote_quantity=D("100")), "order.quote_quantity"),
        (replace(MARKET, quantity=D("0.1000000000000000055511151231257827")), "order.quantity"),
        (replace(MARKET, client_order_id="x" * 27), "order.client_order_id"),
        (replace(MARKET, extras={"comment": "c" * 20}, client_order_id="strat-000001"),
         "order.client_order_id"),
        (replace(MARKET, extras={"expiration": "x"}), "order.extras"),
        (OrderSpec(Operation.AMEND_POSITION, position_id="1"), "order.stop_loss"),
        (OrderSpec(Operation.AMEND_POSITION, position_id="../accounts",
                   stop_loss=ProtectiveLevel(price=D("1"))), "order.position_id"),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="1",
                   stop_loss=ProtectiveLevel(price=D("1"))), "order.stop_loss"),
        (OrderSpec(Operation.CLOSE_POSITION), "order.position_id"),
        (OrderSpec(Operation.QUERY_POSITIONS, take_profit=ProtectiveLevel(price=D("1"))),
         "order.stop_loss"),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id="1", price=D("1"), quantity=D("1")),
         "order.quantity"),
        (replace(MARKET, order_type=OrderType.TAKE_PROFIT, stop_price=D("1.3")),
         "order.order_type"),
        (replace(MARKET, size_unit=SizeUnit.BASE_UNITS), "order.size_unit"),
    ],
)  # fmt: skip
def test_refusals_never_drop_a_field(order: OrderSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ADAPTER.build(order, CRED, CTX)
    assert err.value.field == field


def test_material_is_validated() -> None:
    for cred, field in ((_cred(region=None), "credential.server"),
                        (_cred(region="New York"), "credential.server"),
                        (_cred(account="ab/../x"), "credential.account_id")):  # fmt: skip
        with pytest.raises(InvalidArgument) as err:
            ADAPTER.build(MARKET, cred, CTX)
        assert err.value.field == field


def test_spec_attributes() -> None:
    assert Venue.METAAPI not in PLANNED and adapter_for(Venue.METAAPI) is ADAPTER
    assert ADAPTER.proxy_only and ADAPTER.single_permission_tier
    assert ADAPTER.algorithms == frozenset({KeyAlgorithm.BEARER})
    assert ADAPTER.size_unit is SizeUnit.LOTS and ADAPTER.lifecycle is Lifecycle.DERIVED_TOKEN
    assert _body(ADAPTER.build(replace(MARKET, size_unit=SizeUnit.LOTS), CRED, CTX))["volume"]


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("POST", f"/users/current/accounts/{ACCOUNT}/trade", True),
        ("GET", f"/users/current/accounts/{ACCOUNT}/positions", True),
        ("GET", f"/users/current/accounts/{ACCOUNT}/orders/123", True),
        ("GET", f"/users/current/accounts/{ACCOUNT}/trade", False),
        ("GET", f"/users/current/accounts/{ACCOUNT}", False),  # provisioning: the MT password
        ("DELETE", f"/users/current/accounts/{ACCOUNT}", False),
        ("POST", f"/users/current/accounts/{ACCOUNT}/undeploy", False),
        ("POST", "/users/current/accounts", False),
        ("POST", ms.MINT_PATH, False),  # the engine's login, never an order
        ("GET", "/users/current/servers/mt-client-api", False),
    ],
)  # fmt: skip
def test_allow_list(method: str, path: str, ok: bool) -> None:
    if ok:
        ADAPTER.check_endpoint(method, path)
    else:
        with pytest.raises(EndpointNotAllowed):
            ADAPTER.check_endpoint(method, path)


# --- the protocol against the stub ---------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def broad() -> str:
    return "broad-" + secrets.token_hex(20)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stub(broad: str, clock: Clock) -> Iterator[MetaApiStub]:
    with MetaApiStub({broad: [ACCOUNT]}, clock=clock) as running:
        yield running


def _send(request: PreparedRequest) -> Answer:
    reply = httpx.request(request.method, request.url, headers=list(request.headers),
                          content=request.body)  # fmt: skip
    return Answer(reply.status_code, tuple(reply.headers.items()), reply.content)


def _login(stub: MetaApiStub, cred: VenueCredential, now: int = NOW) -> SessionTokens:
    ctx = SessionContext(now_ms=now, base_url=stub.base_url)
    request = ms.SESSION.login(cred, ctx)
    result = ms.SESSION.parse_login(_send(request), cred, ctx)
    assert isinstance(result, SessionTokens)
    return result


def _order(stub: MetaApiStub, cred: VenueCredential, order: OrderSpec,
           tokens: SessionTokens) -> Answer:  # fmt: skip
    built = ADAPTER.build(order, cred, SigningContext(now_ms=NOW, base_url=stub.base_url))
    return _send(ms.SESSION.authorize(built, tokens, cred))


def test_mint_then_trade_with_the_narrowed_token(stub: MetaApiStub, broad: str) -> None:
    cred = _cred(broad)
    tokens = _login(stub, cred)
    assert stub.logins == 1 and tokens.values["token"] != broad
    assert tokens.expires_at_ms == NOW + ms.VALIDITY_HOURS * 3_600_000
    mint = stub.requests[-1]
    assert mint.path == ms.MINT_PATH and json.loads(mint.body) == {
        "applications": ["metaapi-api"],
        "resources": [{"entity": "account", "id": ACCOUNT}],
    }
    answer = _order(stub, cred, MARKET, tokens)
    assert answer.status == 200 and answer.json()["stringCode"] == "TRADE_RETCODE_DONE"
    position = answer.json()["positionId"]
    assert stub.positions[position]["stopLoss"] == 1.05
    assert stub.requests[-1].headers["auth-token"] == tokens.values["token"]
    assert stub.broad_token_trades == 0  # the broad token never went near the order
    amend = OrderSpec(Operation.AMEND_POSITION, position_id=position,
                      stop_loss=ProtectiveLevel(price=D("1.07")))  # fmt: skip
    assert _order(stub, cred, amend, tokens).json()["stringCode"] == "TRADE_RETCODE_DONE"
    assert stub.positions[position]["stopLoss"] == 1.07
    assert stub.positions[position]["takeProfit"] == 1.2
    listed = _order(stub, cred, OrderSpec(Operation.QUERY_POSITIONS), tokens)
    assert [p["id"] for p in listed.json()] == [position]
    close = OrderSpec(Operation.CLOSE_POSITION, position_id=position)
    assert _order(stub, cred, close, tokens).status == 200 and not stub.positions


def test_authorize_marks_the_token_redacted(stub: MetaApiStub, broad: str) -> None:
    cred = _cred(broad)
    tokens = _login(stub, cred)
    authorized = ms.SESSION.authorize(ADAPTER.build(MARKET, cred, CTX), tokens, cred)
    assert tokens.values["token"] not in repr(authorized.headers)


def test_expired_and_revoked_tokens_answer_401(stub: MetaApiStub, broad: str, clock: Clock) -> None:
    cred = _cred(broad)
    tokens = _login(stub, cred)
    clock.now = tokens.expires_at_ms
    answer = _order(stub, cred, MARKET, tokens)
    assert answer.status == 401 and ms.SESSION.expired(answer.status, {}, answer.body)
    clock.now = NOW
    fresh = _login(stub, cred)
    stub.expire_sessions()
    answer = _order(stub, cred, MARKET, fresh)
    assert ms.SESSION.expired(answer.status, {}, answer.body) and not stub.positions
    assert ms.SESSION.refresh(fresh, cred, SessionContext(NOW, stub.base_url)) is None
    assert _order(stub, cred, MARKET, _login(stub, cred)).status == 200  # mint again


def test_a_token_for_another_account_is_refused(stub: MetaApiStub, broad: str) -> None:
    other = "aaaaaaaa-3803-486d-bdf3-a85679d9fad2"
    with pytest.raises(LoginRefused):
        _login(stub, _cred(broad, account=other))
    stub.tokens[broad].add(other)
    tokens = _login(stub, _cred(broad, account=other))
    answer = _order(stub, _cred(broad), MARKET, tokens)
    assert answer.status == 403 and not ms.SESSION.expired(answer.status, {}, answer.body)


def test_wrong_token_is_a_refused_login_and_the_stub_locks(stub: MetaApiStub) -> None:
    for _ in range(FLOW.wrong_password_locks_after):
        with pytest.raises(LoginRefused):
            _login(stub, _cred("wrong-" + secrets.token_hex(8)))
    assert stub.failed_logins == FLOW.wrong_password_locks_after and stub.logins == 0
    with pytest.raises(VenueUnavailable):  # 429: back off, not another bad login
        _login(stub, _cred("wrong-" + secrets.token_hex(8)))


@pytest.mark.parametrize("status", [500, 502, 503])
def test_outage_is_venue_unavailable(stub: MetaApiStub, broad: str, status: int) -> None:
    stub.fail_with = status
    with pytest.raises(VenueUnavailable):
        _login(stub, _cred(broad))


def test_a_token_broader_than_asked_is_refused(stub: MetaApiStub, broad: str) -> None:
    cred = _cred(broad)
    ctx = SessionContext(NOW, stub.base_url)
    minted = _send(ms.SESSION.login(cred, ctx))
    claims = ms.jwt_claims(minted.json()["token"])
    assert claims["accessRules"][0]["resources"] == [f"account:$USER_ID$:{ACCOUNT}"]
    for rule in (
        {
            "methods": ["trading-account-management-api:rest:public:*:*"],
            "resources": [f"account:$USER_ID$:{ACCOUNT}"],
        },
        {"methods": ["metaapi-api:rest:public:*:*"], "resources": ["*:$USER_ID$:*"]},
    ):
        token = _fake_jwt({"accessRules": [rule]})
        with pytest.raises(VenueUnavailable):
            ms.SESSION.parse_login(Answer(200, (), json.dumps({"token": token}).encode()),
                                   cred, ctx)  # fmt: skip
    with pytest.raises(VenueUnavailable):
        ms.SESSION.parse_login(Answer(200, (), b"<html>"), cred, ctx)


def test_jwt_exp_shortens_the_session(broad: str) -> None:
    token = _fake_jwt({"exp": NOW // 1000 + 60})
    ctx = SessionContext(NOW, "https://mt-client-api-v1.london.agiliumtrade.ai")
    tokens = ms.SESSION.parse_login(Answer(200, (), json.dumps({"token": token}).encode()),
                                    _cred(broad), ctx)  # fmt: skip
    assert tokens.expires_at_ms == NOW + 60_000


def test_mint_goes_to_the_profile_api_unless_overridden(broad: str) -> None:
    real = SessionContext(NOW, "https://mt-client-api-v1.london.agiliumtrade.ai")
    request = ms.SESSION.login(_cred(broad), real)
    assert request.url == f"{ms.PROFILE_API}{ms.MINT_PATH}?validity-in-hours={ms.VALIDITY_HOURS}"
    assert ("auth-token", broad) in request.headers and broad not in repr(request.headers)
    local = ms.SESSION.login(_cred(broad), SessionContext(NOW, "http://127.0.0.1:9/"))
    assert local.url.startswith("http://127.0.0.1:9" + ms.MINT_PATH)


def _fake_jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.{secrets.token_hex(16)}"


@pytest.mark.parametrize(
    ("where", "allowed"),
    [("https://mt-client-api-v1.london.agiliumtrade.ai", True),
     ("https://mt-client-api-v1.new-york.agiliumtrade.ai", True),
     ("https://mt-provisioning-api-v1.agiliumtrade.agiliumtrade.ai", False),
     ("https://mt-client-api-v1.london.agiliumtrade.ai.example.com", False),
     ("http://mt-client-api-v1.london.agiliumtrade.ai", False),
     ("https://profile-api-v1.agiliumtrade.agiliumtrade.ai", False)],
)  # fmt: skip
def test_egress_may_reach_every_region_and_never_the_provisioning_api(
    where: str, allowed: bool
) -> None:
    from vault_server.brokers.venues.metaapi import ADAPTER as METAAPI

    assert METAAPI.origin_pattern is not None
    assert bool(METAAPI.origin_pattern.fullmatch(where)) is allowed
