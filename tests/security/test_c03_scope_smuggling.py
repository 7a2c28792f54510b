"""Property: every spelling of a withdraw/transfer scope is refused, and nothing is written."""

from __future__ import annotations

import secrets

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from tests.support.custody import creds, make_workspace
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit
from vault_server.brokers.base import Venue, normalize_scopes
from vault_server.brokers.registry import adapter_for, supported_venues
from vault_server.core.errors import UnknownScope, WithdrawalScopeRejected

FORBIDDEN_WORDS = [
    "withdraw", "withdrawal", "withdrawals", "enableWithdrawals", "Withdraw Funds",
    "withdraw-funds", "transfer", "enableInternalTransfer", "permitsUniversalTransfer",
    "Wallet", "AccountTransfer", "SubMemberTransfer", "can_transfer", "Deposit Funds",
    "universal_transfer", "funding transfer",
]  # fmt: skip
# Letters an attacker can swap for look-alikes (Cyrillic / Greek) or full-width forms.
LOOKALIKES = {
    "a": "а",
    "e": "е",
    "o": "о",
    "p": "р",
    "c": "с",
    "x": "х",
    "i": "і",
    "s": "ѕ",
    "w": "ԝ",
}
SEPARATORS = [" ", "_", "-", ".", "\t", "\u200b", "\u200d", "\ufeff", "  "]


@st.composite
def disguised(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(FORBIDDEN_WORDS))
    out = []
    for ch in word:
        style = draw(st.integers(0, 5))
        if style == 0:
            ch = ch.swapcase()
        elif style == 1 and ch.lower() in LOOKALIKES:
            ch = LOOKALIKES[ch.lower()]
        elif style == 2 and ch.isascii() and ch.isalpha():
            ch = (
                chr(ord(ch) - ord("A") + 0xFF21)
                if ch.isupper()
                else chr(ord(ch) - ord("a") + 0xFF41)
            )
        out.append(ch)
        if draw(st.integers(0, 6)) == 0:
            out.append(draw(st.sampled_from(SEPARATORS)))
    pad = draw(st.sampled_from(["", " ", "\t", "\u00a0"]))
    return pad + "".join(out) + pad


VENUES = list(supported_venues())  # planned venues are refused before any vocabulary


@settings(max_examples=600, deadline=None)
@given(scope=disguised(), venue=st.sampled_from(VENUES))
def test_every_disguise_is_rejected_by_every_venue_vocabulary(scope: str, venue: Venue) -> None:
    vocabulary = adapter_for(venue).scope_vocabulary
    try:
        normalize_scopes(["read", scope], vocabulary)
    except WithdrawalScopeRejected:
        return
    except UnknownScope as exc:  # pragma: no cover - must never be the answer for these words
        raise AssertionError(f"{scope!r} on {venue} was 'unknown', not rejected") from exc
    raise AssertionError(f"{scope!r} was accepted by {venue}")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scope=disguised())
def test_rejected_over_the_api_and_nothing_is_written(vault: RunningVault, scope: str) -> None:
    if not any(e.action == "workspace.create" for e in iter_audit(vault.app)):
        make_workspace(vault, "ws-a")
    before = list(iter_audit(vault.app))
    request = cpb.CreateCredentialRequest(
        parent="workspaces/ws-a", credential_id=f"c-{secrets.token_hex(4)}",
        broker=trading_pb2.BROKER_BINANCE_SPOT, environment=trading_pb2.ENVIRONMENT_LIVE,
        key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
        material=credential_pb2.SecretMaterial(api_key="k" * 20, secret=secrets.token_hex(16)),
        scopes=["enableReading", scope], reason="smuggling attempt",
    )  # fmt: skip
    err = expect_error(
        creds(vault).CreateCredential, request, metadata=vault.md("onboarding"), timeout=10
    )
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "WITHDRAWAL_SCOPE_REJECTED")
    listed = creds(vault).ListCredentials(
        cpb.ListCredentialsRequest(parent="workspaces/ws-a", show_revoked=True),
        metadata=vault.md("auditor"), timeout=10,
    )  # fmt: skip
    assert list(listed.credentials) == []
    after = list(iter_audit(vault.app))
    # No credential was created: the one create event is the audited refusal (issue 12).
    assert [(e.action, e.outcome, e.error_reason) for e in after[len(before) :]] == [
        ("credential.create", "denied", "WITHDRAWAL_SCOPE_REJECTED"),
        ("credential.list", "success", ""),
    ]
