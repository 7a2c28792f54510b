"""Deribit adapter and ``deri-hmac-sha256`` scheme: the official vector, a ccxt cross-check,
freshness and nonce rules, units, endpoint policy, scopes and permission parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
    Venue,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.registry import adapter_for
from vault_server.brokers.schemes.deri_hmac import string_to_sign
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.deribit import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    InternalError,
    InvalidArgument,
    VenueUnavailable,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

NOW, NONCE = 1_576_074_319_000, "0123456789abcdef"
SECRET = secrets.token_hex(16)
CRED = VenueCredential(Venue.DERIBIT, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "AbCdEf12",
                       secret=Secret(SECRET))  # fmt: skip
CTX = SigningContext(now_ms=NOW, random_hex=NONCE)
LIMIT = OrderSpec(Operation.PLACE_ORDER, symbol="BTC-PERPETUAL", side=Side.BUY,
                  order_type=OrderType.LIMIT, quantity=Decimal("10"), price=Decimal("30000"),
                  client_order_id="c-1")  # fmt: skip


def test_official_client_signature_vector() -> None:
    """docs.deribit.com public/auth client_signature example (reference broker-breadth §2)."""
    digest = hmac.new(b"AMANDASECRECT", string_to_sign("1576074319000", "1iqt2wls", ""),
                      hashlib.sha256).hexdigest()  # fmt: skip
    assert digest == "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"


@pytest.mark.parametrize(
    "order",
    [LIMIT,
     OrderSpec(Operation.PLACE_ORDER, symbol="ETH-PERPETUAL", side=Side.SELL,
               order_type=OrderType.MARKET, quantity=Decimal("3"), extras={"reduce_only": "true"}),
     OrderSpec(Operation.CANCEL_ORDER, venue_order_id="ETH-349249"),
     OrderSpec(Operation.QUERY_ACCOUNT, extras={"currency": "BTC"})],
)  # fmt: skip
def test_signature_matches_ccxt(order: OrderSpec) -> None:
    request = ADAPTER.build(order, CRED, CTX)
    parts = urlsplit(request.url)
    exchange = ccxt.deribit({"apiKey": CRED.api_key, "secret": SECRET})
    exchange.nonce = lambda: NONCE
    exchange.milliseconds = lambda: NOW
    path = parts.path.removeprefix("/api/v2/private/")
    theirs: dict[str, Any] = exchange.sign(path, "private", "GET", dict(parse_qsl(parts.query)))
    assert theirs["url"] == request.url
    assert dict(request.headers) == theirs["headers"]
    assert request.body == b"" and request.expire_at_ms == NOW + 5000


def test_freshness_nonce_and_hosts() -> None:
    assert adapter_for(Venue.DERIBIT) is ADAPTER
    assert ADAPTER.build(LIMIT, CRED, SigningContext(now_ms=NOW, recv_window_ms=60_000,
                         random_hex=NONCE)).expire_at_ms == NOW + 60_000  # fmt: skip
    for bad in ("", "zz", "1234567"):
        with pytest.raises(InternalError):
            ADAPTER.build(LIMIT, CRED, SigningContext(now_ms=NOW, random_hex=bad))
    one = ADAPTER.build(LIMIT, CRED, SigningContext(now_ms=NOW, random_hex="aa" * 8))
    two = ADAPTER.build(LIMIT, CRED, SigningContext(now_ms=NOW, random_hex="bb" * 8))
    assert one.headers != two.headers
    assert ADAPTER.default_base_url(Environment.LIVE) == "https://www.deribit.com"
    assert ADAPTER.default_base_url(Environment.TESTNET) == "https://test.deribit.com"
    assert SECRET not in repr(one)


def test_units_are_contracts() -> None:
    query = dict(parse_qsl(urlsplit(ADAPTER.build(LIMIT, CRED, CTX).url).query))
    assert query["contracts"] == "10" and "amount" not in query
    quote = OrderSpec(**{**LIMIT.__dict__, "quantity": None, "quote_quantity": Decimal("5")})
    for order in (quote, OrderSpec(**{**LIMIT.__dict__, "extras": {"amount": "5"}})):
        with pytest.raises(InvalidArgument):
            ADAPTER.build(order, CRED, CTX)


@pytest.mark.parametrize(
    "path",
    ["/api/v2/private/withdraw", "/api/v2/private/submit_transfer_to_subaccount",
     "/api/v2/private/submit_transfer_to_user", "/api/v2/private/submit_transfer_between_subaccounts",
     "/api/v2/private/list_api_keys", "/api/v2/private/create_api_key",
     "/api/v2/private/create_deposit_address", "/api/v2/private/add_to_address_book",
     "/api/v2/private/WITHDRAW", "/api/v2/private/with%64raw", "/api/v2/private/buy/../withdraw"],
)  # fmt: skip
def test_fund_moving_endpoints_are_refused_at_signing(path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint("GET", path)
    with pytest.raises(EndpointNotAllowed):
        ADAPTER._sign(Call("GET", path, (("currency", "BTC"), ("amount", "1"))), CRED, CTX)


def test_scopes() -> None:
    vocab = ADAPTER.scope_vocabulary
    assert normalize_scopes(["trade:read_write", "account:read"], vocab) == {
        Scope.TRADE,
        Scope.READ,
    }
    for token in ("wallet:read_write", "account:read_write", "block_trade:read_write",
                  "custody:read_write", "withdraw", "WALLET:READ_WRITE", "wallet:read"):  # fmt: skip
        with pytest.raises(WithdrawalScopeRejected):
            normalize_scopes(["trade:read", token], vocab)


def _auth(scope: str) -> tuple[int, bytes]:
    result = {"access_token": "tok", "expires_in": 900, "refresh_token": "ref", "scope": scope,
              "token_type": "bearer"}  # fmt: skip
    return 200, json.dumps({"jsonrpc": "2.0", "result": result}).encode()


def test_permission_parsing_and_request() -> None:
    good = ADAPTER.parse_permissions(
        *_auth("account:read trade:read_write wallet:read block_trade:none mainaccount expires:900")
    )
    assert good.scopes == {Scope.READ, Scope.TRADE} and "tok" not in json.dumps(dict(good.raw))
    bad = ADAPTER.parse_permissions(*_auth("trade:read_write wallet:read_write"))
    assert Scope.WITHDRAW in bad.scopes
    assert Scope.TRANSFER in ADAPTER.parse_permissions(*_auth("account:read_write")).scopes
    assert ADAPTER.parse_permissions(*_auth("connection wallet:none trade:none")).scopes == set()
    for answer in ((400, b'{"error":{"code":13004,"message":"invalid_credentials"}}'),
                   (200, b'{"result":{"scope":5}}'), (200, b"nope"),
                   # docs.deribit.com/articles/authentication: an answer to public/auth without a
                   # requested scope, "connection mainaccount", names no access scope: no evidence
                   _auth("connection mainaccount"), _auth("mainaccount session:x expires:900"),
                   _auth("")):  # fmt: skip
        with pytest.raises(VenueUnavailable):
            ADAPTER.parse_permissions(*answer)
    request = ADAPTER.permission_request(CRED, CTX)
    assert request is not None and request.headers == ()
    query = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    expected = hmac.new(SECRET.encode(), f"{NOW}\n{NONCE}\n".encode(), hashlib.sha256).hexdigest()
    assert query == {"grant_type": "client_signature", "client_id": CRED.api_key,
                     "timestamp": str(NOW), "signature": expected, "nonce": NONCE, "data": ""}  # fmt: skip
