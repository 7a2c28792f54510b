"""Coinbase Advanced adapter: JWTs verified with the public key (PyJWT and cryptography), ES256
with a key generated at run time, EdDSA with the official SDK test secret, order shapes, endpoint
policy, scopes and key_permissions parsing."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

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
from vault_server.brokers.schemes import cdp_jwt as cj
from vault_server.brokers.venues.coinbase import ADAPTER, STRICT_ADAPTER, CoinbaseAdvancedAdapter
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

# coinbase/coinbase-advanced-py tests/constants.py (published test-only values, reference §4.2)
TEST_API_KEY = "organizations/test-organization/apiKeys/test-api-key"
TEST_ED25519_API_SECRET = (
    "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputDOKsRAwgyrpEQLeBtS1znTmzPX6Xr2eOWpzx6nW8knkA=="
)
NOW = 1_700_000_000_123
NONCE = "9f" * 32
CTX = SigningContext(now_ms=NOW, random_hex=NONCE)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_PEM = EC_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
)  # fmt: skip
EC_CRED = VenueCredential(
    Venue.COINBASE_ADVANCED, Environment.LIVE, KeyAlgorithm.ECDSA_P256, TEST_API_KEY,
    private_key_pem=Secret(EC_PEM),
)  # fmt: skip
ED_CRED = VenueCredential(
    Venue.COINBASE_ADVANCED, Environment.LIVE, KeyAlgorithm.ED25519, "test-ed25519-key-id",
    secret=Secret(TEST_ED25519_API_SECRET),
)  # fmt: skip
ED_SEED = base64.b64decode(TEST_ED25519_API_SECRET)[:32]
ED_PUBLIC = ed25519.Ed25519PrivateKey.from_private_bytes(ED_SEED).public_key()
ORDER = OrderSpec(
    Operation.PLACE_ORDER, symbol="BTC-USD", side=Side.BUY, order_type=OrderType.LIMIT,
    quantity=Decimal("0.0010"), price=Decimal("25000.00"), client_order_id="cl-1",
)  # fmt: skip


def token_of(request: PreparedRequest) -> str:
    scheme, _, token = dict(request.headers)["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


def decode(request: PreparedRequest, key: Any, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    token = token_of(request)
    claims = jwt.decode(token, key, algorithms=[alg],
                        options={"verify_exp": False, "verify_nbf": False})  # fmt: skip
    return jwt.get_unverified_header(token), claims


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_adapter_satisfies_the_protocol() -> None:
    for adapter, strict in ((ADAPTER, False), (STRICT_ADAPTER, True)):
        checked: VenueAdapter = adapter
        assert checked.proxy_only is strict and not checked.single_permission_tier
        assert checked.algorithms == {KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ED25519}
        assert checked.generatable == frozenset() and not checked.needs_nonce
    assert CoinbaseAdvancedAdapter(strict=True).proxy_only
    assert ADAPTER.default_base_url(Environment.LIVE) == "https://api.coinbase.com"
    assert ADAPTER.default_base_url(Environment.PAPER) == "https://api-sandbox.coinbase.com"


# --- ES256 ------------------------------------------------------------------------------------
def test_es256_jwt_verifies_with_the_public_key() -> None:
    request = ADAPTER.build(ORDER, EC_CRED, CTX)
    header, claims = decode(request, EC_KEY.public_key(), "ES256")
    assert header == {"alg": "ES256", "kid": TEST_API_KEY, "nonce": NONCE, "typ": "JWT"}
    assert claims == {"sub": TEST_API_KEY, "iss": "cdp", "nbf": 1_700_000_000,
                      "exp": 1_700_000_120, "uri": "POST api.coinbase.com/api/v3/brokerage/orders"}  # fmt: skip
    assert request.expire_at_ms == 1_700_000_120_000
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token_of(request), ec.generate_private_key(ec.SECP256R1()).public_key(),
                   algorithms=["ES256"], options={"verify_exp": False})  # fmt: skip


def test_es256_signature_verifies_with_cryptography_over_the_signing_input() -> None:
    token = token_of(ADAPTER.build(ORDER, EC_CRED, CTX))
    head, payload, signature = token.split(".")
    raw = b64url(signature)
    assert len(raw) == 64  # JWS ES256: r || s, 32 bytes each
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    EC_KEY.public_key().verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))


def test_pkcs8_ec_key_and_real_clock_token_pass_default_verification() -> None:
    pkcs8 = EC_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())  # fmt: skip
    cred = VenueCredential(**{**EC_CRED.__dict__, "private_key_pem": Secret(pkcs8)})
    ctx = SigningContext(now_ms=int(time.time() * 1000), random_hex=NONCE)
    request = ADAPTER.build(OrderSpec(Operation.QUERY_ACCOUNT), cred, ctx)
    claims = jwt.decode(token_of(request), EC_KEY.public_key(), algorithms=["ES256"])
    assert claims["uri"] == "GET api.coinbase.com/api/v3/brokerage/accounts"


# --- EdDSA ------------------------------------------------------------------------------------
def test_eddsa_with_the_official_sdk_test_secret_verifies() -> None:
    request = ADAPTER.build(ORDER, ED_CRED, CTX)
    header, claims = decode(request, ED_PUBLIC, "EdDSA")
    assert header == {"alg": "EdDSA", "kid": "test-ed25519-key-id", "nonce": NONCE, "typ": "JWT"}
    assert claims["sub"] == "test-ed25519-key-id" and claims["iss"] == "cdp"
    assert claims["exp"] == claims["nbf"] + 120
    head, payload, signature = token_of(request).split(".")
    ED_PUBLIC.verify(b64url(signature), f"{head}.{payload}".encode())


def test_eddsa_is_deterministic_for_a_fixed_context() -> None:
    first = token_of(ADAPTER.build(ORDER, ED_CRED, CTX))
    assert first == token_of(ADAPTER.build(ORDER, ED_CRED, CTX))
    assert first != token_of(
        ADAPTER.build(ORDER, ED_CRED, SigningContext(NOW, random_hex="ab" * 8))
    )
    assert first != token_of(
        ADAPTER.build(ORDER, ED_CRED, SigningContext(NOW + 1000, random_hex=NONCE))
    )
    seed_only = VenueCredential(**{**ED_CRED.__dict__, "secret": Secret(base64.b64encode(ED_SEED))})
    assert token_of(ADAPTER.build(ORDER, seed_only, CTX)) == first
    pem = ed25519.Ed25519PrivateKey.from_private_bytes(ED_SEED).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    as_pem = VenueCredential(**{**ED_CRED.__dict__, "secret": None, "private_key_pem": Secret(pem)})
    assert token_of(ADAPTER.build(ORDER, as_pem, CTX)) == first


@pytest.mark.parametrize(
    ("cred", "field"),
    [
        (VenueCredential(**{**ED_CRED.__dict__, "secret": Secret(base64.b64encode(b"x" * 64))}),
         "credential.secret"),  # public half does not match the seed
        (VenueCredential(**{**ED_CRED.__dict__, "secret": Secret(base64.b64encode(b"x" * 31))}),
         "credential.secret"),
        (VenueCredential(**{**ED_CRED.__dict__, "secret": Secret("not base64 !")}), "credential.secret"),
        (VenueCredential(**{**ED_CRED.__dict__, "secret": Secret(EC_PEM)}), "credential.secret"),
        (VenueCredential(**{**EC_CRED.__dict__, "private_key_pem": Secret(b"-----BEGIN junk")}),
         "credential.private_key_pem"),
        (VenueCredential(**{**EC_CRED.__dict__, "private_key_pem": Secret(
            ec.generate_private_key(ec.SECP384R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))}), "credential.private_key_pem"),
        (VenueCredential(**{**EC_CRED.__dict__, "private_key_pem": None}), "credential.private_key_pem"),
    ],
)  # fmt: skip
def test_unusable_key_material_is_refused_without_echo(cred: VenueCredential, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(ORDER, cred, CTX)
    assert info.value.field == field
    assert "BEGIN" not in str(info.value) and "eHh4" not in str(info.value)


@pytest.mark.parametrize("nonce", ["", "xyz", "AB" * 16, "a" * 8])
def test_missing_or_malformed_random_nonce_is_an_internal_error(nonce: str) -> None:
    with pytest.raises(InternalError):
        ADAPTER.build(ORDER, EC_CRED, SigningContext(now_ms=NOW, random_hex=nonce))


def test_wrong_algorithm_is_not_supported() -> None:
    cred = VenueCredential(**{**EC_CRED.__dict__, "algorithm": KeyAlgorithm.HMAC_SHA256})
    with pytest.raises(OperationNotSupported):
        ADAPTER.build(ORDER, cred, CTX)


def test_key_material_never_appears_in_the_request() -> None:
    request = ADAPTER.build(ORDER, ED_CRED, CTX)
    text = request.url + request.body.decode() + "".join(v for _, v in request.headers)
    assert TEST_ED25519_API_SECRET[:20] not in text and EC_PEM.decode()[40:80] not in text
    assert token_of(request) not in repr(request)


# --- request shapes ---------------------------------------------------------------------------
def config(**changes: Any) -> dict[str, Any]:
    request = ADAPTER.build(OrderSpec(**{**ORDER.__dict__, **changes}), EC_CRED, CTX)
    body = json.loads(request.body)
    assert list(body) == ["client_order_id", "product_id", "side", "order_configuration"]
    return body["order_configuration"]  # type: ignore[no-any-return]


def test_place_order_body_is_exact_compact_json() -> None:
    request = ADAPTER.build(ORDER, EC_CRED, CTX)
    assert (request.method, request.url) == (
        "POST",
        "https://api.coinbase.com/api/v3/brokerage/orders",
    )
    assert request.body == (b'{"client_order_id":"cl-1","product_id":"BTC-USD","side":"BUY",'
                            b'"order_configuration":{"limit_limit_gtc":{"base_size":"0.001",'
                            b'"limit_price":"25000","post_only":false}}}')  # fmt: skip
    assert dict(request.headers)["Content-Type"] == "application/json"


END = "2030-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"order_type": OrderType.MARKET, "price": None, "side": Side.SELL},
         {"market_market_ioc": {"base_size": "0.001"}}),
        ({"extras": {"post_only": "true"}},
         {"limit_limit_gtc": {"base_size": "0.001", "limit_price": "25000", "post_only": True}}),
        ({"time_in_force": TimeInForce.GTD, "extras": {"end_time": END}},
         {"limit_limit_gtd": {"base_size": "0.001", "limit_price": "25000", "end_time": END,
                              "post_only": False}}),
        ({"time_in_force": TimeInForce.FOK},
         {"limit_limit_fok": {"base_size": "0.001", "limit_price": "25000"}}),
        ({"time_in_force": TimeInForce.IOC},
         {"sor_limit_ioc": {"base_size": "0.001", "limit_price": "25000"}}),
        ({"order_type": OrderType.STOP_LIMIT, "stop_price": Decimal("26000")},
         {"stop_limit_stop_limit_gtc": {"base_size": "0.001", "limit_price": "25000",
                                        "stop_price": "26000",
                                        "stop_direction": "STOP_DIRECTION_STOP_UP"}}),
        ({"order_type": OrderType.STOP_LIMIT, "stop_price": Decimal("24000"), "side": Side.SELL,
          "time_in_force": TimeInForce.GTD, "extras": {"end_time": END}},
         {"stop_limit_stop_limit_gtd": {"base_size": "0.001", "limit_price": "25000",
                                        "stop_price": "24000",
                                        "stop_direction": "STOP_DIRECTION_STOP_DOWN",
                                        "end_time": END}}),
        ({"order_type": OrderType.TAKE_PROFIT_LIMIT, "stop_price": Decimal("24000")},
         {"stop_limit_stop_limit_gtc": {"base_size": "0.001", "limit_price": "25000",
                                        "stop_price": "24000",
                                        "stop_direction": "STOP_DIRECTION_STOP_DOWN"}}),
    ],
)  # fmt: skip
def test_order_configuration_follows_type_and_tif(changes: dict[str, Any], expected: Any) -> None:
    assert config(**changes) == expected


@pytest.mark.parametrize(
    ("order", "method", "url", "body"),
    [
        (OrderSpec(Operation.CANCEL_ORDER, venue_order_id="0000-1111"), "POST",
         "/api/v3/brokerage/orders/batch_cancel", b'{"order_ids":["0000-1111"]}'),
        (OrderSpec(Operation.AMEND_ORDER, venue_order_id="0000-1111", price=Decimal("1.50"),
                   quantity=Decimal("2")), "POST", "/api/v3/brokerage/orders/edit",
         b'{"order_id":"0000-1111","price":"1.5","size":"2"}'),
        (OrderSpec(Operation.QUERY_ORDER, venue_order_id="0000-1111"), "GET",
         "/api/v3/brokerage/orders/historical/0000-1111", b""),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS), "GET",
         "/api/v3/brokerage/orders/historical/batch?order_status=OPEN", b""),
        (OrderSpec(Operation.QUERY_OPEN_ORDERS, symbol="ETH-USD"), "GET",
         "/api/v3/brokerage/orders/historical/batch?order_status=OPEN&product_ids=ETH-USD", b""),
        (OrderSpec(Operation.QUERY_ACCOUNT), "GET", "/api/v3/brokerage/accounts", b""),
    ],
)  # fmt: skip
def test_operations_and_uri_claim_without_query(
    order: OrderSpec, method: str, url: str, body: bytes
) -> None:
    request = ADAPTER.build(order, EC_CRED, CTX)
    assert (request.method, request.url, request.body) == (
        method,
        "https://api.coinbase.com" + url,
        body,
    )
    _, claims = decode(request, EC_KEY.public_key(), "ES256")
    assert claims["uri"] == f"{method} api.coinbase.com{url.split('?', maxsplit=1)[0]}"
    assert "?" not in claims["uri"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_order_id": None}, "order.client_order_id"),
        ({"order_type": OrderType.STOP_LOSS, "price": None, "stop_price": Decimal(1)},
         "order.order_type"),
        ({"time_in_force": TimeInForce.DAY}, "order.time_in_force"),
        ({"time_in_force": TimeInForce.GTD}, "order.extras"),
        ({"extras": {"end_time": END}}, "order.extras"),
        ({"extras": {"end_time": "tomorrow"}, "time_in_force": TimeInForce.GTD}, "order.extras"),
        ({"time_in_force": TimeInForce.IOC, "extras": {"post_only": "true"}}, "order.extras"),
        ({"extras": {"quote_size": "1000"}}, "order.extras"),
        ({"order_type": OrderType.STOP_LIMIT, "stop_price": Decimal(1),
          "time_in_force": TimeInForce.FOK}, "order.time_in_force"),
        ({"symbol": None}, "order.symbol"),
    ],
)  # fmt: skip
def test_malformed_orders_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ADAPTER.build(OrderSpec(**{**ORDER.__dict__, **changes}), EC_CRED, CTX)
    assert info.value.field == field


@pytest.mark.parametrize(
    "order",
    [
        OrderSpec(Operation.QUERY_ORDER, venue_order_id="../../v2/accounts"),
        OrderSpec(Operation.QUERY_ORDER, venue_order_id="a/b"),
        OrderSpec(Operation.QUERY_ORDER, venue_order_id="%2e%2e"),
        OrderSpec(Operation.QUERY_ORDER, client_order_id="cl-1"),
        OrderSpec(Operation.CANCEL_ORDER),
        OrderSpec(Operation.AMEND_ORDER, venue_order_id="abc"),
    ],
)
def test_order_ids_cannot_escape_the_path(order: OrderSpec) -> None:
    with pytest.raises(InvalidArgument):
        ADAPTER.build(order, EC_CRED, CTX)


# --- endpoint policy --------------------------------------------------------------------------
P = "/api/v3/brokerage"
BLOCKED = [
    ("POST", "/v2/accounts/abc/transactions"), ("POST", "/v2/accounts/abc/withdrawals"),
    ("POST", "/v2/accounts/abc/withdrawals/xyz/commit"), ("POST", "/v2/accounts/abc/deposits"),
    ("POST", P + "/portfolios/move_funds"), ("POST", P + "/portfolios"),
    ("PUT", P + "/portfolios/abc"), ("DELETE", P + "/portfolios/abc"),
    ("POST", P + "/intx/allocate"), ("POST", P + "/cfm/sweeps/schedule"),
    ("DELETE", P + "/cfm/sweeps"), ("POST", P + "/convert/quote"),
    ("POST", P + "/convert/trade/abc"), ("GET", P + "/payment_methods"),
]  # fmt: skip
SMUGGLED = [
    ("POST", P + "/orders/../portfolios/move_funds"), ("POST", P + "/ORDERS"),
    ("POST", P + "/orders/"), ("POST", P + "/%6Frders"), ("POST", P + "//orders"),
    ("GET", P + "/orders/historical/..%2F..%2Fportfolios"), ("GET", P + "/orders/historical/.."),
    ("GET", P + "/orders/historical/a/b"), ("DELETE", P + "/orders"), ("GET", P + "/orders"),
    ("POST", "/api/v3/brokerage/orders;/v2/accounts"), ("POST", "api/v3/brokerage/orders"),
]  # fmt: skip
ALLOWED = [
    ("POST", P + "/orders"), ("POST", P + "/orders/batch_cancel"), ("POST", P + "/orders/edit"),
    ("POST", P + "/orders/preview"), ("GET", P + "/orders/historical/batch?order_status=OPEN"),
    ("GET", P + "/orders/historical/0000-1111"), ("GET", P + "/accounts"),
    ("GET", P + "/key_permissions"), ("get", P + "/orders/historical/fills"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), BLOCKED + SMUGGLED)
def test_blocked_and_smuggled_endpoints_are_refused(method: str, path: str) -> None:
    for adapter in (ADAPTER, STRICT_ADAPTER):
        with pytest.raises(EndpointNotAllowed):
            adapter.check_endpoint(method, path)


@pytest.mark.parametrize(("method", "path"), ALLOWED)
def test_trading_endpoints_pass(method: str, path: str) -> None:
    ADAPTER.check_endpoint(method, path)


# --- scopes and permissions -------------------------------------------------------------------
@pytest.mark.parametrize("token", ["transfer", "Transfer", "can_transfer", "TRANSFER ", "trаnsfer",
                                   "withdraw", "send", "wallet:transactions:send"])  # fmt: skip
def test_fund_moving_scopes_are_rejected(token: str) -> None:
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["view", "trade", token], ADAPTER.scope_vocabulary)


def test_trading_scopes_normalise() -> None:
    assert normalize_scopes(["View", "trade"], ADAPTER.scope_vocabulary) == {
        Scope.READ,
        Scope.TRADE,
    }
    with pytest.raises(UnknownScope):
        normalize_scopes(["admin"], ADAPTER.scope_vocabulary)


def permissions(**changes: Any) -> bytes:
    body = {"can_view": True, "can_trade": True, "can_transfer": False,
            "portfolio_uuid": "8d3f0c4e-...-stub", "portfolio_type": "DEFAULT"} | changes  # fmt: skip
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "scopes"),
    [
        ({}, {Scope.READ, Scope.TRADE}),
        ({"can_transfer": True}, {Scope.READ, Scope.TRADE, Scope.TRANSFER}),
        ({"can_trade": False}, {Scope.READ}),
        ({"can_view": False, "can_trade": False}, set()),
    ],
)
def test_key_permissions_map_to_scopes(changes: dict[str, Any], scopes: set[Scope]) -> None:
    report = ADAPTER.parse_permissions(200, permissions(**changes))
    assert report.scopes == scopes
    assert report.raw["can_transfer"] == str(changes.get("can_transfer", False)).lower()
    assert report.raw["portfolio_type"] == "DEFAULT"


@pytest.mark.parametrize(
    ("status", "body"),
    [(401, b'{"error":"UNAUTHENTICATED"}'), (200, permissions(can_transfer="false")),
     (200, b'{"can_view":true,"can_trade":true}'), (200, b"Unauthorized"), (500, permissions())],
)  # fmt: skip
def test_failed_permission_answers_are_errors(status: int, body: bytes) -> None:
    with pytest.raises(VenueUnavailable):
        ADAPTER.parse_permissions(status, body)


def test_permission_request_is_a_jwt_get() -> None:
    request = STRICT_ADAPTER.permission_request(ED_CRED, CTX)
    assert request is not None
    assert (request.method, request.url) == (
        "GET",
        "https://api.coinbase.com" + P + "/key_permissions",
    )
    _, claims = decode(request, ED_PUBLIC, "EdDSA")
    assert claims["uri"] == "GET api.coinbase.com/api/v3/brokerage/key_permissions"


def test_mint_strips_any_query_from_the_uri_claim() -> None:
    token = cj.mint(TEST_API_KEY, "ES256", EC_KEY, method="get", nbf=1, nonce=NONCE,
                    path=P + "/orders/historical/batch?order_status=OPEN")  # fmt: skip
    claims = jwt.decode(token, EC_KEY.public_key(), algorithms=["ES256"],
                        options={"verify_exp": False, "verify_nbf": False})  # fmt: skip
    assert claims["uri"] == "GET api.coinbase.com/api/v3/brokerage/orders/historical/batch"
