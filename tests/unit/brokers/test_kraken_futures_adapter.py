"""Kraken Futures: the docs' Authent inputs, a ccxt cross-check, order mapping, nonce, refusals.

Doc inputs (https://docs.kraken.com/api/docs/guides/futures-rest/, "Authentication"): postData
``symbol=fi_xbtusd_180615``, nonce ``1415957147987``, endpointPath ``/api/v3/orderbook`` and the
example secret. The docs publish no output; the values below are DERIVED (reference
broker-breadth.md §2, which found them equal to independent third-party suites). The doc secret
is 87 characters and not valid base64 without its trailing ``=``, so it is used padded.
"""

from __future__ import annotations

import base64
import secrets
from decimal import Decimal
from urllib.parse import urlsplit

import ccxt
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
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.registry import adapter_for
from vault_server.brokers.schemes.authent import Authent, authent
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.kraken_futures import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    InternalError,
    InvalidArgument,
    OperationNotSupported,
    UnknownScope,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

DOC_SECRET = (
    "rttp4AzwRfYEdQ7R7X8Z/04Y4TZPa97pqCypi3xXxAqftygftnI6H9yGV+OcUOOJeFtZkr8mVwbAndU3Kz4Q+eG="
)
DOC_WITH_NONCE = (
    "DqUyz8Wh/72af7dimSXHw91IFxrAriTgVodyg2s67PU2mVStwLDQak+uIoCtfb43XONq0xVAp+vm5dqnhFAB1Q=="
)
DOC_WITHOUT_NONCE = (
    "BGOdiF//YXbOtKUkyFFRqKAft7gai33YfScxFrXMdMHGUJ6wSaMA6y0p6UzfYzj5Flgvv+SFQe53h2KrEe37Ng=="
)
NOW = 1_700_000_000_123
CTX = SigningContext(now_ms=NOW, recv_window_ms=5000, nonce=NOW)
CRED = VenueCredential(
    Venue.KRAKEN_FUTURES, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "pub-key",
    secret=Secret(DOC_SECRET),
)  # fmt: skip
LIMIT = OrderSpec(
    Operation.PLACE_ORDER, symbol="PF_XBTUSD", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("0.0100"), price=Decimal("50000"), client_order_id="c-1",
)  # fmt: skip


def test_doc_inputs_give_the_derived_authent() -> None:
    secret = Secret(DOC_SECRET)
    path = "/api/v3/orderbook"
    assert authent(secret, "symbol=fi_xbtusd_180615", "1415957147987", path) == DOC_WITH_NONCE
    assert authent(secret, "symbol=fi_xbtusd_180615", "", path) == DOC_WITHOUT_NONCE


def test_doc_inputs_through_the_scheme_strip_derivatives_and_send_the_nonce() -> None:
    call = Call("GET", "/derivatives/api/v3/orderbook", (("symbol", "fi_xbtusd_180615"),))
    ctx = SigningContext(now_ms=1415957147987, nonce=1415957147987)
    request = Authent().sign(call, "https://futures.kraken.com", CRED, ctx)
    assert (
        request.url
        == "https://futures.kraken.com/derivatives/api/v3/orderbook?symbol=fi_xbtusd_180615"
    )
    assert dict(request.headers) == {
        "APIKey": "pub-key", "Nonce": "1415957147987", "Authent": DOC_WITH_NONCE,
    }  # fmt: skip
    assert request.body == b"" and request.expire_at_ms == 1415957147987 + 5000


