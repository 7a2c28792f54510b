"""Issue 19 §2: two `pipvault serve` replicas on one PostgreSQL database, signing for the same
workspaces at once, with a freeze or a revoke on one replica in the middle.

Before the fix the group committer locked chain heads in each batch's arrival order (two
replicas' batches holding {a, b} and {b, a} deadlocked, signatures failed `AUDIT_UNAVAILABLE`),
a freeze or revoke deadlocked with the batches (its `workspaces`/`credentials` row lock against
the batch's foreign-key lock), and a batch could read a workspace's epoch before waiting for the
revoke that bumped it - signatures issued after the kill switch had committed.

Must hold: zero failed signatures under cross-workspace load; after a freeze or revoke returns,
every call that starts later fails with exactly the documented refusal (never
`AUDIT_UNAVAILABLE`); no `credential.use` success is chained after the kill switch's event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import credential_service_pb2_grpc as cgrpc
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.integration.fleet.fleet import Fleet, Replica
from tests.support.errors import call_error
from tests.support.signing_flow import coid

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

WORKSPACES = ("wa", "wb", "wc", "wd")


@dataclass(frozen=True)
class Attempt:
    replica: str
    workspace: str
    started: float
    ended: float
    outcome: str  # SIGNED, or the ErrorInfo reason of the refusal


def _sign(replica: Replica, rc: str) -> str:
    try:
        replica.sign(rc, coid("x"))
        return "SIGNED"
    except grpc.RpcError as err:
        error = call_error(err)
        return error.reasons[0] if error.reasons else error.code.name


def _hammer(
    assignments: list[tuple[Replica, list[tuple[str, str]]]],
    seconds: float,
    during: Callable[[], None] | None = None,
) -> list[Attempt]:
    """One thread per (replica, [(workspace, routing context), ...]): sign in a loop, each
    call the next workspace in turn, for ``seconds``; ``during`` runs once, half-way."""
    attempts: list[Attempt] = []
    lock = threading.Lock()
    stop = threading.Event()

    def caller(replica: Replica, targets: list[tuple[str, str]]) -> None:
        i = 0
        while not stop.is_set():
            ws, rc = targets[i % len(targets)]
            i += 1
            started = time.monotonic()
            outcome = _sign(replica, rc)
            with lock:
                attempts.append(Attempt(replica.name, ws, started, time.monotonic(), outcome))

    threads = [threading.Thread(target=caller, args=a, daemon=True) for a in assignments]
    for t in threads:
        t.start()
    time.sleep(seconds / 2)
    if during is not None:
        during()
    time.sleep(seconds / 2)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return attempts


def _fleet_with_workspaces(tmp_path: Path) -> tuple[Fleet, Replica, Replica, dict[str, str]]:
    fleet = Fleet.create(tmp_path / "fleet")
    a, b = fleet.start("a"), fleet.start("b")
    credentials = {}
    for ws in WORKSPACES:
        fleet.make_workspace(a, ws)
        credentials[ws] = fleet.onboard(a, ws, "main")
    return fleet, a, b, credentials


def _chain(fleet: Fleet, workspace: str) -> list[tuple[int, str, str]]:
    """(seq, action, outcome) of a workspace's chain, in order, read as the admin role."""
    with psycopg.connect(fleet.admin_url) as conn:
        rows = conn.execute(
            "SELECT e.seq, e.action, e.outcome FROM audit_events e "
            "JOIN workspaces w ON w.id = e.chain_id WHERE w.resource_id = %s ORDER BY e.seq",
            (workspace,),
        ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def _deadlocks_logged(fleet: Fleet) -> list[str]:
    return [
        line
        for r in fleet.replicas
        for line in r.output().splitlines()
        if "deadlock" in line.lower() and "group_commit.retry" not in line
    ]


def test_two_replicas_signing_across_workspaces_never_fail(tmp_path: Path) -> None:
    fleet, a, b, credentials = _fleet_with_workspaces(tmp_path)
    try:
        # One routing context per workspace and replica; four callers per replica, each one
        # alternating over all four workspaces from a different starting point, so batches on
        # the two replicas hold the same workspaces in every order.
        targets = {
            r.name: [(ws, r.begin_routing(credentials[ws])) for ws in WORKSPACES] for r in (a, b)
        }
        assignments = [
            (r, targets[r.name][k:] + targets[r.name][:k]) for r in (a, b) for k in range(4)
        ]
        attempts = _hammer(assignments, seconds=6)
        failed = [x for x in attempts if x.outcome != "SIGNED"]
        assert not failed, f"{len(failed)} of {len(attempts)} failed: {failed[:5]}"
        assert len(attempts) > 200, len(attempts)
        assert {x.replica for x in attempts} == {"a", "b"}
        assert {x.workspace for x in attempts} == set(WORKSPACES)
        assert not _deadlocks_logged(fleet)
        report = fleet.verify_chains()
        assert report["intact"] is True, report
        signed = sum(
            1 for ws in WORKSPACES for _, action, out in _chain(fleet, ws)
            if action == "credential.use" and out == "success"
        )  # fmt: skip
        assert signed == len(attempts)
    finally:
        fleet.close()


def _kill_switch_holds(
    fleet: Fleet,
    attempts: list[Attempt],
    returned_at: float,
    workspace: str,
    event: str,
    refusals: set[str],
) -> None:
    """After the kill switch returned, every call that started later is refused as documented;
    nothing anywhere fails with AUDIT_UNAVAILABLE; the chain has no successful use after the
    kill switch's event."""
    hit = [x for x in attempts if x.workspace == workspace]
    later = [x for x in hit if x.started > returned_at]
    assert later, "no call started after the kill switch returned"
    wrong = [x for x in later if x.outcome not in refusals]
    assert not wrong, f"after {event}: {wrong[:5]}"
    broken = [x for x in attempts if x.outcome == "AUDIT_UNAVAILABLE"]
    assert not broken, f"{len(broken)} calls failed AUDIT_UNAVAILABLE: {broken[:3]}"
    others = [x for x in attempts if x.workspace != workspace and x.outcome != "SIGNED"]
    assert not others, f"other workspaces were disturbed: {others[:5]}"
    chain = _chain(fleet, workspace)
    switch = [seq for seq, action, out in chain if action == event and out == "success"]
    assert len(switch) == 1, chain[-10:]
    after = [
        (seq, action)
        for seq, action, out in chain
        if seq > switch[0] and action == "credential.use" and out == "success"
    ]
    assert not after, f"signatures chained after {event}: {after[:5]}"
    uses = [seq for seq, action, out in chain if action == "credential.use" and out == "success"]
    signed_here = [x for x in hit if x.outcome == "SIGNED"]
    assert len(uses) == len(signed_here), (len(uses), len(signed_here))
    assert fleet.verify_chains()["intact"] is True


def _kill_switch_race(
    tmp_path: Path, run: int, event: str, refusals: set[str], kill: Callable[..., object]
) -> None:
    """Replica b signs in all four workspaces (and one more caller only in the target) while
    replica a pulls the kill switch ``kill(a, target, credentials)`` half-way."""
    fleet, a, b, credentials = _fleet_with_workspaces(tmp_path)
    try:
        target = WORKSPACES[run % len(WORKSPACES)]
        targets = [(ws, b.begin_routing(credentials[ws])) for ws in WORKSPACES]
        assignments = [(b, targets[k:] + targets[:k]) for k in range(4)]
        assignments.append((b, [(target, targets[WORKSPACES.index(target)][1])]))
        returned: list[float] = []

        def pull() -> None:
            kill(a, target, credentials)
            returned.append(time.monotonic())

        attempts = _hammer(assignments, seconds=4, during=pull)
        assert returned, f"the {event} did not return"
        _kill_switch_holds(fleet, attempts, returned[0], target, event, refusals)
    finally:
        fleet.close()


def _freeze(a: Replica, target: str, _credentials: dict[str, str]) -> None:
    wgrpc.WorkspaceServiceStub(a.channel(a.admin)).FreezeWorkspace(
        wpb.FreezeWorkspaceRequest(name=f"workspaces/{target}", reason="incident"),
        metadata=a.md("security"),
        timeout=15,
    )


def _revoke(a: Replica, target: str, credentials: dict[str, str]) -> None:
    cgrpc.CredentialServiceStub(a.channel(a.admin)).RevokeCredential(
        cpb.RevokeCredentialRequest(name=credentials[target], reason="compromised"),
        metadata=a.md("security"),
        timeout=15,
    )


@pytest.mark.parametrize("run", range(3))
def test_freeze_on_one_replica_while_the_other_signs(tmp_path: Path, run: int) -> None:
    _kill_switch_race(tmp_path, run, "workspace.freeze", {"WORKSPACE_FROZEN"}, _freeze)


@pytest.mark.parametrize("run", range(3))
def test_revoke_on_one_replica_while_the_other_signs(tmp_path: Path, run: int) -> None:
    refusals = {"CREDENTIAL_REVOKED", "ROUTING_CONTEXT_ENDED"}
    _kill_switch_race(tmp_path, run, "credential.revoke", refusals, _revoke)
