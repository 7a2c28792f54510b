"""OAuth consent (cTrader) through a real vault and the loopback cTrader stub.

- The platform application (client id and secret) is held by the vault: set and listed by the
  security team only, audited, the secret never returned, refused for a venue without OAuth.
- Onboarding sends the vault the consent's code; the vault exchanges it itself. Without the
  platform application, or with a code already used, the credential is refused and nothing is
  stored.
- The refresh token rotates (the old one is refused by the venue); a consent the user withdrew
  moves the credential to NEEDS_REAUTHORIZATION with one page, later orders are refused without
  calling the venue, and a new consent (RotateCredential, promote) brings it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2

from tests.integration.sessions.flows import create_request, onboard, set_application
from tests.support import signing_flow as sf
from tests.support.canary import find
from tests.support.errors import expect_error
from tests.support.forex_flow import Account
from tests.support.vault import RunningVault
from tests.venue_stubs.ctrader_stub import FLOW, REDIRECT_URI, CtraderStub

B = trading_pb2
S = credential_pb2.SessionStatus
QUERY = B.Order(operation=B.ORDER_OPERATION_QUERY_POSITIONS)
FP = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def account() -> Account:
    return Account()


@pytest.fixture
def wired(account: Account, tmp_path: Path) -> Iterator[tuple[CtraderStub, RunningVault]]:
    with FLOW.stub(account) as stub, sf.vault_beside(stub, tmp_path / "home", "ctrader") as vault:
        yield stub, vault


def test_the_platform_application_is_held_sealed_and_audited(
    wired: tuple[CtraderStub, RunningVault], account: Account
) -> None:
    _stub, vault = wired
    creds = sf.credentials(vault)
    set_application(vault, FLOW, account)
    listed = creds.ListPlatformApplications(
        sf.cpb.ListPlatformApplicationsRequest(), metadata=vault.md("security"), timeout=10
    ).platform_applications
    [app] = listed
    assert app.name == "platformApplications/ctrader-paper" and app.version == 1
    assert app.client_id_hint and app.client_id_hint != account.api_key
    again = creds.SetPlatformApplication(
        sf.cpb.SetPlatformApplicationRequest(
            broker=B.BROKER_CTRADER, environment=B.ENVIRONMENT_PAPER, client_id=account.api_key,
            client_secret=account.password, reason="rotate the app secret",
        ),
        metadata=vault.md("security"), timeout=10,
    ).platform_application  # fmt: skip
    assert again.version == 2
    # Only the security team: onboarding may not set it; a venue without OAuth refuses it.
    err = expect_error(
        creds.SetPlatformApplication,
        sf.cpb.SetPlatformApplicationRequest(
            broker=B.BROKER_CTRADER, environment=B.ENVIRONMENT_PAPER, client_id="x",
            client_secret="y", reason="not mine",
        ),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    assert err.code == grpc.StatusCode.PERMISSION_DENIED
    err = expect_error(
        creds.SetPlatformApplication,
        sf.cpb.SetPlatformApplicationRequest(
            broker=B.BROKER_IG, environment=B.ENVIRONMENT_PAPER, client_id="x",
            client_secret="y", reason="no oauth",
        ),
        metadata=vault.md("security"), timeout=10,
    )  # fmt: skip
    assert (err.code, err.metadata.get("field")) == (grpc.StatusCode.INVALID_ARGUMENT, "broker")
    rows = [r for r in sf.audit_rows(vault) if r.action == "platform_application.set"]
    assert [r.details["version"] for r in rows] == ["1", "2"]
    blob = b"".join(m.SerializeToString() for m in (*listed, again))
    blob += "\n".join(r.raw for r in sf.audit_rows(vault)).encode()
    assert find(account.password, blob) == []


def test_onboarding_without_an_application_or_with_a_spent_code_stores_nothing(
    wired: tuple[CtraderStub, RunningVault], account: Account
) -> None:
    stub, vault = wired
    creds = sf.credentials(vault)
    err = expect_error(
        creds.CreateCredential, create_request(FLOW, account, "ct1"),
        metadata=vault.md("onboarding"), timeout=15,
    )  # fmt: skip
    assert (err.code, err.reason) == (FP, "PLATFORM_APPLICATION_MISSING")
    set_application(vault, FLOW, account)
    request = create_request(FLOW, account, "ct1")
    creds.CreateCredential(request, metadata=vault.md("onboarding"), timeout=15)
    request.credential_id = "ct2"  # the same code again: single use
    err = expect_error(creds.CreateCredential, request, metadata=vault.md("onboarding"), timeout=15)
    assert (err.code, err.reason) == (FP, "REAUTHORIZATION_REQUIRED")
    for missing in ("ct2",):
        gone = expect_error(
            creds.GetCredential, sf.cpb.GetCredentialRequest(
                name=f"workspaces/{sf.WS}/credentials/{missing}"),
            metadata=vault.md("security"), timeout=10,
        )  # fmt: skip
        assert gone.code == grpc.StatusCode.NOT_FOUND
    assert stub.logins == 1 and stub.failed_logins == 1


@pytest.mark.timeout(120)
def test_rotation_of_the_refresh_token_and_a_withdrawn_consent(
    wired: tuple[CtraderStub, RunningVault], account: Account
) -> None:
    stub, vault = wired
    made = onboard(vault, FLOW, account, "ct1")
    assert made.session.state == S.STATE_ACTIVE and made.session.generation == 1
    rc = sf.begin(vault, made.name).name
    assert sf.execute(vault, rc, QUERY).http_status == 200
    spent = list(stub.issued_tokens)
    stub.expire_sessions()
    assert sf.execute(vault, rc, QUERY).http_status == 200  # refreshed, then resent
    assert (stub.logins, stub.refreshes) == (1, 1)
    assert sf.get_credential(vault, made.name).session.generation == 2
    # The refresh token the vault spent is refused by the venue now (single use).
    assert all(t not in stub._refresh for t in spent)

    stub.revoke_consent()
    err = expect_error(
        sf.signing(vault).ExecuteOrder, sf.execute_request(rc, QUERY),
        metadata=vault.md("router"), timeout=15,
    )  # fmt: skip
    assert (err.code, err.reason) == (FP, "REAUTHORIZATION_REQUIRED")
    shown = sf.get_credential(vault, made.name).session
    assert shown.state == S.STATE_NEEDS_REAUTHORIZATION
    sent = len(stub.requests)
    for _ in range(3):  # refused without calling the venue, paged once
        again = expect_error(
            sf.signing(vault).ExecuteOrder, sf.execute_request(rc, QUERY),
            metadata=vault.md("router"), timeout=15,
        )  # fmt: skip
        assert again.reason == "REAUTHORIZATION_REQUIRED"
    assert len(stub.requests) == sent
    pages = [p for p in sf.pages(vault) if "NEEDS_REAUTHORIZATION" in p["summary"]]
    assert len(pages) == 1

    # A new consent: a new version with its own grant, promoted, trades again.
    material = credential_pb2.SecretMaterial(
        account_id=account.account_id,
        authorization_code=stub.consent(),
        redirect_uri=REDIRECT_URI,
    )
    rotated = sf.credentials(vault).RotateCredential(
        sf.cpb.RotateCredentialRequest(name=made.name, material=material, reason="new consent"),
        metadata=vault.md("onboarding"), timeout=15,
    )  # fmt: skip
    sf.credentials(vault).PromoteCredentialVersion(
        sf.cpb.PromoteCredentialVersionRequest(name=rotated.version.name, reason="promote"),
        metadata=vault.md("onboarding"), timeout=15,
    )  # fmt: skip
    assert sf.get_credential(vault, made.name).session.state == S.STATE_ACTIVE
    assert sf.execute(vault, rc, QUERY).http_status == 200


@pytest.mark.parametrize("scope_and_account", [(0, None), (1, 424242)], ids=["view-only", "other"])
def test_a_consent_without_trading_or_for_another_account_is_refused(
    wired: tuple[CtraderStub, RunningVault], account: Account,
    scope_and_account: tuple[int, int | None],
) -> None:  # fmt: skip
    stub, vault = wired
    set_application(vault, FLOW, account)
    scope, other = scope_and_account
    request = create_request(FLOW, account, "ct-view")
    request.material.authorization_code = stub.consent(other, scope=scope)
    err = expect_error(
        sf.credentials(vault).CreateCredential, request, metadata=vault.md("onboarding"),
        timeout=15,
    )  # fmt: skip
    assert (err.code, err.reason) == (FP, "VENUE_LOGIN_REFUSED")
    gone = expect_error(
        sf.credentials(vault).GetCredential,
        sf.cpb.GetCredentialRequest(name=f"workspaces/{sf.WS}/credentials/ct-view"),
        metadata=vault.md("security"), timeout=10,
    )  # fmt: skip
    assert gone.code == grpc.StatusCode.NOT_FOUND


def test_a_reset_keeps_an_oauth_grant(
    wired: tuple[CtraderStub, RunningVault], account: Account
) -> None:
    """No password stands behind a consent: ResetCredentialSession clears the breaker and
    backoff but keeps the grant, and orders go on without a new consent."""
    stub, vault = wired
    made = onboard(vault, FLOW, account, "ct1")
    reset = sf.credentials(vault).ResetCredentialSession(
        sf.cpb.ResetCredentialSessionRequest(name=made.name, reason="operator check"),
        metadata=vault.md("security"), timeout=10,
    ).credential  # fmt: skip
    assert reset.session.state == S.STATE_ACTIVE and reset.session.generation == 1
    rc = sf.begin(vault, made.name).name
    assert sf.execute(vault, rc, QUERY).http_status == 200
    assert (stub.logins, stub.refreshes) == (1, 0)
