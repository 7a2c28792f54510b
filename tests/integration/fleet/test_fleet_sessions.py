"""Venue sessions in a fleet: two real ``serve`` replicas on one PostgreSQL, against the IG stub
(a password session whose refresh token rotates on every refresh).

- The replicas share one session: concurrent orders on both cause one login, and when the venue
  ends the access token, exactly one refresh (by whichever replica takes the lease), after which
  both keep trading with the refreshed session.
- ``kill -9`` of the replica whose refresh the venue has answered (the old refresh token spent)
  but which never wrote the new one back: the other replica waits out the lease and logs in
  again with the password (a password session loses nothing), no crash loop, and the audit log
  verifies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_service_pb2_grpc as cgrpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import trading_pb2

from tests.integration.fleet.fleet import Fleet, Replica
from tests.integration.sessions.flows import create_request
from tests.support.forex_flow import Account
from tests.venue_stubs.ig_stub import FLOW, IgStub

WS = "fx-fleet"
QUERY = trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_POSITIONS)


@pytest.fixture
def account() -> Account:
    return Account()


@pytest.fixture
def stub(account: Account) -> Iterator[IgStub]:
    with FLOW.stub(account) as running:
        yield running


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet.create(tmp_path / "fleet")
    try:
        yield made
    finally:
        made.close()


def _start(fleet: Fleet, name: str, stub: IgStub) -> Replica:
    return fleet.start(
        name,
        signing={"venue_base_urls": {"ig": stub.base_url}},
        sessions={"lease_s": 3.0},
    )


def _onboard(fleet: Fleet, replica: Replica, account: Account) -> str:
    fleet.make_workspace(replica, WS)
    made = cgrpc.CredentialServiceStub(replica.channel(replica.admin)).CreateCredential(
        create_request(FLOW, account, "ig-fleet", ws=WS), metadata=replica.md("onboarding"),
        timeout=15,
    )  # fmt: skip
    return str(made.credential.name)


def _execute(replica: Replica, rc: str) -> spb.ExecuteOrderResponse:
    request = spb.ExecuteOrderRequest(routing_context=rc, order=QUERY, reason="fleet session")
    answer: spb.ExecuteOrderResponse = replica.signing().ExecuteOrder(
        request, metadata=replica.md("router"), timeout=20
    )
    return answer


def _burst(pairs: list[tuple[Replica, str]], n: int) -> list[int]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(_execute, *pairs[i % len(pairs)]) for i in range(n)]
        return [f.result().http_status for f in futures]


@pytest.mark.timeout(240)
def test_two_replicas_share_one_session_and_refresh_it_once(
    fleet: Fleet, stub: IgStub, account: Account
) -> None:
    a, b = _start(fleet, "a", stub), _start(fleet, "b", stub)
    name = _onboard(fleet, a, account)
    pairs = [(a, a.begin_routing(name)), (b, b.begin_routing(name))]
    assert _burst(pairs, 16) == [200] * 16
    assert (stub.logins, stub.refreshes) == (1, 0)
    stub.expire_access()  # every access token now answers 401 oauth-token-invalid
    assert _burst(pairs, 16) == [200] * 16
    assert (stub.logins, stub.refreshes) == (1, 1)
    assert _burst(pairs, 8) == [200] * 8
    assert (stub.logins, stub.refreshes) == (1, 1)
    report = fleet.verify_chains()
    assert report["intact"] is True


@pytest.mark.timeout(240)
def test_kill_9_after_the_venue_answered_a_refresh_costs_one_login(
    fleet: Fleet, stub: IgStub, account: Account
) -> None:
    a, b = _start(fleet, "a", stub), _start(fleet, "b", stub)
    name = _onboard(fleet, a, account)
    rc_a, rc_b = a.begin_routing(name), b.begin_routing(name)
    assert _execute(a, rc_a).http_status == 200 and _execute(b, rc_b).http_status == 200
    assert stub.logins == 1
    stub.expire_access()
    stub.refresh_delay_s = 2.0
    with ThreadPoolExecutor(max_workers=1) as pool:
        doomed = pool.submit(_execute, a, rc_a)
        assert stub.refresh_started.wait(15), "replica a never refreshed"
        a.proc.kill()  # kill -9 while the venue's answer is still on its way
        a.proc.wait()
        with pytest.raises(grpc.RpcError):
            doomed.result()
    stub.refresh_delay_s = 0.0
    assert stub.refreshes == 1
    # b waits out a's lease, then logs in again with the password: nothing is lost.
    deadline = time.monotonic() + 30
    while True:
        try:
            assert _execute(b, rc_b).http_status == 200
            break
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err
            assert time.monotonic() < deadline, "b never recovered"
            time.sleep(0.5)
    assert stub.logins == 2
    assert b.health() == "SERVING"
    fleet.restart(a)  # no crash loop: a comes back and trades
    assert _execute(a, a.begin_routing(name)).http_status == 200
    assert stub.logins == 2
    report = fleet.verify_chains()
    assert report["intact"] is True


@pytest.mark.timeout(240)
def test_kill_9_after_the_venue_answered_an_oauth_refresh_needs_reauthorization(
    fleet: Fleet, account: Account
) -> None:
    """cTrader's refresh token is single use and no password stands behind it: a replica killed
    after the venue answered a refresh (the old token spent) but before the write-back loses the
    grant. The fleet says so once - NEEDS_REAUTHORIZATION, one page - and keeps serving."""
    from tests.integration.sessions.flows import set_application
    from tests.venue_stubs.ctrader_stub import FLOW as CTRADER

    with CTRADER.stub(account) as stub:
        settings = {"signing": {"venue_base_urls": {"ctrader": stub.base_url}},
                    "sessions": {"lease_s": 3.0}}  # fmt: skip
        a, b = fleet.start("a", **settings), fleet.start("b", **settings)
        fleet.make_workspace(a, WS)
        set_application(_AdminOf(a), CTRADER, account)
        made = cgrpc.CredentialServiceStub(a.channel(a.admin)).CreateCredential(
            create_request(CTRADER, account, "ct-fleet", ws=WS), metadata=a.md("onboarding"),
            timeout=15,
        )  # fmt: skip
        name = made.credential.name
        rc_a, rc_b = a.begin_routing(name), b.begin_routing(name)
        assert _execute(a, rc_a).http_status == 200 and _execute(b, rc_b).http_status == 200
        stub.expire_sessions()
        stub.refresh_delay_s = 2.0
        with ThreadPoolExecutor(max_workers=1) as pool:
            doomed = pool.submit(_execute, a, rc_a)
            assert stub.refresh_started.wait(15), "replica a never refreshed"
            a.proc.kill()
            a.proc.wait()
            with pytest.raises(grpc.RpcError):
                doomed.result()
        stub.refresh_delay_s = 0.0
        assert stub.refreshes == 1
        with pytest.raises(grpc.RpcError) as refused:
            _execute(b, rc_b)  # waits out a's lease, then finds the refresh lost
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "grant is lost" in str(refused.value.details())
        assert stub.refreshes == 1  # nobody tried the spent token again
        fleet.restart(a)  # no crash loop
        with pytest.raises(grpc.RpcError) as again:
            _execute(a, a.begin_routing(name))
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert b.health() == "SERVING" and a.health() == "SERVING"
        assert _session_pages(fleet) == 1
        report = fleet.verify_chains()
        assert report["intact"] is True


class _AdminOf:
    """A replica seen as the shared helpers see a vault (admin channel and metadata)."""

    def __init__(self, replica: Replica) -> None:
        self.admin_target = replica.admin
        self._replica = replica

    def channel(self, target: str | None = None) -> grpc.Channel:
        return self._replica.channel(target or self._replica.admin)

    def md(self, who: str = "security") -> list[tuple[str, str]]:
        return self._replica.md(who)


def _session_pages(fleet: Fleet) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(fleet.admin_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pager_outbox WHERE dedup_key LIKE 'pipvault:session:%'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()