def test_place_order_mapping_and_units() -> None:
    request = ADAPTER.build(LIMIT, CRED, CTX)
    assert (request.method, request.url) == (
        "POST", "https://futures.kraken.com/derivatives/api/v3/sendorder"
    )  # fmt: skip
    body = "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=0.01&limitPrice=50000&cliOrdId=c-1"
    assert request.body == body.encode()
    headers = dict(request.headers)
    assert headers["Nonce"] == str(NOW)
    assert headers["Authent"] == authent(Secret(DOC_SECRET), body, str(NOW), "/api/v3/sendorder")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("fields", "params"),
    [
        ({"order_type": OrderType.MARKET, "price": None}, "orderType=mkt"),
        ({"time_in_force": TimeInForce.IOC}, "orderType=ioc"),
        ({"extras": {"post_only": "true"}}, "orderType=post"),
        ({"order_type": OrderType.STOP_LOSS, "price": None, "stop_price": Decimal("40000"),
          "extras": {"triggerSignal": "mark", "reduceOnly": "true"}},
         "orderType=stp&symbol=PF_XBTUSD&side=buy&size=0.01&stopPrice=40000&cliOrdId=c-1"
         "&reduceOnly=true&triggerSignal=mark"),
        ({"order_type": OrderType.TAKE_PROFIT_LIMIT, "stop_price": Decimal("60000")},
         "orderType=take_profit&symbol=PF_XBTUSD&side=buy&size=0.01&limitPrice=50000"
         "&stopPrice=60000"),
    ],
)  # fmt: skip
def test_order_types(fields: dict[str, object], params: str) -> None:
    from dataclasses import replace

    body = ADAPTER.build(replace(LIMIT, **fields), CRED, CTX).body.decode()  # type: ignore[arg-type]
    assert body.startswith(params)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quantity": None, "quote_quantity": Decimal("100")}, "order.quote_quantity"),
        ({"time_in_force": TimeInForce.FOK}, "order.time_in_force"),
        ({"extras": {"post_only": "true"}, "time_in_force": TimeInForce.IOC}, "order.extras"),
        ({"extras": {"triggerSignal": "mark"}}, "order.extras"),
        ({"extras": {"size": "1000"}}, "order.extras"),  # a signed core field
        ({"extras": {"processBefore": "2099-01-01T00:00:00Z"}}, "order.extras"),
        ({"extras": {"withdrawAddress": "x"}}, "order.extras"),
    ],
)
def test_refused_orders(fields: dict[str, object], field: str) -> None:
    from dataclasses import replace

    with pytest.raises(InvalidArgument) as err:
        ADAPTER.build(replace(LIMIT, **fields), CRED, CTX)  # type: ignore[arg-type]
    assert err.value.metadata.get("field", field) == field


def test_other_operations() -> None:
    def built(op: Operation, **fields: object) -> tuple[str, str, bytes]:
        r = ADAPTER.build(OrderSpec(op, **fields), CRED, CTX)  # type: ignore[arg-type]
        return (
            r.method,
            r.url.removeprefix("https://futures.kraken.com/derivatives/api/v3/"),
            r.body,
        )

    assert built(Operation.CANCEL_ORDER, venue_order_id="abc-1") == (
        "POST", "cancelorder", b"order_id=abc-1")  # fmt: skip
    assert built(Operation.CANCEL_ORDER, client_order_id="c-1") == (
        "POST", "cancelorder", b"cliOrdId=c-1")  # fmt: skip
    assert built(Operation.AMEND_ORDER, venue_order_id="abc-1", quantity=Decimal("2"),
                 price=Decimal("51000")) == (
        "POST", "editorder", b"orderId=abc-1&size=2&limitPrice=51000")  # fmt: skip
    assert built(Operation.QUERY_ORDER, client_order_id="c-1") == (
        "POST", "orders/status", b"cliOrdIds=c-1")  # fmt: skip
    assert built(Operation.QUERY_OPEN_ORDERS, symbol="PF_XBTUSD") == ("GET", "openorders", b"")
    assert built(Operation.QUERY_ACCOUNT) == ("GET", "accounts", b"")
    with pytest.raises(InvalidArgument):
        built(Operation.CANCEL_ORDER, venue_order_id="a", client_order_id="b")
    with pytest.raises(InvalidArgument):
        built(Operation.AMEND_ORDER, venue_order_id="a")


