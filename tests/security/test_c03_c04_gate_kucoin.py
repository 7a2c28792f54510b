"""Gate.io v4 and KuCoin, attacked: fund-moving scopes, fund-moving endpoints, a canary secret.

* Every withdraw/transfer token of the venue's own vocabulary (as the venue spells it, and
  disguised) is refused at onboarding over the API: INVALID_ARGUMENT
  ``WITHDRAWAL_SCOPE_REJECTED``, nothing stored.
* The venue's withdrawal, transfer and sub-account endpoints are refused at signing, whatever
  the key may do, in encoded and traversal forms too.
* A canary secret (and passphrase) drives every operation and every refusal at DEBUG logging:
  no request repr, error, or log line holds it in any encoding (the KuCoin passphrase header is
  an HMAC of it, never the passphrase).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from decimal import Decimal
from types import ModuleType

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from tests.support.canary import find, new_canary
from tests.support.custody import creds, make_workspace
from tests.support.errors import expect_error
from tests.support.vault import RunningVault
from vault_server.brokers.base import (
    FORBIDDEN_SCOPES,
    Environment,
    Operation,
    OrderSpec,
    OrderType,
    Side,
    SigningContext,
    VenueCredential,
)
from vault_server.brokers.spec import Call
from vault_server.brokers.venues import gate, kucoin
from vault_server.core.errors import EndpointNotAllowed, VaultError
from vault_server.core.secret import Secret
from vault_server.observability.logging import configure_logging

# venue module, API broker, key algorithm, symbol, fund-moving (method, path) at the venue
VENUES: list[tuple[ModuleType, int, int, str, list[tuple[str, str]]]] = [
    (gate, trading_pb2.BROKER_GATE, trading_pb2.KEY_ALGORITHM_HMAC_SHA512, "BTC_USDT", [
        ("POST", "/api/v4/withdrawals"), ("DELETE", "/api/v4/withdrawals/123"),
        ("POST", "/api/v4/wallet/transfers"), ("POST", "/api/v4/wallet/sub_account_transfers"),
        ("POST", "/api/v4/wallet/sub_account_to_sub_account"),
        ("POST", "/api/v4/sub_accounts/1/keys"), ("POST", "/api/v4/withdrawals/push"),
        ("POST", "/api/v4/spot/orders/../../withdrawals"), ("POST", "/api/v4/spot/%2E%2E/wallet"),
        ("POST", "/api/v4/WITHDRAWALS"), ("POST", "/api/v4/earn/uni/lends"),
        ("POST", "/api/v4/loan/collateral/orders"),
    ]),
    (kucoin, trading_pb2.BROKER_KUCOIN, trading_pb2.KEY_ALGORITHM_HMAC_SHA256, "BTC-USDT", [
        ("POST", "/api/v1/withdrawals"), ("POST", "/api/v3/withdrawals"),
        ("DELETE", "/api/v1/withdrawals/1"), ("POST", "/api/v2/accounts/inner-transfer"),
        ("POST", "/api/v3/accounts/universal-transfer"), ("POST", "/api/v2/accounts/sub-transfer"),
        ("POST", "/api/v1/accounts/sub-transfer"), ("POST", "/api/v1/sub/api-key"),
        ("POST", "/api/v1/sub/api-key/update"), ("POST", "/api/v1/user/api-key"),
        ("POST", "/api/v1/hf/orders/../../withdrawals"), ("POST", "/api/v1/%77ithdrawals"),
        ("POST", "/api/v1/transfer-out"), ("POST", "/api/v3/margin/borrow"),
    ]),
]  # fmt: skip
IDS = [module.__name__.rsplit(".", 1)[1] for module, *_ in VENUES]


def fund_moving_tokens(module: ModuleType) -> list[str]:
    """The vocabulary's own withdraw/transfer tokens, plus disguised spellings of them."""
    tokens = [t for t, scopes in module.SCOPE_VOCABULARY.items() if scopes & FORBIDDEN_SCOPES]
    assert tokens, "the vocabulary must list its fund-moving tokens"
    return [
        *tokens,
        *(t.upper() for t in tokens),
        *(f" {t[0].upper()}\u200b{t[1:]}" for t in tokens),
    ]


@pytest.mark.parametrize(("module", "broker", "algorithm", "symbol", "paths"), VENUES, ids=IDS)
def test_fund_moving_scopes_are_refused_at_onboarding(
    vault: RunningVault, module: ModuleType, broker: int, algorithm: int, symbol: str,
    paths: object,
) -> None:  # fmt: skip
    make_workspace(vault, "ws-a")
    for index, token in enumerate(fund_moving_tokens(module)):
        request = cpb.CreateCredentialRequest(
            parent="workspaces/ws-a", credential_id=f"c-{index}", broker=broker,
            environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=algorithm,
            material=credential_pb2.SecretMaterial(
                api_key="k" * 20, secret=secrets.token_hex(32), passphrase=secrets.token_hex(8)),
            scopes=["read", token], reason="smuggling attempt",
        )  # fmt: skip
        err = expect_error(
            creds(vault).CreateCredential, request, metadata=vault.md("onboarding"), timeout=10
        )
        assert (err.code, err.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT, "WITHDRAWAL_SCOPE_REJECTED",
        ), token  # fmt: skip
    listed = creds(vault).ListCredentials(
        cpb.ListCredentialsRequest(parent="workspaces/ws-a", show_revoked=True),
        metadata=vault.md("auditor"), timeout=10,
    )  # fmt: skip
    assert list(listed.credentials) == []


