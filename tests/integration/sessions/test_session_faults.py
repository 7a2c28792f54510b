"""The session engine under load and faults, for every session venue, through a real vault:

- 100 concurrent orders on a cold credential cause exactly one login;
- a session the venue ended mid-flight is renewed, and the order is sent again only where the
  venue guarantees the refused request was not executed (else ORDER_OUTCOME_UNKNOWN, not resent);
- a wrong password stops after ``max_failed_logins`` refused logins (LOCKED_OUT, paged once),
  before the platform's own account lock, and ResetCredentialSession lets logins resume;
- a venue that is down fails the order with UNAVAILABLE and the next ones fast (SESSION_BACKOFF),
  with one login attempt per backoff window, never a retry storm.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2

from tests.integration.sessions.flows import FLOWS, is_oauth, onboard, uses_transport
from tests.support import signing_flow as sf
from tests.support.errors import expect_error
from tests.support.forex_flow import Account, VenueFlow
from tests.support.vault import RunningVault, start_vault
from vault_server.brokers.base import Venue
from vault_server.brokers.registry import adapter_for

B = trading_pb2
S = credential_pb2.SessionStatus
ids = [f.venue for f in FLOWS]
# Venues whose credential holds a password (or a broad token) the vault logs in with.
PASSWORD_FLOWS = [f for f in FLOWS if not is_oauth(f)]


@contextlib.contextmanager
def _vault(stub: Any, home: Path, flow: VenueFlow, **sessions: Any) -> Iterator[RunningVault]:
    vault = start_vault(
        home,
        signing={
            "venue_base_urls": {flow.venue: stub.base_url},
            "egress_max_in_flight_per_workspace": 128,
        },
        sessions={"login_backoff_base_s": 0.05, "unavailable_backoff_s": 30.0, **sessions},
    )
    try:
        sf.create_workspace(vault)
        yield vault
    finally:
        vault.stop()


def _onboard(vault: RunningVault, flow: VenueFlow, account: Account, cred: str = "fx1") -> str:
    made = onboard(vault, flow, account, cred)
    return str(sf.begin(vault, made.name).name)


def _query(flow: VenueFlow) -> trading_pb2.Order:
    return B.Order(operation=B.ORDER_OPERATION_QUERY_POSITIONS)


def _take_down(stub: Any) -> None:
    """Every answer a 5xx from now on (stubs name the switch ``fail_with`` or ``down``)."""
    if hasattr(stub, "fail_with"):
        stub.fail_with = 503
    else:
        stub.down = True


def _logins(stub: Any) -> int:
    return sum(1 for r in stub.requests if _is_login(r))


def _is_login(request: Any) -> bool:
    path = request.path.lower()
    return any(word in path for word in ("login", "session", "token", "auth", "ping", "refresh"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("flow", FLOWS, ids=ids)
def test_one_hundred_concurrent_orders_cause_one_login(flow: VenueFlow, tmp_path: Path) -> None:
    account = Account()
    with flow.stub(account) as stub, _vault(stub, tmp_path / "h", flow) as vault:
        rc = _onboard(vault, flow, account)
        with ThreadPoolExecutor(max_workers=100) as pool:
            answers = list(pool.map(lambda _: sf.execute(vault, rc, _query(flow)), range(100)))
        assert all(a.http_status == 200 for a in answers), {a.http_status for a in answers}
        assert stub.logins == 1  # OAuth: the code exchange at onboarding; else the first order
        rows = [r for r in sf.audit_rows(vault) if r.action.startswith("credential.session.")]
        assert [r.action for r in rows] == ["credential.session.login"]
        assert sum(1 for r in sf.audit_rows(vault) if r.action == "credential.use") == 100


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flow", FLOWS, ids=ids)
def test_a_session_ended_by_the_venue_is_renewed_and_never_double_sent(
    flow: VenueFlow, tmp_path: Path
) -> None:
    account = Account()
    protocol = adapter_for(Venue(flow.venue)).session
    with flow.stub(account) as stub, _vault(stub, tmp_path / "h", flow) as vault:
        rc = _onboard(vault, flow, account)
        assert sf.execute(vault, rc, _query(flow)).http_status == 200
        stub.expire_sessions()
        sent_before = len(stub.requests)
        if protocol.retry_safe_on_expiry:
            assert sf.execute(vault, rc, _query(flow)).http_status == 200
        else:
            err = expect_error(
                sf.signing(vault).ExecuteOrder,
                sf.execute_request(rc, _query(flow)),
                metadata=vault.md("router"),
                timeout=15,
            )
            assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "ORDER_OUTCOME_UNKNOWN")
            assert sf.execute(vault, rc, _query(flow)).http_status == 200
        orders = [r for r in stub.requests[sent_before:] if not _is_login(r)]
        # Expired answer + one resend (retry-safe), or expired answer + the next order. Over a
        # persistent connection the refused attempt is its account authorization, so only the
        # resend reaches the venue as an order.
        assert len([r for r in orders if r.path != "/ProtoOAAccountAuthReq"]) == (
            1 if uses_transport(flow) else 2
        )
        renewals = [r for r in sf.audit_rows(vault) if r.action.startswith("credential.session.")]
        assert len(renewals) == 2 and all(r.outcome == "success" for r in renewals)
        if is_oauth(flow):  # the grant was refreshed, never a new consent
            assert [r.action for r in renewals][1] == "credential.session.refresh"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flow", PASSWORD_FLOWS, ids=[f.venue for f in PASSWORD_FLOWS])
def test_a_wrong_password_locks_out_before_the_platform_does(
    flow: VenueFlow, tmp_path: Path
) -> None:
    right = Account()
    wrong = Account(password=right.password + "-wrong", username=right.username,
                    api_key=right.api_key, server=right.server, account_id=right.account_id)  # fmt: skip
    assert flow.wrong_password_locks_after > 3
    with flow.stub(right) as stub, _vault(stub, tmp_path / "h", flow, max_failed_logins=3) as vault:
        rc = _onboard(vault, flow, wrong)
        reasons = []
        for _ in range(12):
            err = expect_error(
                sf.signing(vault).ExecuteOrder, sf.execute_request(rc, _query(flow)),
                metadata=vault.md("router"), timeout=15,
            )  # fmt: skip
            reasons.append(err.reason)
            if err.reason == "SESSION_LOCKED_OUT":
                break
            if err.reason == "SESSION_BACKOFF":
                sf.time.sleep(0.3)
        assert reasons.count("VENUE_LOGIN_REFUSED") == 3
        assert reasons[-1] == "SESSION_LOCKED_OUT"
        assert stub.failed_logins == 3 < flow.wrong_password_locks_after
        refused = vault.app.metrics.registry.get_sample_value(
            "pipvault_venue_session_renewals_total",
            {"venue": flow.venue, "kind": "login", "outcome": "refused"},
        )
        assert refused == 3
        pages = [p for p in sf.pages(vault) if "LOCKED_OUT" in p["summary"]]
        assert len(pages) == 1 and pages[0]["class"] == "credential.session_needs_attention"
        name = f"workspaces/{sf.WS}/credentials/fx1"
        shown = sf.get_credential(vault, name).session
        assert shown.state == S.STATE_LOCKED_OUT and shown.last_error_reason
        # More orders: no login attempt, no new page.
        expect_error(sf.signing(vault).ExecuteOrder, sf.execute_request(rc, _query(flow)),
                     metadata=vault.md("router"), timeout=15)  # fmt: skip
        assert (
            stub.failed_logins == 3
            and len([p for p in sf.pages(vault) if "LOCKED_OUT" in p["summary"]]) == 1
        )
        reset = sf.credentials(vault).ResetCredentialSession(
            sf.cpb.ResetCredentialSessionRequest(name=name, reason="password checked"),
            metadata=vault.md("security"), timeout=10,
        )  # fmt: skip
        assert reset.credential.session.state == S.STATE_IDLE
        actions = [r.action for r in sf.audit_rows(vault)]
        assert "credential.session.locked_out" in actions
        assert "credential.session.reset" in actions


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flow", FLOWS, ids=ids)
def test_a_venue_that_is_down_fails_fast_and_is_not_hammered(
    flow: VenueFlow, tmp_path: Path
) -> None:
    account = Account()
    with flow.stub(account) as stub, _vault(stub, tmp_path / "h", flow) as vault:
        rc = _onboard(vault, flow, account)
        _take_down(stub)
        sent_before = len(stub.requests)
        first = expect_error(
            sf.signing(vault).ExecuteOrder, sf.execute_request(rc, _query(flow)),
            metadata=vault.md("router"), timeout=15,
        )  # fmt: skip
        assert (first.code, first.reason) == (grpc.StatusCode.UNAVAILABLE, "VENUE_UNAVAILABLE")
        if uses_transport(flow):
            # The grant is held (no login to back off from): each order tries the connection
            # once and fails at once; nothing is retried.
            for _ in range(3):
                again = expect_error(
                    sf.signing(vault).ExecuteOrder, sf.execute_request(rc, _query(flow)),
                    metadata=vault.md("router"), timeout=15,
                )  # fmt: skip
                assert again.reason == "VENUE_UNAVAILABLE"
            assert len(stub.requests) - sent_before <= 4
            return
        for _ in range(5):
            again = expect_error(
                sf.signing(vault).ExecuteOrder, sf.execute_request(rc, _query(flow)),
                metadata=vault.md("router"), timeout=15,
            )  # fmt: skip
            assert (again.code, again.reason) == (grpc.StatusCode.UNAVAILABLE, "SESSION_BACKOFF")
            assert float(again.metadata["retryAfterS"]) > 0
        assert len(stub.requests) == 1  # one login attempt; nothing retried
        assert stub.logins == 0