def test_ccxt_signs_the_same_postdata_and_path() -> None:
    """ccxt krakenfutures ``sign()`` (no nonce: its layout) over the same parameters and key."""
    secret = base64.b64encode(secrets.token_bytes(64)).decode()
    cred = VenueCredential(Venue.KRAKEN_FUTURES, Environment.LIVE, KeyAlgorithm.HMAC_SHA512,
                           "pub-key", secret=Secret(secret))  # fmt: skip
    exchange = ccxt.krakenfutures({"apiKey": "pub-key", "secret": secret})
    for order, (path, method) in (
        (LIMIT, ("sendorder", "POST")),
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="abc-1"), ("cancelorder", "POST")),
        (OrderSpec(Operation.QUERY_ACCOUNT), ("accounts", "GET")),
    ):
        ours = ADAPTER.build(order, cred, CTX)
        post_data = ours.body.decode() or urlsplit(ours.url).query
        params = dict(pair.split("=", 1) for pair in post_data.split("&") if pair)
        theirs = exchange.sign(path, "private", method, params)
        assert urlsplit(theirs["url"]).query == post_data
        assert theirs["url"].split("?")[0] == ours.url.split("?")[0]
        expected = authent(Secret(secret), post_data, "", "/api/v3/" + path)
        assert theirs["headers"]["Authent"] == expected
        assert dict(ours.headers)["Authent"] == authent(
            Secret(secret), post_data, str(NOW), "/api/v3/" + path
        )


def test_every_request_carries_the_vault_nonce() -> None:
    from dataclasses import replace

    with pytest.raises(InternalError):
        ADAPTER.build(LIMIT, CRED, replace(CTX, nonce=None))
    with pytest.raises(InternalError):
        ADAPTER.build(LIMIT, CRED, replace(CTX, nonce=0))
    assert ADAPTER.needs_nonce and adapter_for(Venue.KRAKEN_FUTURES) is ADAPTER
    first = ADAPTER.build(LIMIT, CRED, CTX)
    later = ADAPTER.build(LIMIT, CRED, replace(CTX, nonce=NOW + 1))
    assert dict(first.headers)["Authent"] != dict(later.headers)["Authent"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/derivatives/api/v3/withdrawal"), ("POST", "/derivatives/api/v3/transfer"),
     ("POST", "/derivatives/api/v3/transfer/subaccount"),
     ("POST", "/derivatives/api/v3/WITHDRAWAL"), ("POST", "/derivatives/api/v3/with%64rawal"),
     ("GET", "/derivatives/api/v3/transfers"), ("POST", "/derivatives/api/v3/batchorder"),
     ("GET", "/derivatives/api/v3/sendorder"), ("POST", "/api/history/v2/orders"),
     ("POST", "/derivatives/api/v3/sendorder/../withdrawal")],
)  # fmt: skip
def test_fund_moving_and_unlisted_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


def test_scopes() -> None:
    vocab = ADAPTER.scope_vocabulary
    assert normalize_scopes(["General API Full Access", "read-only"], vocab) == {
        Scope.TRADE, Scope.READ,
    }  # fmt: skip
    for token in ("Withdrawal API Full Access", "withdrawal-full-access", "withdrawal",
                  "withdraw", "transfer"):  # fmt: skip
        with pytest.raises(WithdrawalScopeRejected):
            normalize_scopes(["trade", token], vocab)
    with pytest.raises(UnknownScope):
        normalize_scopes(["Full Access"], vocab)  # ambiguous: which of the two levels?


def test_environments_and_no_attestation() -> None:
    assert ADAPTER.default_base_url(Environment.LIVE) == "https://futures.kraken.com"
    for env in (Environment.PAPER, Environment.TESTNET):
        with pytest.raises(OperationNotSupported):
            ADAPTER.default_base_url(env)
    assert ADAPTER.permission_request(CRED, CTX) is None
    with pytest.raises(OperationNotSupported):
        ADAPTER.parse_permissions(200, b"{}")
    assert ADAPTER.algorithms == {KeyAlgorithm.HMAC_SHA512} and not ADAPTER.generatable


def test_secret_must_be_base64_and_errors_never_carry_it() -> None:
    from dataclasses import replace

    canary = "CANARY-" + secrets.token_hex(16)
    with pytest.raises(InvalidArgument) as err:
        ADAPTER.build(LIMIT, replace(CRED, secret=Secret(canary)), CTX)
    assert canary not in repr(err.value) and canary not in str(err.value.metadata)
