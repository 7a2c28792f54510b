"""One generic adapter serves every venue spec: a new HMAC venue is a spec plus its mapping.

The venue below (``Example``) is made up: a KuCoin/Bitget-like prehash scheme, two endpoints
and a two-line order mapping. It shows what a venue module declares, and pins the order in which
the adapter applies the spec: credential check, mapping, endpoint check, base URL, scheme.
"""

from __future__ import annotations

import pytest

from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    PermissionReport,
    Scope,
    SigningContext,
    Venue,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.schemes import keys
from vault_server.brokers.schemes import prehash_headers as ph
from vault_server.brokers.spec import Call, Permissions, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import (
    EndpointNotAllowed,
    InternalError,
    OperationNotSupported,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret


def mapping(order: OrderSpec, credential: VenueCredential) -> Call:
    if order.operation is Operation.QUERY_ACCOUNT:
        return Call("GET", "/api/v1/accounts", (("type", "trade"),))
    if order.operation is Operation.CANCEL_ORDER:  # not on the allow-list: must be refused
        return Call("DELETE", "/api/v1/withdrawals")
    raise OperationNotSupported("operation not supported")


def parse(status: int, body: bytes, vocab: object) -> PermissionReport:
    return PermissionReport(scopes=frozenset({Scope.READ}), raw={"status": str(status)})


SPEC = VenueSpec(
    venue=Venue.OKX,  # any enum member: the spec, not the name, makes the venue
    label="Example",
    urls={Environment.LIVE: "https://api.example.test"},
    endpoints=Endpoints(
        allowed=frozenset({("GET", "/api/v1/accounts"), ("GET", "/api/v1/user/api-key")}),
        blocked_words=("withdraw", "transfer"),
    ),
    scope_vocabulary=vocabulary(read=("General",), trade=("Spot",), transfer=("InnerTransfer",)),
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256}),
    scheme=ph.PrehashHeaders(
        timestamp=ph.epoch_ms, prehash=ph.PATH_PREHASH, encoding="base64",
        headers=(("EX-KEY", "key"), ("EX-SIGN", "sign"), ("EX-TS", "timestamp")),
    ),
    mapping=mapping,
    permissions=Permissions(Call("GET", "/api/v1/user/api-key"), parse),
)  # fmt: skip
ADAPTER = SpecAdapter(SPEC)
SECRET = Secret(b"golden-test-secret-example")
CRED = VenueCredential(
    venue=Venue.OKX, environment=Environment.LIVE, algorithm=KeyAlgorithm.HMAC_SHA256,
    api_key="example-key", secret=SECRET,
)  # fmt: skip
CTX = SigningContext(now_ms=1_700_000_000_000)


def test_a_spec_and_a_mapping_make_a_signing_venue() -> None:
    request = ADAPTER.build(OrderSpec(Operation.QUERY_ACCOUNT), CRED, CTX)
    assert request.url == "https://api.example.test/api/v1/accounts?type=trade"
    signed = ph.PATH_PREHASH(ph.Prehash("1700000000000", "GET", "/api/v1/accounts", "type=trade",
                                        b"", "", 0))  # fmt: skip
    assert dict(request.headers)["EX-SIGN"] == keys.hmac_sha256_base64(SECRET, signed)
    assert request.expire_at_ms == 1_700_000_005_000


def test_the_endpoint_rules_apply_to_what_the_mapping_builds() -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.build(OrderSpec(Operation.CANCEL_ORDER), CRED, CTX)


def test_credential_is_checked_before_the_mapping() -> None:
    wrong = VenueCredential(**{**CRED.__dict__, "venue": Venue.BYBIT})
    with pytest.raises(InternalError):
        ADAPTER.build(OrderSpec(Operation.PLACE_ORDER), wrong, CTX)


def test_missing_environment_is_refused_in_the_venues_words() -> None:
    with pytest.raises(OperationNotSupported, match="Example has no paper environment"):
        ADAPTER.default_base_url(Environment.PAPER)


def test_vocabulary_refuses_fund_moving_tokens_by_name() -> None:
    assert normalize_scopes(["general", "SPOT"], ADAPTER.scope_vocabulary) == {
        Scope.READ, Scope.TRADE,
    }  # fmt: skip
    with pytest.raises(WithdrawalScopeRejected):
        normalize_scopes(["InnerTransfer"], ADAPTER.scope_vocabulary)


def test_permissions_and_variants() -> None:
    request = ADAPTER.permission_request(CRED, CTX)
    assert request is not None and request.url.endswith("/api/v1/user/api-key")
    assert ADAPTER.parse_permissions(200, b"{}").scopes == {Scope.READ}
    assert ADAPTER.permission_base_url(Environment.LIVE) == "https://api.example.test"
    bare = ADAPTER.variant(permissions=None, proxy_only=True, options={"mode": "x"})
    assert bare.permission_request(CRED, CTX) is None and bare.proxy_only
    assert repr(bare) == "SpecAdapter(okx, mode='x')"
    with pytest.raises(OperationNotSupported, match="Example has no permission query"):
        bare.parse_permissions(200, b"{}")


def test_a_side_on_a_position_operation_is_refused_where_the_venue_would_ignore_it() -> None:
    """Venues that act on a position by its id alone refuse a side (it would do nothing); the
    ones that deal the close against it (IG, Match-Trader, DXtrade) take it."""
    from decimal import Decimal

    from tests.unit.brokers import golden_venues as gv
    from vault_server.brokers.base import Environment, Operation, OrderSpec, Side
    from vault_server.brokers.registry import adapter_for, supported_venues
    from vault_server.core.errors import InvalidArgument

    checked = []
    for venue in supported_venues():
        adapter = adapter_for(venue)
        spec = adapter.spec  # type: ignore[attr-defined]
        if not spec.protective_orders:
            continue
        [algorithm] = sorted(adapter.algorithms, key=lambda a: a.value)[:1]
        cred = gv.credential(venue, algorithm, Environment.PAPER)
        close = OrderSpec(Operation.CLOSE_POSITION, symbol=gv.SYMBOL.get(venue, "EURUSD"),
                          position_id="12345", side=Side.BUY, quantity=Decimal("1"),
                          client_order_id="c1")  # fmt: skip
        if spec.position_side:
            continue
        try:
            adapter.build(close, cred, gv.CTX)
        except InvalidArgument as err:
            assert err.metadata["field"] == "order.side", venue
        else:
            raise AssertionError(f"{venue.value} took a side it ignores")
        checked.append(venue.value)
    assert {"oanda", "metaapi", "ctrader", "tradelocker"} <= set(checked)