def _credential(module: ModuleType, secret: str, phrase: str) -> VenueCredential:
    algorithm = next(iter(module.SPEC.algorithms))
    return VenueCredential(module.SPEC.venue, Environment.LIVE, algorithm, "canary-key",
                           secret=Secret(secret), passphrase=Secret(phrase))  # fmt: skip


@pytest.mark.parametrize(("module", "broker", "algorithm", "symbol", "paths"), VENUES, ids=IDS)
def test_fund_moving_endpoints_are_refused_at_signing(
    module: ModuleType, broker: int, algorithm: int, symbol: str, paths: list[tuple[str, str]]
) -> None:
    cred = _credential(module, secrets.token_hex(32), secrets.token_hex(8))
    for method, path in paths:
        with pytest.raises(EndpointNotAllowed):
            module.ADAPTER._sign(Call(method, path, json={}), cred, SigningContext(now_ms=10**12))


@pytest.mark.parametrize(("module", "broker", "algorithm", "symbol", "paths"), VENUES, ids=IDS)
def test_canary_never_leaves(
    capfd: pytest.CaptureFixture[str], module: ModuleType, broker: int, algorithm: int,
    symbol: str, paths: list[tuple[str, str]],
) -> None:  # fmt: skip
    configure_logging("DEBUG", "json")
    canary, phrase = new_canary(), new_canary()
    cred = _credential(module, canary, phrase)
    ctx = SigningContext(now_ms=1_700_000_000_000, base_url="http://127.0.0.1:9")
    place = OrderSpec(Operation.PLACE_ORDER, symbol=symbol, side=Side.SELL,
                      order_type=OrderType.LIMIT, quantity=Decimal("1"), price=Decimal("2"),
                      client_order_id="c1")  # fmt: skip
    orders = [
        place, replace(place, order_type=OrderType.MARKET, price=None),
        OrderSpec(Operation.CANCEL_ORDER, symbol=symbol, venue_order_id="123"),
        OrderSpec(Operation.QUERY_ORDER, symbol=symbol, client_order_id="c1"),
        OrderSpec(Operation.QUERY_OPEN_ORDERS), OrderSpec(Operation.QUERY_ACCOUNT),
        replace(place, extras={"withdrawAddress": "x"}), replace(place, symbol="bad symbol"),
        replace(place, side=Side.BUY, order_type=OrderType.MARKET, price=None),
    ]  # fmt: skip
    seen: list[str] = []
    for order in orders:
        for variant in (cred, replace(cred, environment=Environment.PAPER)):
            try:
                built = module.ADAPTER.build(order, variant, ctx)
                seen.append(repr(built))
                seen.append(repr(built.headers))  # what a careless log line would print
            except VaultError as exc:
                seen.append(f"{exc!r} {exc} {getattr(exc, 'metadata', '')}")
    for method, path in paths:
        try:
            module.ADAPTER._sign(Call(method, path), cred, ctx)
        except VaultError as exc:
            seen.append(f"{exc!r} {exc} {exc.metadata}")
    request = module.ADAPTER.permission_request(cred, ctx)
    seen.append(repr(request))
    if request is not None:
        seen.append(repr(request.headers))
        headers = dict(request.headers)
        assert phrase not in headers.values()  # KuCoin v2: an HMAC of it, never the phrase
    out, err = capfd.readouterr()
    blob = ("\n".join(seen) + out + err).encode()
    assert len(seen) > 10
    for label, value in (("secret", canary), ("passphrase", phrase)):
        assert find(value, blob) == [], f"the {label} leaked"
        assert base64.b64encode(value.encode()) not in blob


@pytest.mark.parametrize(("module", "broker", "algorithm", "symbol", "paths"), VENUES, ids=IDS)
def test_trade_keys_onboard_and_kucoin_needs_its_passphrase(
    vault: RunningVault, module: ModuleType, broker: int, algorithm: int, symbol: str,
    paths: object,
) -> None:  # fmt: skip
    make_workspace(vault, "ws-a")
    scopes = ["read", "spot"] if module is gate else ["General", "Spot"]
    for cred_id, phrase in (("c-no-phrase", ""), ("c-ok", secrets.token_hex(8))):
        request = cpb.CreateCredentialRequest(
            parent="workspaces/ws-a", credential_id=cred_id, broker=broker,
            environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=algorithm,
            material=credential_pb2.SecretMaterial(
                api_key="k" * 20, secret=secrets.token_hex(32), passphrase=phrase),
            scopes=scopes, reason="onboarding",
        )  # fmt: skip
        if module is kucoin and not phrase:
            err = expect_error(
                creds(vault).CreateCredential, request, metadata=vault.md("onboarding"),
                timeout=10,
            )  # fmt: skip
            assert err.code == grpc.StatusCode.INVALID_ARGUMENT
            continue
        if not phrase:
            continue
        made = creds(vault).CreateCredential(request, metadata=vault.md("onboarding"), timeout=10)
        assert not made.credential.single_permission_tier
