"""IG: the order mapping (every operation, refusals, allow-list, size unit) and the v3 session
protocol driven against the loopback stub over real HTTP (no vault)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.forex_flow import Account
from tests.venue_stubs.ig_stub import FLOW, IgStub
from vault_server.brokers._http_common import RedactedHeader
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    ProtectiveLevel,
    Scope,
    Side,
    SigningContext,
    SizeUnit,
    TimeInForce,
    Venue,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.lifecycle import (
    Answer,
    Lifecycle,
    LoginRefused,
    ReauthorizationNeeded,
    SessionContext,
    SessionTokens,
)
from vault_server.brokers.registry import PLANNED, adapter_for
from vault_server.brokers.venues.ig import ADAPTER
from vault_server.brokers.venues.ig_session import SESSION
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    VenueUnavailable,
)
from vault_server.core.secret import Secret

NOW = 1_700_000_000_000
EPIC = "CS.D.EURUSD.CFD.IP"
D = Decimal


def credential(password: str = "pw-never-echoed-123", **changes: Any) -> VenueCredential:
    base = VenueCredential(
        Venue.IG, Environment.PAPER, KeyAlgorithm.SESSION_LOGIN, "appkey123",
        secret=Secret(password), account_id="ABC123", username="trader1",
    )  # fmt: skip
    return replace(base, **changes)


CRED = credential()
CTX = SigningContext(now_ms=NOW)


def build(order: OrderSpec, cred: VenueCredential = CRED, base: str | None = None) -> Any:
    return ADAPTER.build(order, cred, replace(CTX, base_url=base))


def place(**changes: Any) -> OrderSpec:
    order = OrderSpec(Operation.PLACE_ORDER, symbol=EPIC, side=Side.BUY,
                      order_type=OrderType.MARKET, quantity=D("2"), client_order_id="sig-1")  # fmt: skip
    return replace(order, **changes)


def body(request: PreparedRequest) -> Any:
    return json.loads(request.body)


def headers(request: PreparedRequest) -> dict[str, str]:
    return dict(request.headers)


# --- the adapter and its mapping -----------------------------------------------------------------
def test_adapter_is_a_proxy_session_venue_in_contracts() -> None:
    assert ADAPTER.proxy_only and ADAPTER.single_permission_tier and not ADAPTER.needs_nonce
    assert ADAPTER.algorithms == {KeyAlgorithm.SESSION_LOGIN}
    assert ADAPTER.size_unit is SizeUnit.CONTRACTS
    assert ADAPTER.session is SESSION and ADAPTER.lifecycle is Lifecycle.PASSWORD_SESSION
    assert SESSION.refresh_rotates and SESSION.retry_safe_on_expiry
    assert ADAPTER.default_base_url(Environment.LIVE) == "https://api.ig.com/gateway/deal"
    assert ADAPTER.default_base_url(Environment.PAPER) == "https://demo-api.ig.com/gateway/deal"
    assert adapter_for(Venue.IG) is ADAPTER and Venue.IG not in PLANNED
    assert ADAPTER.permission_request(CRED, CTX) is None


def test_single_tier_vocabulary() -> None:
    assert normalize_scopes(["trade"], ADAPTER.scope_vocabulary) == {Scope.READ, Scope.TRADE}


def test_market_deal_with_stop_and_limit_levels() -> None:
    order = place(stop_loss=ProtectiveLevel(price=D("1.05")),
                  take_profit=ProtectiveLevel(price=D("1.2")))  # fmt: skip
    request = build(order)
    assert (request.method, request.url) == (
        "POST",
        "https://demo-api.ig.com/gateway/deal/positions/otc",
    )
    assert request.body == (
        b'{"epic":"CS.D.EURUSD.CFD.IP","expiry":"-","direction":"BUY","size":2,'
        b'"orderType":"MARKET","currencyCode":"USD","forceOpen":true,"guaranteedStop":false,'
        b'"stopLevel":1.05,"limitLevel":1.2,"dealReference":"sig-1"}'
    )  # fmt: skip
    assert headers(request) == {"Version": "2", "Accept": "application/json; charset=UTF-8",
                                "Content-Type": "application/json"}  # fmt: skip
    assert request.expire_at_ms == NOW + CTX.recv_window_ms


def test_limit_deal_with_distances_and_time_in_force() -> None:
    order = place(side=Side.SELL, order_type=OrderType.LIMIT, price=D("1.0825"),
                  time_in_force=TimeInForce.IOC, quantity=D("0.5"), client_order_id=None,
                  stop_loss=ProtectiveLevel(distance=D("20")),
                  take_profit=ProtectiveLevel(distance=D("35.5")),
                  extras={"expiry": "DFB", "currencyCode": "GBP"})  # fmt: skip
    assert body(build(order)) == {
        "epic": EPIC, "expiry": "DFB", "direction": "SELL", "size": 0.5, "orderType": "LIMIT",
        "level": 1.0825, "timeInForce": "EXECUTE_AND_ELIMINATE", "currencyCode": "GBP",
        "forceOpen": True, "guaranteedStop": False, "stopDistance": 20, "limitDistance": 35.5,
    }  # fmt: skip
    fok = body(build(place(time_in_force=TimeInForce.FOK)))
    assert fok["timeInForce"] == "FILL_OR_KILL" and "level" not in fok


def test_amend_position_sends_both_levels() -> None:
    order = OrderSpec(Operation.AMEND_POSITION, position_id="DIAAAAB8H7X6GA4",
                      stop_loss=ProtectiveLevel(price=D("1.06")),
                      take_profit=ProtectiveLevel(price=D("1.2")))  # fmt: skip
    request = build(order)
    assert (request.method, request.url.rsplit("/gateway/deal", 1)[1]) == (
        "PUT",
        "/positions/otc/DIAAAAB8H7X6GA4",
    )
    assert headers(request)["Version"] == "2"
    assert request.body == b'{"stopLevel":1.06,"limitLevel":1.2,"trailingStop":false}'


@pytest.mark.parametrize(
    ("stop", "limit", "field"),
    [(ProtectiveLevel(price=D("1.06")), None, "order.take_profit"),
     (None, ProtectiveLevel(price=D("1.2")), "order.stop_loss"),
     (ProtectiveLevel(distance=D("10")), ProtectiveLevel(price=D("1.2")), "order.stop_loss"),
     (ProtectiveLevel(price=D("1.06")), ProtectiveLevel(), "order.take_profit")],
)  # fmt: skip
def test_amend_position_refuses_what_would_drop_a_level(
    stop: ProtectiveLevel | None, limit: ProtectiveLevel | None, field: str
) -> None:
    order = OrderSpec(Operation.AMEND_POSITION, position_id="DIAAAAB8H7X6GA4",
                      stop_loss=stop, take_profit=limit)  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        build(order)
    assert info.value.metadata["field"] == field


def test_close_is_a_post_with_the_delete_override() -> None:
    order = OrderSpec(Operation.CLOSE_POSITION, position_id="DIAAAAB8H7X6GA4", side=Side.BUY,
                      quantity=D("1"))  # fmt: skip
    request = build(order)
    assert (request.method, request.url.rsplit("/gateway/deal", 1)[1]) == ("POST", "/positions/otc")
    assert headers(request)["_method"] == "DELETE" and headers(request)["Version"] == "1"
    assert body(request) == {"dealId": "DIAAAAB8H7X6GA4", "direction": "SELL", "size": 1,
                             "orderType": "MARKET"}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"side": None}, "order.side"), ({"quantity": None}, "order.quantity"),
     ({"position_id": None}, "order.position_id"), ({"position_id": "../x"}, "order.position_id"),
     ({"price": D("1")}, "order.order_type"),
     ({"stop_loss": ProtectiveLevel(price=D("1"))}, "order.stop_loss"),
     ({"time_in_force": TimeInForce.IOC}, "order.time_in_force")],
)  # fmt: skip
def test_close_refusals(changes: dict[str, Any], field: str) -> None:
    order = OrderSpec(Operation.CLOSE_POSITION, position_id="DIAAAAB8H7X6GA4", side=Side.BUY,
                      quantity=D("1"))  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        build(replace(order, **changes))
    assert info.value.metadata["field"] == field


@pytest.mark.parametrize(
    ("order", "path", "version"),
    [(OrderSpec(Operation.QUERY_POSITIONS), "/positions", "2"),
     (OrderSpec(Operation.QUERY_OPEN_ORDERS), "/workingorders", "2"),
     (OrderSpec(Operation.QUERY_ACCOUNT), "/accounts", "1"),
     (OrderSpec(Operation.QUERY_ORDER, client_order_id="sig-1"), "/confirms/sig-1", "1"),
     (OrderSpec(Operation.QUERY_ORDER, venue_order_id="REF9"), "/confirms/REF9", "1")],
)  # fmt: skip
def test_queries(order: OrderSpec, path: str, version: str) -> None:
    request = build(order)
    assert (request.method, request.url) == ("GET", ADAPTER.default_base_url(
        Environment.PAPER) + path)  # fmt: skip
    assert headers(request)["Version"] == version and request.body == b""


@pytest.mark.parametrize("operation", [Operation.CANCEL_ORDER, Operation.AMEND_ORDER])
def test_working_order_operations_are_not_supported(operation: Operation) -> None:
    with pytest.raises(OperationNotSupported):
        build(OrderSpec(operation, venue_order_id="DIAAAAB8H7X6GA4"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"order_type": OrderType.STOP_LOSS, "stop_price": D("1")}, "order.order_type"),
     ({"quantity": None, "quote_quantity": D("100")}, "order.quote_quantity"),
     ({"order_type": OrderType.LIMIT, "price": D("1"), "time_in_force": TimeInForce.GTC},
      "order.time_in_force"),
     ({"symbol": "EUR/USD"}, "order.symbol"), ({"symbol": "IX.D.FTSE.DAILY.IP"}, "order.extras"),
     ({"extras": {"currencyCode": "usd"}}, "order.extras"),
     ({"extras": {"forceOpen": "false"}}, "order.extras"),
     ({"client_order_id": "x" * 31}, "order.client_order_id"),
     ({"quantity": D("1.0000000000001")}, "order.quantity"),
     ({"quantity": D("-1")}, "order.quantity"),
     ({"stop_loss": ProtectiveLevel(price=D("1"), distance=D("2"))}, "order.stop_loss"),
     ({"take_profit": ProtectiveLevel()}, "order.take_profit"),
     ({"size_unit": SizeUnit.LOTS}, "order.size_unit")],
)  # fmt: skip
def test_place_refusals(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        build(place(**changes))
    assert info.value.metadata["field"] == field


def test_protective_levels_are_refused_where_they_would_be_dropped() -> None:
    for operation in (Operation.QUERY_POSITIONS, Operation.QUERY_ACCOUNT):
        with pytest.raises(InvalidArgument):
            build(OrderSpec(operation, take_profit=ProtectiveLevel(price=D("1"))))


def test_account_id_is_required_and_the_password_never_appears() -> None:
    for account in (None, "", "has space", "A" * 31):
        with pytest.raises(InvalidArgument) as info:
            build(place(), credential(account_id=account))
        assert info.value.metadata["field"] == "credential.account_id"
    request = build(place(), credential(password="canary-pw-42"))
    assert b"canary-pw-42" not in request.body + repr(request).encode()
    assert all("canary-pw-42" not in v for _, v in request.headers)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("POST", "/positions/otc", True), ("DELETE", "/positions/otc", True),
     ("PUT", "/positions/otc/DIAAAAB8H7X6GA4", True), ("GET", "/positions", True),
     ("GET", "/confirms/sig-1", True), ("GET", "/workingorders", True), ("GET", "/accounts", True),
     ("POST", "/session", False), ("POST", "/session/refresh-token", False),
     ("GET", "/session/encryptionKey", False), ("POST", "/workingorders/otc", False),
     ("PUT", "/positions/otc/a/b", False), ("GET", "/confirms/%2e%2e", False),
     ("GET", "/history/transactions", False), ("PUT", "/accounts/preferences", False),
     ("GET", "/positions/otc", False), ("DELETE", "/positions/otc/DIAAAAB8H7X6GA4", False),
     ("PUT", "/operations/application", False)],
)  # fmt: skip
def test_endpoint_allow_list(method: str, path: str, allowed: bool) -> None:
    if allowed:
        ADAPTER.check_endpoint(method, path)
    else:
        with pytest.raises(EndpointNotAllowed):
            ADAPTER.check_endpoint(method, path)


# --- the session protocol, pure ------------------------------------------------------------------
def test_login_request_carries_the_password_only_in_the_body() -> None:
    request = SESSION.login(CRED, SessionContext(NOW, "https://demo-api.ig.com/gateway/deal"))
    assert (request.method, request.url) == ("POST", "https://demo-api.ig.com/gateway/deal/session")
    assert body(request) == {"identifier": "trader1", "password": "pw-never-echoed-123"}
    assert headers(request)["Version"] == "3" and headers(request)["X-IG-API-KEY"] == "appkey123"
    assert isinstance(headers(request)["X-IG-API-KEY"], RedactedHeader)
    assert "pw-never-echoed" not in repr(request)
    for cred in (credential(username=None), credential(secret=None), credential(api_key="")):
        with pytest.raises(InvalidArgument):
            SESSION.login(cred, SessionContext(NOW, "https://x"))


def test_authorize_adds_redacted_session_headers() -> None:
    tokens = SessionTokens({"access": "acc-1", "refresh": "ref-1"}, NOW + 60_000)
    request = SESSION.authorize(build(place()), tokens, CRED)
    found = headers(request)
    assert found["Authorization"] == "Bearer acc-1" and found["IG-ACCOUNT-ID"] == "ABC123"
    assert isinstance(found["Authorization"], RedactedHeader)
    assert isinstance(found["X-IG-API-KEY"], RedactedHeader)
    assert "acc-1" not in repr(request.headers[1]) and found["Version"] == "2"
    with pytest.raises(ReauthorizationNeeded):
        SESSION.authorize(build(place()), SessionTokens({}, NOW), CRED)


@pytest.mark.parametrize(
    ("status", "payload", "expired"),
    [(401, b'{"errorCode":"error.security.oauth-token-invalid"}', True),
     (401, b'{"errorCode":"error.security.client-token-invalid"}', True),
     (401, b'{"errorCode":"error.security.invalid-details"}', False),
     (400, b'{"errorCode":"error.security.oauth-token-invalid"}', False),
     (401, b"not json", False), (200, b"{}", False)],
)  # fmt: skip
def test_expired(status: int, payload: bytes, expired: bool) -> None:
    assert SESSION.expired(status, {}, payload) is expired


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [(401, b'{"errorCode":"error.security.invalid-details"}', LoginRefused),
     (401, b'{"errorCode":"error.security.too-many-failed-attempts"}', LoginRefused),
     (403, b'{"errorCode":"error.security.api-key-invalid"}', LoginRefused),
     (403, b'{"errorCode":"error.public-api.exceeded-api-key-allowance"}', VenueUnavailable),
     (500, b'{"errorCode":"system.error"}', VenueUnavailable),
     (502, b"<html>", VenueUnavailable), (200, b"<html>", VenueUnavailable),
     (200, b'{"oauthToken":{"access_token":"a"}}', VenueUnavailable),
     (200, b'{"oauthToken":{"access_token":"a","refresh_token":"r","expires_in":"x"}}',
      VenueUnavailable)],
)  # fmt: skip
def test_parse_login_failures(status: int, payload: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        SESSION.parse_login(Answer(status, (), payload), CRED, SessionContext(NOW, "https://x"))


# --- the protocol against the stub, over HTTP ----------------------------------------------------
@dataclass
class Clock:
    now: int = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def account() -> Account:
    return Account(password="pw-" + secrets.token_hex(8), username="trader" + secrets.token_hex(3),
                   account_id="ABC123")  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stub(account: Account, clock: Clock) -> Iterator[IgStub]:
    with IgStub(username=account.username, password=account.password, api_key=account.api_key,
                account_id=account.account_id, clock=clock) as running:  # fmt: skip
        yield running


def cred_for(account: Account, password: str | None = None) -> VenueCredential:
    return credential(password or account.password, api_key=account.api_key,
                      username=account.username, account_id=account.account_id)  # fmt: skip


def send(request: PreparedRequest, step: int = 0) -> Answer:
    reply = httpx.request(request.method, request.url, headers=list(request.headers),
                          content=request.body, timeout=5)  # fmt: skip
    return Answer(reply.status_code, tuple(reply.headers.items()), reply.content, step)


def login(stub: IgStub, cred: VenueCredential, clock: Clock) -> SessionTokens:
    ctx = SessionContext(clock.now, stub.base_url)
    tokens = SESSION.parse_login(send(SESSION.login(cred, ctx)), cred, ctx)
    assert isinstance(tokens, SessionTokens)
    return tokens


def call(stub: IgStub, order: OrderSpec, tokens: SessionTokens, cred: VenueCredential) -> Answer:
    request = ADAPTER.build(order, cred, SigningContext(now_ms=NOW, base_url=stub.base_url))
    return send(SESSION.authorize(request, tokens, cred))


def test_login_then_place_amend_close(stub: IgStub, account: Account, clock: Clock) -> None:
    cred = cred_for(account)
    tokens = login(stub, cred, clock)
    assert stub.logins == 1 and tokens.expires_at_ms == NOW + 60_000
    assert tokens.facts == {"accountId": "ABC123"} and set(tokens.values) == {"access", "refresh"}
    order = place(symbol=FLOW.symbol, quantity=D(FLOW.quantity),
                  stop_loss=ProtectiveLevel(price=D(FLOW.stop_loss)),
                  take_profit=ProtectiveLevel(price=D(FLOW.take_profit)))  # fmt: skip
    placed = call(stub, order, tokens, cred)
    assert placed.status == 200, placed.body
    deal = FLOW.position_id(stub, placed.body)
    assert stub.positions[deal]["stopLoss"] == FLOW.stop_loss
    assert stub.positions[deal]["takeProfit"] == FLOW.take_profit
    confirm = call(stub, OrderSpec(Operation.QUERY_ORDER, client_order_id="sig-1"), tokens, cred)
    assert json.loads(confirm.body)["dealId"] == deal
    amend = OrderSpec(Operation.AMEND_POSITION, position_id=deal,
                      stop_loss=ProtectiveLevel(price=D(FLOW.amended_stop_loss)),
                      take_profit=ProtectiveLevel(price=D(FLOW.take_profit)))  # fmt: skip
    assert call(stub, amend, tokens, cred).status == 200
    assert stub.positions[deal]["stopLoss"] == FLOW.amended_stop_loss
    listed = call(stub, OrderSpec(Operation.QUERY_POSITIONS), tokens, cred)
    assert [p["position"]["dealId"] for p in json.loads(listed.body)["positions"]] == [deal]
    half = OrderSpec(Operation.CLOSE_POSITION, position_id=deal, side=Side.BUY, quantity=D("1"))
    assert call(stub, half, tokens, cred).status == 200 and stub.positions[deal]["size"] == 1
    assert call(stub, half, tokens, cred).status == 200 and deal not in stub.positions
    for query in (Operation.QUERY_ACCOUNT, Operation.QUERY_OPEN_ORDERS):
        assert call(stub, OrderSpec(query), tokens, cred).status == 200


def test_stub_rejects_what_ig_rejects(stub: IgStub, account: Account, clock: Clock) -> None:
    cred = cred_for(account)
    tokens = login(stub, cred, clock)
    placed = call(stub, place(), tokens, cred)
    deal = FLOW.position_id(stub, placed.body)
    # The position is a BUY: a close claiming it is a SELL would deal in the same direction.
    same_side = OrderSpec(Operation.CLOSE_POSITION, position_id=deal, side=Side.SELL,
                          quantity=D("1"))  # fmt: skip
    assert call(stub, same_side, tokens, cred).status == 400
    too_big = replace(same_side, side=Side.BUY, quantity=D("3"))
    assert call(stub, too_big, tokens, cred).status == 400
    request = ADAPTER.build(place(client_order_id="sig-2"), cred,
                            SigningContext(now_ms=NOW, base_url=stub.base_url))  # fmt: skip
    authorized = SESSION.authorize(request, tokens, cred)
    no_version = replace(authorized, headers=tuple(
        (k, v) for k, v in authorized.headers if k != "Version"))  # fmt: skip
    assert send(no_version).status == 400
    bad_json = replace(authorized, body=b"{not json")
    assert send(bad_json).status == 400
    no_key = replace(authorized, headers=tuple(
        (k, v) for k, v in authorized.headers if k != "X-IG-API-KEY"))  # fmt: skip
    assert json.loads(send(no_key).body) == {"errorCode": "error.security.api-key-missing"}
    other_account = SESSION.authorize(request, tokens, replace(cred, account_id="XYZ999"))
    assert send(other_account).status == 401
    assert call(stub, place(client_order_id="sig-1"), tokens, cred).status == 400  # duplicate


def test_expired_access_token_is_recognised(stub: IgStub, account: Account, clock: Clock) -> None:
    cred = cred_for(account)
    tokens = login(stub, cred, clock)
    clock.now = tokens.expires_at_ms
    answer = call(stub, OrderSpec(Operation.QUERY_POSITIONS), tokens, cred)
    assert answer.status == 401 and SESSION.expired(answer.status, {}, answer.body)
    clock.now = NOW
    stub.expire_sessions()
    answer = call(stub, OrderSpec(Operation.QUERY_POSITIONS), tokens, cred)
    assert SESSION.expired(answer.status, {}, answer.body)


def test_refresh_rotates_and_the_old_token_is_refused(
    stub: IgStub, account: Account, clock: Clock
) -> None:
    cred = cred_for(account)
    first = login(stub, cred, clock)
    clock.now += 50_000
    ctx = SessionContext(clock.now, stub.base_url)
    request = SESSION.refresh(first, cred, ctx)
    assert request is not None and request.url == stub.base_url + "/session/refresh-token"
    assert dict(request.headers)["Version"] == "1" and first.values["refresh"] not in repr(request)
    second = SESSION.parse_refresh(send(request), first, cred, ctx)
    assert second.values["access"] != first.values["access"]
    assert second.values["refresh"] != first.values["refresh"]
    assert second.expires_at_ms == clock.now + 60_000 and second.facts == first.facts
    assert call(stub, OrderSpec(Operation.QUERY_POSITIONS), second, cred).status == 200
    with pytest.raises(ReauthorizationNeeded):
        SESSION.parse_refresh(send(request), first, cred, ctx)  # the used refresh token
    assert stub.refreshes == 1 and stub.logins == 1
    assert SESSION.refresh(SessionTokens({"access": "a"}, NOW), cred, ctx) is None


def test_wrong_password_is_refused_then_locked(
    stub: IgStub, account: Account, clock: Clock
) -> None:
    wrong = cred_for(account, password="not-" + account.password)
    for _ in range(FLOW.wrong_password_locks_after):
        with pytest.raises(LoginRefused):
            login(stub, wrong, clock)
    assert stub.failed_logins == FLOW.wrong_password_locks_after and stub.locked
    with pytest.raises(LoginRefused) as info:
        login(stub, cred_for(account), clock)  # locked: even the right password
    assert info.value.metadata["errorCode"] == "error.security.too-many-failed-attempts"
    assert stub.logins == 0 and account.password not in str(info.value.__dict__)


def test_stub_down_is_venue_unavailable(stub: IgStub, account: Account, clock: Clock) -> None:
    cred = cred_for(account)
    tokens = login(stub, cred, clock)
    stub.down = True
    with pytest.raises(VenueUnavailable):
        login(stub, cred, clock)
    ctx = SessionContext(clock.now, stub.base_url)
    request = SESSION.refresh(tokens, cred, ctx)
    assert request is not None
    with pytest.raises(VenueUnavailable):
        SESSION.parse_refresh(send(request), tokens, cred, ctx)
    assert stub.failed_logins == 0


def test_flow_describes_the_stub(account: Account) -> None:
    assert FLOW.venue == Venue.IG.value and FLOW.material(account)["secret"] == account.password
    with FLOW.stub(account) as running:
        assert running.logins == 0 and running.positions == {} and running.requests == []
