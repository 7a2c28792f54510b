"""IG adapter: custody only. Nothing is built or allowed; the vocabulary still normalises."""

from __future__ import annotations

from decimal import Decimal

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
    VenueAdapter,
    VenueCredential,
    normalize_scopes,
)
from vault_server.brokers.venues.ig import ADAPTER
from vault_server.core.errors import (
    EndpointNotAllowed,
    OperationNotSupported,
    UnknownScope,
    WithdrawalScopeRejected,
)
from vault_server.core.secret import Secret

PASSWORD = "ig-account-password-123"
CRED = VenueCredential(
    Venue.IG, Environment.PAPER, KeyAlgorithm.SESSION_LOGIN, "ig-api-key", secret=Secret(PASSWORD)
)


def test_adapter_satisfies_the_protocol() -> None:
    adapter: VenueAdapter = ADAPTER
    assert adapter.proxy_only and adapter.single_permission_tier and not adapter.needs_nonce
    assert adapter.algorithms == {KeyAlgorithm.SESSION_LOGIN} and not adapter.generatable
    assert adapter.default_base_url(Environment.LIVE) == "https://api.ig.com/gateway/deal"
    assert adapter.default_base_url(Environment.PAPER) == "https://demo-api.ig.com/gateway/deal"


@pytest.mark.parametrize("operation", list(Operation))
def test_build_is_not_supported_and_does_not_echo_the_password(operation: Operation) -> None:
    order = OrderSpec(operation, symbol="CS.D.EURUSD.CFD.IP", side=Side.BUY,
                      order_type=OrderType.MARKET, quantity=Decimal(1))  # fmt: skip
    with pytest.raises(OperationNotSupported) as info:
        ADAPTER.build(order, CRED, SigningContext(now_ms=1))
    assert info.value.reason == "OPERATION_NOT_SUPPORTED"
    assert "session login" in info.value.message and PASSWORD not in str(info.value.__dict__)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/positions/otc"), ("POST", "/workingorders/otc"), ("GET", "/confirms/abc"),
     ("POST", "/session"), ("GET", "/accounts"), ("DELETE", "/positions/otc")],
)  # fmt: skip
def test_every_endpoint_is_refused(method: str, path: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        ADAPTER.check_endpoint(method, path)


def test_no_permission_api() -> None:
    assert ADAPTER.permission_request(CRED, SigningContext(now_ms=1)) is None
    with pytest.raises(OperationNotSupported):
        ADAPTER.parse_permissions(200, b"{}")


def test_single_tier_vocabulary() -> None:
    vocab = ADAPTER.scope_vocabulary
    assert normalize_scopes(["trade"], vocab) == {Scope.READ, Scope.TRADE}
    assert normalize_scopes(["Trading", "full"], vocab) == {Scope.READ, Scope.TRADE}
    assert normalize_scopes(["read"], vocab) == {Scope.READ}
    for token in ("withdraw", "transfer", "payout", "deposit"):
        with pytest.raises(WithdrawalScopeRejected):
            normalize_scopes(["trade", token], vocab)
    with pytest.raises(UnknownScope):
        normalize_scopes(["dealing-plus"], vocab)
