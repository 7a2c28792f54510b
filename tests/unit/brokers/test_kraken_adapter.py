"""Kraken Spot adapter: official vector through build(), deadline, nonce, policy, permissions."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl

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
from vault_server.brokers.venues.kraken import ADAPTER, KrakenSpotAdapter
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

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
VECTOR_NONCE = 1616492376594
VECTOR_BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
VECTOR_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)
CRED = VenueCredential(
    Venue.KRAKEN_SPOT, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "pub-key", secret=Secret(SECRET)
)
ORDER = OrderSpec(
    Operation.PLACE_ORDER,
    symbol="XBTUSD",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    quantity=Decimal("1.25"),
    price=Decimal("37500"),
)
CTX = SigningContext(now_ms=VECTOR_NONCE, nonce=VECTOR_NONCE)


def independent_sign(path: str, body: bytes) -> str:
    nonce = dict(parse_qsl(body.decode()))["nonce"]
    message = path.encode() + hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(SECRET), message, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def header(request: PreparedRequest, name: str) -> str:
    return dict(request.headers)[name]


def test_adapter_satisfies_the_protocol() -> None:
    adapter: VenueAdapter = ADAPTER
    assert adapter.needs_nonce and not adapter.proxy_only and not adapter.single_permission_tier
    assert adapter.algorithms == {KeyAlgorithm.HMAC_SHA512} and adapter.generatable == frozenset()
    assert adapter.default_base_url(Environment.LIVE) == "https://api.kraken.com"
    for env in (Environment.PAPER, Environment.TESTNET):
        with pytest.raises(OperationNotSupported):
            adapter.default_base_url(env)


def test_official_vector_reproduces_through_build() -> None:
    request = KrakenSpotAdapter(order_deadline=False).build(ORDER, CRED, CTX)
    assert request.method == "POST"
    assert request.url == "https://api.kraken.com/0/private/AddOrder"
    assert request.body == VECTOR_BODY
    assert header(request, "API-Sign") == VECTOR_SIGN
    assert header(request, "API-Key") == "pub-key"
    assert header(request, "Content-Type") == "application/x-www-form-urlencoded"


def test_default_adapter_adds_a_signed_deadline_in_sorted_position() -> None:
    request = ADAPTER.build(ORDER, CRED, CTX)
    assert request.body == (
        b"nonce=1616492376594&deadline=2021-03-23T09%3A39%3A41Z&ordertype=limit&pair=XBTUSD"
        b"&price=37500&type=buy&volume=1.25"
    )
    assert header(request, "API-Sign") == independent_sign("/0/private/AddOrder", request.body)
    assert header(request, "API-Sign") != VECTOR_SIGN
    assert request.expire_at_ms == 1616492381000


@pytest.mark.parametrize("window", [1, 1999, 2000, 3000, 5000, 59_999, 60_000])
@pytest.mark.parametrize("now", [1_616_492_376_000, 1_616_492_376_001, 1_616_492_376_999])
def test_deadline_is_always_inside_kraken_bounds(window: int, now: int) -> None:
    ctx = SigningContext(now_ms=now, recv_window_ms=window, nonce=now)
    request = ADAPTER.build(ORDER, CRED, ctx)
    text = dict(parse_qsl(request.body.decode()))["deadline"]
    deadline = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    deadline_ms = int(deadline.timestamp() * 1000)
    assert now + 2000 <= deadline_ms <= now + 60_000
    assert request.expire_at_ms == deadline_ms


@pytest.mark.parametrize("nonce", [None, 0, -5])
def test_missing_nonce_is_an_internal_error(nonce: int | None) -> None:
    with pytest.raises(InternalError):
        ADAPTER.build(ORDER, CRED, SigningContext(now_ms=1, nonce=nonce))
    with pytest.raises(InternalError):
        ADAPTER.permission_request(CRED, SigningContext(now_ms=1, nonce=nonce))


def test_secret_that_is_not_base64_is_refused_without_echo() -> None:
    bad = VenueCredential(
        Venue.KRAKEN_SPOT, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "k", secret=Secret("no!pe")
    )
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(ORDER, bad, CTX)
    assert info.value.field == "credential.secret" and "no!pe" not in str(info.value)


@pytest.mark.parametrize(
    ("order", "method", "body"),
    [
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="OUF4EM-FRGI2-MQMWZD"), "CancelOrder",
         "nonce=7&txid=OUF4EM-FRGI2-MQMWZD"),
        (OrderSpec(Operation.CANCEL_ORDER, client_order_id="my-1"), "CancelOrder",
         "nonce=7&cl_ord_id=my-1"),
        (OrderSpec(Operation.QUERY_ORDER, venue_order_id="OUF4EM-FRGI2-MQMWZD"), "QueryOrders",
         "nonce=7&txid=OUF4EM-FRGI2-MQMWZD"),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="XBTUSD"), "OpenOrders", "nonce=7"),
        (OrderSpec(Operation.QUERY_ACCOUNT), "Balance", "nonce=7"),
        (OrderSpec(Operation.AMEND_ORDER, client_order_id="my-1", quantity=Decimal("2.50"),
                   price=Decimal("37000"), extras={"post_only": "true"}), "AmendOrder",
         "nonce=7&cl_ord_id=my-1&deadline=1970-01-01T00%3A00%3A06Z&limit_price=37000"
         "&order_qty=2.5&post_only=true"),
        (OrderSpec(Operation.PLACE_ORDER, symbol="XBTUSD", side=Side.SELL,
                   order_type=OrderType.STOP_LIMIT, quantity=Decimal("1"), price=Decimal("30000"),
                   stop_price=Decimal("30500"), time_in_force=TimeInForce.IOC,
                   client_order_id="c1", extras={"oflags": "post,fciq", "stptype": "cancel-both"}),
         "AddOrder",
         "nonce=7&cl_ord_id=c1&deadline=1970-01-01T00%3A00%3A06Z&oflags=post%2Cfciq"
         "&ordertype=stop-loss-limit&pair=XBTUSD&price=30500&price2=30000&stptype=cancel-both"
         "&timeinforce=IOC&type=sell&volume=1"),
    ],
)  # fmt: skip
def test_operations_build_sorted_postdata(order: OrderSpec, method: str, body: str) -> None:
    request = ADAPTER.build(order, CRED, SigningContext(now_ms=1000, nonce=7))
    assert request.url == f"https://api.kraken.com/0/private/{method}"
    assert request.body.decode() == body
    assert header(request, "API-Sign") == independent_sign(f"/0/private/{method}", request.body)


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (OrderSpec(Operation.CANCEL_ORDER), "order.venue_order_id"),
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="A", client_order_id="B"),
         "order.venue_order_id"),
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="A,B"), "order.venue_order_id"),
        (OrderSpec(Operation.QUERY_ORDER, client_order_id="B"), "order.venue_order_id"),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id="A"), "order.quantity"),
        (OrderSpec(Operation.PLACE_ORDER, symbol="XBTUSD", side=Side.BUY,
                   order_type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(1),
                   time_in_force=TimeInForce.FOK), "order.time_in_force"),
        (OrderSpec(Operation.QUERY_ACCOUNT, extras={"asset": "XBT"}), "order.extras"),
    ],
)  # fmt: skip
def test_malformed_orders_are_refused(order: OrderSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == field


@pytest.mark.parametrize(
    "extras",
    [
        {"nonce": "99999999999999"}, {"deadline": "2099-01-01T00:00:00Z"}, {"volume": "100"},
        {"pair": "ETHUSD"}, {"otp": "123456"}, {"oflags": "viqc"}, {"oflags": "post,post"},
        {"leverage": "5"}, {"close[ordertype]": "limit"}, {"userref": "1&volume=100"},
    ],
)  # fmt: skip
def test_extras_cannot_override_or_smuggle(extras: dict[str, str]) -> None:
    order = OrderSpec(**{**ORDER.__dict__, "extras": extras})
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(order, CRED, CTX)
    assert info.value.field == "order.extras"


# --- endpoint policy ---------------------------------------------------------------------------
BLOCKED = [
    "Withdraw", "WithdrawCancel", "WithdrawInfo", "WithdrawMethods", "WithdrawAddresses",
    "WithdrawStatus", "WalletTransfer", "AccountTransfer", "CreateSubaccount", "DepositMethods",
    "DepositAddresses", "DepositStatus", "Earn/Allocate", "Earn/Deallocate", "Stake",
    "GetWebSocketsToken", "AddExport", "Ledgers",
]  # fmt: skip
SMUGGLED = [
    ("POST", "/0/private/AddOrder/../Withdraw"), ("POST", "/0/private/addorder"),
    ("POST", "/0/private/AddOrder/"), ("POST", "/0/private/%57ithdraw"),
    ("POST", "/0/private//AddOrder"), ("GET", "/0/private/AddOrder"),
    ("POST", "/0/public/../private/Withdraw"), ("POST", "/0/private/ADDORDER"),
    ("POST", "/0/private/AddOrder%2F..%2FWithdraw"), ("POST", "AddOrder"),
    ("POST", "/0/private/Balance;Withdraw"), ("POST", "/1/private/AddOrder"),
]  # fmt: skip
ALLOWED = ["AddOrder", "AmendOrder", "EditOrder", "CancelOrder", "CancelAll", "OpenOrders",
           "QueryOrders", "Balance", "TradeBalance", "GetApiKeyInfo"]  # fmt: skip


@pytest.mark.parametrize("name", BLOCKED)
def test_fund_moving_and_unlisted_methods_are_refused(name: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint("POST", f"/0/private/{name}")


@pytest.mark.parametrize(("method", "path"), SMUGGLED)
def test_smuggled_paths_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


@pytest.mark.parametrize("name", ALLOWED)
def test_trading_methods_pass(name: str) -> None:
    ADAPTER.check_endpoint("POST", f"/0/private/{name}")


# --- scopes and permissions ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    ["Withdraw Funds", "withdraw-funds", "WITHDRAW_FUNDS", "Deposit Funds", "add-funds",
     "earn-funds", "Earn Funds", "add-withdraw-address", "update-withdraw-address",
     "wіthdraw-funds"],
)  # fmt: skip
def test_fund_moving_scopes_are_rejected(token: str) -> None:
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["Query Funds", token], ADAPTER.scope_vocabulary)


def test_trading_scopes_normalise() -> None:
    ui = ["Query Funds", "Query Open Orders & Trades", "Create & Modify Orders",
          "Cancel/Close Orders"]  # fmt: skip
    assert normalize_scopes(ui, ADAPTER.scope_vocabulary) == {Scope.READ, Scope.TRADE}
    api = ["query-funds", "query-closed-trades", "modify-trades", "close-trades"]
    assert normalize_scopes(api, ADAPTER.scope_vocabulary) == {Scope.READ, Scope.TRADE}
    with pytest.raises(UnknownScope):
        normalize_scopes(["Godmode"], ADAPTER.scope_vocabulary)
    for token, scopes in ADAPTER.scope_vocabulary.items():
        if not scopes & {Scope.WITHDRAW, Scope.TRANSFER}:
            assert normalize_scopes([token], ADAPTER.scope_vocabulary) == scopes


# The example response of docs.kraken.com/api-reference/account-data/get-api-key-info
DOC_RESPONSE = {
    "error": [],
    "result": {
        "apiKeyName": "my-api-key", "apiKey": "4/SDrDBcOOPnm3nPlNfEMMJDeRcIVqPz+QhRxIodyZbI9po/aVRiHsgX",
        "nonce": "1772627060997", "nonceWindow": 0,
        "permissions": ["query-funds", "withdraw-funds", "query-open-trades", "modify-trades"],
        "iban": "AA88 N84G WOAK NMOI", "validUntil": "0", "queryFrom": "0", "queryTo": "0",
        "createdTime": "1772542900", "modifiedTime": "1772543095", "ipAllowlist": [],
        "lastUsed": "1772627061",
    },
}  # fmt: skip


def with_permissions(permissions: list[str]) -> bytes:
    return json.dumps({**DOC_RESPONSE, "result": {**DOC_RESPONSE["result"],
                                                  "permissions": permissions}}).encode()  # fmt: skip


def test_documented_get_api_key_info_response_is_parsed() -> None:
    report = ADAPTER.parse_permissions(200, json.dumps(DOC_RESPONSE).encode())
    assert report.scopes == {Scope.READ, Scope.TRADE, Scope.WITHDRAW}
    assert report.raw["apiKeyName"] == "my-api-key"
    assert report.raw["permissions"] == "query-funds,withdraw-funds,query-open-trades,modify-trades"
    assert "iban" not in report.raw and "apiKey" not in report.raw


@pytest.mark.parametrize(
    ("permissions", "scopes"),
    [
        (["query-funds", "query-open-trades", "query-closed-trades", "modify-trades",
          "close-trades"], {Scope.READ, Scope.TRADE}),
        (["query-funds", "add-funds"], {Scope.READ, Scope.TRANSFER}),
        (["earn-funds"], {Scope.TRANSFER}),
        (["add-withdraw-address"], {Scope.WITHDRAW}),
        (["query-funds", "move-funds-somewhere"], {Scope.READ, Scope.TRANSFER}),
        ([], set()),
    ],
)  # fmt: skip
def test_permission_tokens_map_to_scopes(permissions: list[str], scopes: set[Scope]) -> None:
    assert ADAPTER.parse_permissions(200, with_permissions(permissions)).scopes == scopes


def test_unknown_permission_tokens_are_recorded_not_guessed() -> None:
    report = ADAPTER.parse_permissions(200, with_permissions(["query-funds", "new-feature"]))
    assert report.scopes == {Scope.READ}
    assert report.raw["unknownPermissions"] == "new-feature"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"error": ["EAPI:Invalid key"]}'), (200, b'{"error": ["EGeneral:Permission denied"]}'),
        (200, b'{"error": [], "result": {}}'), (200, b'{"error": [], "result": {"permissions": "x"}}'),
        (500, b'{"error": [], "result": {"permissions": []}}'), (200, b"nope"),
    ],
)  # fmt: skip
def test_failed_permission_answers_are_errors(status: int, body: bytes) -> None:
    with pytest.raises(VenueUnavailable):
        ADAPTER.parse_permissions(status, body)


def test_permission_request_is_a_signed_get_api_key_info() -> None:
    request = ADAPTER.permission_request(CRED, SigningContext(now_ms=5, nonce=42))
    assert request is not None
    assert request.url == "https://api.kraken.com/0/private/GetApiKeyInfo"
    assert request.body == b"nonce=42"
    assert header(request, "API-Sign") == independent_sign("/0/private/GetApiKeyInfo", b"nonce=42")
