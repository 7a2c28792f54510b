"""cTrader: the message mapping and its refusals, the OAuth protocol over real HTTP against the
loopback stub (code exchange, rotating refresh, refused codes, platform down), and the
WebSocket transport against the same stub (application and account auth, orders with SL/TP,
amend, close, reconcile, an ended token, reconnect, one connection for two accounts)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.forex_flow import Account
from tests.venue_stubs.ctrader_stub import FLOW, REDIRECT_URI, CtraderStub
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
from vault_server.brokers.lifecycle import (
    Answer,
    Application,
    Lifecycle,
    LoginRefused,
    ReauthorizationNeeded,
    SessionContext,
    SessionTokens,
)
from vault_server.brokers.revealed import secret_values
from vault_server.brokers.venues.ctrader import ADAPTER
from vault_server.brokers.venues.ctrader_session import SESSION, TOKEN_HOST
from vault_server.core.errors import (
    EndpointNotAllowed,
    InvalidArgument,
    OperationNotSupported,
    VenueUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.egress.ctrader import CtraderConnections

NOW = 1_700_000_000_000
WSS = "wss://demo.ctraderapi.com:5036"


def credential(account_id: str = "1001", code: str = "code-x", **changes: Any) -> VenueCredential:
    fields: dict[str, Any] = {
        "venue": Venue.CTRADER, "environment": Environment.PAPER,
        "algorithm": KeyAlgorithm.OAUTH_CONSENT, "api_key": account_id, "account_id": account_id,
        "authorization_code": Secret(code.encode()), "redirect_uri": REDIRECT_URI,
    }  # fmt: skip
    return VenueCredential(**(fields | changes))


def build(order: OrderSpec, cred: VenueCredential | None = None, base: str | None = None) -> Any:
    ctx = SigningContext(now_ms=NOW, base_url=base)
    return ADAPTER.build(order, cred or credential(), ctx)


def body(request: PreparedRequest) -> Any:
    return json.loads(request.body)


def place(**changes: Any) -> OrderSpec:
    fields: dict[str, Any] = {"operation": Operation.PLACE_ORDER, "symbol": "EURUSD",
                              "side": Side.BUY, "order_type": OrderType.MARKET,
                              "quantity": Decimal("1000")}  # fmt: skip
    return OrderSpec(**(fields | changes))


def price(value: str) -> ProtectiveLevel:
    return ProtectiveLevel(price=Decimal(value))


# --- mapping ----------------------------------------------------------------------------------
def test_registered_with_the_oauth_lifecycle_and_base_units() -> None:
    adapter = registry.adapter_for(Venue.CTRADER)
    assert adapter is ADAPTER and Venue.CTRADER not in registry.PLANNED
    assert adapter.lifecycle is Lifecycle.OAUTH_CONSENT and adapter.proxy_only
    assert adapter.size_unit is SizeUnit.BASE_UNITS and adapter.protective_orders
    assert adapter.algorithms == frozenset({KeyAlgorithm.OAUTH_CONSENT})
    assert SESSION.refresh_rotates and SESSION.retry_safe_on_expiry
    assert SESSION.auth_origins == frozenset({TOKEN_HOST}) and SESSION.transport == "ctrader"


def test_market_order_with_levels_volume_in_hundredths_of_a_unit() -> None:
    req = build(place(stop_loss=price("1.05"), take_profit=price("1.2"), client_order_id="c-1"))
    assert (req.method, req.url) == ("POST", WSS + "/ProtoOANewOrderReq")
    assert body(req) == {"symbolName": "EURUSD", "orderType": 1, "tradeSide": 1,
                         "volume": 100_000, "stopLoss": 1.05, "takeProfit": 1.2,
                         "clientOrderId": "c-1"}  # fmt: skip


def test_limit_order_relative_levels_and_tif() -> None:
    order = place(order_type=OrderType.LIMIT, side=Side.SELL, price=Decimal("1.1"),
                  quantity=Decimal("0.5"), time_in_force=TimeInForce.GTC,
                  stop_loss=ProtectiveLevel(distance=Decimal("0.0025")),
                  take_profit=ProtectiveLevel(distance=Decimal("0.01")))  # fmt: skip
    assert body(build(order)) == {"symbolName": "EURUSD", "orderType": 2, "tradeSide": 2,
                                  "volume": 50, "limitPrice": 1.1, "timeInForce": 2,
                                  "relativeStopLoss": 250, "relativeTakeProfit": 1000}  # fmt: skip


def test_stop_order_and_live_host() -> None:
    cred = credential(environment=Environment.LIVE)
    req = build(place(order_type=OrderType.STOP_LOSS, stop_price=Decimal("1.2")), cred)
    assert req.url == "wss://live.ctraderapi.com:5036/ProtoOANewOrderReq"
    assert body(req)["orderType"] == 3 and body(req)["stopPrice"] == 1.2


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (place(quantity=Decimal("0.001")), "order.quantity"),
        (place(stop_loss=ProtectiveLevel(distance=Decimal("0.000001"))), "order.stop_loss"),
        (place(stop_loss=ProtectiveLevel()), "order.stop_loss"),
        (place(symbol="EUR\nUSD"), "order.symbol"),
        (place(time_in_force=TimeInForce.GTC), "order.time_in_force"),
        (place(order_type=OrderType.TAKE_PROFIT, stop_price=Decimal("1")), "order.order_type"),
        (place(extras={"label": "x"}), "order.extras"),
        (
            OrderSpec(
                Operation.AMEND_POSITION,
                position_id="7",
                stop_loss=ProtectiveLevel(distance=Decimal("0.01")),
            ),
            "order.stop_loss",
        ),
        (OrderSpec(Operation.AMEND_POSITION, position_id="7"), "order.stop_loss"),
        (OrderSpec(Operation.CLOSE_POSITION, position_id="x1"), "order.position_id"),
        (
            OrderSpec(Operation.CLOSE_POSITION, position_id="7", stop_loss=price("1")),
            "order.stop_loss",
        ),
        (OrderSpec(Operation.CANCEL_ORDER), "order.venue_order_id"),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id="9"), "order.price"),
    ],
)
def test_refusals_name_the_field(order: OrderSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        build(order)
    assert err.value.metadata["field"] == field


def test_bad_account_id_is_refused() -> None:
    with pytest.raises(InvalidArgument) as err:
        build(place(), credential(account_id="12a"))
    assert err.value.metadata["field"] == "credential.account_id"


def test_position_and_order_operations() -> None:
    amend = OrderSpec(Operation.AMEND_POSITION, position_id="77", stop_loss=price("1.06"),
                      take_profit=price("1.2"))  # fmt: skip
    assert body(build(amend)) == {"positionId": 77, "stopLoss": 1.06, "takeProfit": 1.2}
    assert build(amend).url.endswith("/ProtoOAAmendPositionSLTPReq")
    part = OrderSpec(Operation.CLOSE_POSITION, position_id="77", quantity=Decimal("1000"))
    assert body(build(part)) == {"positionId": 77, "volume": 100_000}
    whole = build(OrderSpec(Operation.CLOSE_POSITION, position_id="77"))
    assert whole.url.endswith("/ProtoOAClosePositionReq") and body(whole) == {"positionId": 77}
    cancel = build(OrderSpec(Operation.CANCEL_ORDER, venue_order_id="9"))
    assert cancel.url.endswith("/ProtoOACancelOrderReq") and body(cancel) == {"orderId": 9}
    amend_order = OrderSpec(Operation.AMEND_ORDER, venue_order_id="9", price=Decimal("1.1"),
                            quantity=Decimal("2000"))  # fmt: skip
    assert body(build(amend_order)) == {"orderId": 9, "volume": 200_000, "limitPrice": 1.1}
    detail = build(OrderSpec(Operation.QUERY_ORDER, venue_order_id="9"))
    assert detail.url.endswith("/ProtoOAOrderDetailsReq")
    for op in (Operation.QUERY_POSITIONS, Operation.QUERY_OPEN_ORDERS):
        req = build(OrderSpec(op))
        assert req.url.endswith("/ProtoOAReconcileReq") and body(req) == {}
    assert build(OrderSpec(Operation.QUERY_ACCOUNT)).url.endswith("/ProtoOATraderReq")


def test_size_unit_other_than_units_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        build(place(size_unit=SizeUnit.LOTS))


def test_allow_list_is_the_message_names() -> None:
    ADAPTER.check_endpoint("POST", "/ProtoOANewOrderReq")
    for method, path in [("POST", "/ProtoOAApplicationAuthReq"), ("POST", "/ProtoOAAccountAuthReq"),
                         ("GET", "/ProtoOANewOrderReq"), ("POST", "/ProtoOACashFlowHistoryListReq"),
                         ("POST", "/ProtoOARefreshTokenReq"), ("POST", "/apps/token")]:  # fmt: skip
        with pytest.raises(EndpointNotAllowed):
            ADAPTER.check_endpoint(method, path)


def test_no_withdrawal_scope() -> None:
    assert "withdraw" not in " ".join(ADAPTER.scope_vocabulary)


# --- protocol against the stub ----------------------------------------------------------------
@pytest.fixture
def stub() -> Iterator[CtraderStub]:
    with CtraderStub(Account()) as running:
        yield running


def app_of(stub: CtraderStub, secret: str | None = None) -> Application:
    return Application(stub.client_id, Secret((secret or stub.client_secret).encode()))


def ctx_of(stub: CtraderStub, app: Application | None = None, now: int = NOW) -> SessionContext:
    return SessionContext(now_ms=now, base_url=stub.base_url, application=app or app_of(stub),
                          base_overridden=True)  # fmt: skip


def answer(request: PreparedRequest, step: int = 0) -> Answer:
    reply = httpx.request(request.method, request.url, headers=list(request.headers),
                          content=request.body, timeout=5)  # fmt: skip
    return Answer(reply.status_code, tuple(reply.headers.items()), reply.content, step)


def login(stub: CtraderStub, cred: VenueCredential | None = None) -> SessionTokens:
    cred = cred or credential(str(stub.account_id), stub.consent())
    ctx = ctx_of(stub)
    tokens = SESSION.parse_login(answer(SESSION.login(cred, ctx)), cred, ctx)
    assert isinstance(tokens, SessionTokens)
    return tokens


def test_login_goes_to_the_token_host_unless_overridden(stub: CtraderStub) -> None:
    ctx = SessionContext(now_ms=NOW, base_url=WSS, application=app_of(stub))
    request = SESSION.login(credential(), ctx)
    assert request.method == "GET" and request.url.startswith(TOKEN_HOST + "/apps/token?")
    assert "grant_type=authorization_code" in request.url and "code=code-x" in request.url


def test_code_exchange_then_rotating_refresh(stub: CtraderStub) -> None:
    tokens = login(stub)
    assert stub.logins == 1 and set(tokens.values) == {"access", "refresh"}
    assert tokens.expires_at_ms == NOW + 2_628_000_000 and tokens.refresh_expires_at_ms is None
    assert tokens.values["access"] in stub.issued_tokens
    ctx = ctx_of(stub)
    cred = credential()
    renewed = SESSION.parse_refresh(answer(SESSION.refresh(tokens, cred, ctx)), tokens, cred, ctx)  # type: ignore[arg-type]
    assert renewed.values["refresh"] != tokens.values["refresh"] and stub.refreshes == 1
    again = answer(SESSION.refresh(tokens, cred, ctx))  # type: ignore[arg-type]
    with pytest.raises(ReauthorizationNeeded):
        SESSION.parse_refresh(again, tokens, cred, ctx)


def test_a_code_is_single_use_and_short_lived(stub: CtraderStub) -> None:
    code = stub.consent()
    cred = credential(str(stub.account_id), code)
    login(stub, cred)
    with pytest.raises(ReauthorizationNeeded):
        login(stub, cred)
    late = credential(str(stub.account_id), stub.consent())
    stub.clock = lambda: NOW + 10**13  # the code's minute has passed
    with pytest.raises(ReauthorizationNeeded):
        login(stub, late)
    assert stub.failed_logins == 2 and stub.logins == 1


def test_a_wrong_client_secret_is_a_refused_login(stub: CtraderStub) -> None:
    cred = credential(str(stub.account_id), stub.consent())
    ctx = ctx_of(stub, app_of(stub, "wrong-secret"))
    with pytest.raises(LoginRefused):
        SESSION.parse_login(answer(SESSION.login(cred, ctx)), cred, ctx)


def test_a_platform_that_is_down_is_unavailable(stub: CtraderStub) -> None:
    stub.fail_with = 503
    cred = credential(str(stub.account_id), stub.consent())
    with pytest.raises(VenueUnavailable):
        login(stub, cred)
    assert len(stub.requests) == 1 and stub.logins == 0


def test_authorize_adds_only_redacted_bearer_and_account(stub: CtraderStub) -> None:
    tokens = login(stub)
    request = SESSION.authorize(build(place()), tokens, credential())
    assert "Bearer " + tokens.values["access"] in secret_values(request.headers)
    assert ("ctidTraderAccountId", "1001") in request.headers
    assert SESSION.expired(401, {}, b"") and not SESSION.expired(400, {}, b"")


# --- transport against the stub ---------------------------------------------------------------
def authorized(stub: CtraderStub, order: OrderSpec, tokens: SessionTokens,
               account: str | None = None) -> PreparedRequest:  # fmt: skip
    cred = credential(account or str(stub.account_id))
    return SESSION.authorize(build(order, cred, stub.base_url), tokens, cred)


async def send(conns: CtraderConnections, stub: CtraderStub, request: PreparedRequest) -> Any:
    reply = await conns.send(request, client_id=stub.client_id,
                             client_secret=Secret(stub.client_secret.encode()), timeout_s=5)  # fmt: skip
    return reply.status, json.loads(reply.body)


def names(stub: CtraderStub) -> list[str]:
    return [r.path.strip("/") for r in stub.requests if r.method == "WS"]


def test_order_with_levels_amend_close_and_reconcile(stub: CtraderStub) -> None:
    tokens = login(stub)

    async def flow() -> None:
        conns = CtraderConnections()
        try:
            order = place(stop_loss=price("1.05"), take_profit=price("1.2"))
            status, opened = await send(conns, stub, authorized(stub, order, tokens))
            assert status == 200, opened
            assert opened["payload"]["executionType"] == 3  # filled
            assert opened["protection"]["payload"]["executionType"] == 4
            position = str(opened["payload"]["position"]["positionId"])
            assert (
                stub.positions[position]["stopLoss"],
                stub.positions[position]["takeProfit"],
            ) == (1.05, 1.2)
            amend = OrderSpec(Operation.AMEND_POSITION, position_id=position,
                              stop_loss=price("1.06"), take_profit=price("1.2"))  # fmt: skip
            status, _ = await send(conns, stub, authorized(stub, amend, tokens))
            assert status == 200 and stub.positions[position]["stopLoss"] == 1.06
            status, held = await send(
                conns, stub, authorized(stub, OrderSpec(Operation.QUERY_POSITIONS), tokens)
            )
            assert status == 200 and held["payloadType"] == 2125
            assert [p["positionId"] for p in held["payload"]["position"]] == [int(position)]
            close = OrderSpec(Operation.CLOSE_POSITION, position_id=position)  # whole
            status, closed = await send(conns, stub, authorized(stub, close, tokens))
            assert status == 200 and closed["payload"]["executionType"] == 3
            assert position not in stub.positions
        finally:
            await conns.close()

    asyncio.run(flow())
    sent = names(stub)
    assert sent[:3] == [
        "ProtoOAApplicationAuthReq",
        "ProtoOAAccountAuthReq",
        "ProtoOASymbolsListReq",
    ]
    assert sent.count("ProtoOAApplicationAuthReq") == 1 and sent.count("ProtoOAAccountAuthReq") == 1
    new_order = json.loads(next(r.body for r in stub.requests if r.path == "/ProtoOANewOrderReq"))
    assert "stopLoss" not in new_order["payload"] and new_order["payload"]["symbolId"] == 1
    assert new_order["payload"]["ctidTraderAccountId"] == stub.account_id
    assert stub.connections == 1


def test_relative_levels_go_with_the_market_order(stub: CtraderStub) -> None:
    tokens = login(stub)
    order = place(side=Side.SELL, stop_loss=ProtectiveLevel(distance=Decimal("0.005")))

    async def flow() -> Any:
        conns = CtraderConnections()
        try:
            return await send(conns, stub, authorized(stub, order, tokens))
        finally:
            await conns.close()

    status, opened = asyncio.run(flow())
    assert status == 200 and "protection" not in opened
    assert opened["payload"]["position"]["stopLoss"] == pytest.approx(1.0895)


def test_refusals_map_to_statuses(stub: CtraderStub) -> None:
    tokens = login(stub)

    async def flow() -> list[Any]:
        conns = CtraderConnections()
        try:
            out = []
            for order in (place(symbol="NOPE"), place(quantity=Decimal("1")),
                          OrderSpec(Operation.CLOSE_POSITION, position_id="123",
                                    quantity=Decimal("1000"))):  # fmt: skip
                out.append(await send(conns, stub, authorized(stub, order, tokens)))
            return out
        finally:
            await conns.close()

    unknown, bad_volume, no_position = asyncio.run(flow())
    assert unknown[0] == 404 and unknown[1]["payload"]["errorCode"] == "SYMBOL_NOT_FOUND"
    assert bad_volume[0] == 400 and bad_volume[1]["payload"]["errorCode"] == "TRADING_BAD_VOLUME"
    assert no_position[0] == 404
    assert not stub.positions


def test_an_ended_token_is_401_and_a_new_token_is_authorised_again(stub: CtraderStub) -> None:
    tokens = login(stub)
    query = OrderSpec(Operation.QUERY_POSITIONS)

    async def flow() -> None:
        conns = CtraderConnections()
        try:
            assert (await send(conns, stub, authorized(stub, query, tokens)))[0] == 200
            stub.expire_sessions()
            await asyncio.sleep(0.1)  # the invalidation event arrives
            status, refused = await send(conns, stub, authorized(stub, query, tokens))
            assert status == 401 and SESSION.expired(status, {}, b"")
            assert refused["payload"]["errorCode"] == "CH_ACCESS_TOKEN_INVALID"
            fresh = login(stub)
            assert (await send(conns, stub, authorized(stub, query, fresh)))[0] == 200
        finally:
            await conns.close()

    asyncio.run(flow())
    assert names(stub).count("ProtoOAReconcileReq") == 2  # the refused one never went out
    assert stub.connections == 1


def test_a_refresh_ends_the_old_token_and_the_transport_follows(stub: CtraderStub) -> None:
    tokens = login(stub)
    query = OrderSpec(Operation.QUERY_ACCOUNT)

    async def flow() -> None:
        conns = CtraderConnections()
        try:
            assert (await send(conns, stub, authorized(stub, query, tokens)))[0] == 200
            ctx, cred = ctx_of(stub), credential()
            refresh = SESSION.refresh(tokens, cred, ctx)
            assert refresh is not None
            renewed = SESSION.parse_refresh(answer(refresh), tokens, cred, ctx)
            await asyncio.sleep(0.1)
            assert (await send(conns, stub, authorized(stub, query, renewed)))[0] == 200
        finally:
            await conns.close()

    asyncio.run(flow())
    assert names(stub).count("ProtoOAAccountAuthReq") == 2


def test_reconnects_after_a_drop_and_authorises_again(stub: CtraderStub) -> None:
    tokens = login(stub)
    query = OrderSpec(Operation.QUERY_POSITIONS)

    async def flow() -> None:
        conns = CtraderConnections()
        try:
            assert (await send(conns, stub, authorized(stub, query, tokens)))[0] == 200
            stub.drop_connections()
            await asyncio.sleep(0.1)
            assert (await send(conns, stub, authorized(stub, query, tokens)))[0] == 200
        finally:
            await conns.close()

    asyncio.run(flow())
    assert stub.connections == 2
    assert names(stub).count("ProtoOAApplicationAuthReq") == 2


def test_one_connection_carries_two_accounts(stub: CtraderStub) -> None:
    first = login(stub)
    second = login(stub, credential("2002", stub.consent(2002)))
    query = OrderSpec(Operation.QUERY_ACCOUNT)

    async def flow() -> list[Any]:
        conns = CtraderConnections()
        try:
            return list(await asyncio.gather(
                send(conns, stub, authorized(stub, query, first)),
                send(conns, stub, authorized(stub, query, second, "2002")),
                send(conns, stub, authorized(stub, query, first)),
            ))  # fmt: skip
        finally:
            await conns.close()

    answers = asyncio.run(flow())
    assert [a[0] for a in answers] == [200, 200, 200]
    assert {a[1]["payload"]["ctidTraderAccountId"] for a in answers} == {1001, 2002}
    assert stub.connections == 1 and names(stub).count("ProtoOAApplicationAuthReq") == 1


def test_a_view_only_grant_cannot_trade(stub: CtraderStub) -> None:
    tokens = login(stub, credential(str(stub.account_id), stub.consent(scope=0)))

    async def flow() -> Any:
        conns = CtraderConnections()
        try:
            return await send(conns, stub, authorized(stub, place(), tokens))
        finally:
            await conns.close()

    status, refused = asyncio.run(flow())
    assert status == 403 and refused["payload"]["errorCode"] == "ACCESS_DENIED"
    assert not stub.positions


def test_heartbeats_are_sent(stub: CtraderStub) -> None:
    tokens = login(stub)

    async def flow() -> None:
        conns = CtraderConnections(heartbeat_s=0.05)
        try:
            await send(conns, stub, authorized(stub, OrderSpec(Operation.QUERY_ACCOUNT), tokens))
            await asyncio.sleep(0.3)
        finally:
            await conns.close()

    asyncio.run(flow())
    assert stub.heartbeats >= 2


def test_a_request_without_session_headers_is_refused(stub: CtraderStub) -> None:
    async def flow() -> None:
        await CtraderConnections().send(build(place(), None, stub.base_url), client_id="x",
                                        client_secret=Secret(b"y"), timeout_s=1)  # fmt: skip

    with pytest.raises(EndpointNotAllowed):
        asyncio.run(flow())


def test_flow_material_mints_a_fresh_code_each_time(stub: CtraderStub) -> None:
    first, second = FLOW.material(stub.account), FLOW.material(stub.account)
    assert first["authorization_code"] != second["authorization_code"]
    assert first["redirect_uri"] == REDIRECT_URI and first["account_id"] == stub.account.account_id


def test_unsupported_operation() -> None:
    with pytest.raises((OperationNotSupported, InvalidArgument)):
        build(OrderSpec(Operation.PLACE_ORDER))
