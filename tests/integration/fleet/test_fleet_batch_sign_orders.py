"""``BatchSignOrders`` on a fleet: two ``pipvault serve`` replicas on one PostgreSQL database.

Each replica gets several concurrent batches at once whose items cover ten workspaces (two
credentials each) in shuffled order - so the two replicas' transactions hold the same chain heads
and workspace rows, every one of them in a different arrival order - with plain ``SignOrder``
calls mixed in. Lock order (workspaces in ascending id order, see ``signing._batch``) is what
keeps them from deadlocking; the tests hold:

- overlapping batches: every item of every call is signed (zero failures, no deadlock logged),
  every signature names its own durable event, no audit sequence is given twice, every item has
  its replay claim and exactly one ``credential.use`` event, and the audit log verifies;
- a race against the kill switches: while both replicas sign, a credential is revoked on one
  replica and a workspace frozen on the other. Calls that start after the revoke (freeze)
  returned get CREDENTIAL_REVOKED (WORKSPACE_FROZEN) for those items only, each refusal audited
  once; every signature of the revoked credential (frozen workspace) is chained before the
  revoke (freeze) event and none after it; every other item is signed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import credential_service_pb2_grpc as cgrpc
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.integration.fleet.batches import (
    SIGNED,
    Durable,
    Item,
    Ledger,
    Route,
    check_items,
    load,
    verify_audit_log,
)
from tests.integration.fleet.fleet import Fleet, Replica

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

WORKSPACES = tuple(f"w{i}" for i in range(10))
CREDENTIALS = ("c0", "c1")
VICTIM_WS = "w0"  # its credential "victim" is revoked in the race
FROZEN_WS = "wz"  # frozen in the race


@dataclass
class Setup:
    fleet: Fleet
    a: Replica
    b: Replica
    routes: dict[str, list[Route]]  # per replica: one routing context per credential
    victim: str  # workspaces/w0/credentials/victim

    def steady(self, replica: Replica) -> list[Route]:
        """The routes the kill switches never touch."""
        return [
            r
            for r in self.routes[replica.name]
            if r.credential != self.victim and r.workspace != FROZEN_WS
        ]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fleet = Fleet.create(Path(tmp_path_factory.mktemp("batch-fleet")))
    try:
        a, b = fleet.start("a", wait=False), fleet.start("b", wait=False)
        a.wait_health("SERVING")
        b.wait_health("SERVING")
        credentials = []
        for ws in (*WORKSPACES, FROZEN_WS):
            fleet.make_workspace(a, ws)
            for cred_id in CREDENTIALS if ws != FROZEN_WS else ("c0",):
                credentials.append((ws, fleet.onboard(a, ws, cred_id)))
        victim = fleet.onboard(b, VICTIM_WS, "victim")
        credentials.append((VICTIM_WS, victim))
        routes = {
            r.name: [Route(ws, cred, r.begin_routing(cred)) for ws, cred in credentials]
            for r in (a, b)
        }
        yield Setup(fleet, a, b, routes, victim)
    finally:
        fleet.close()


def _deadlocks_logged(fleet: Fleet) -> list[str]:
    return [
        line
        for r in fleet.replicas
        for line in r.output().splitlines()
        if "deadlock" in line.lower() and "group_commit.retry" not in line
    ]


def test_overlapping_batches_on_two_replicas_never_fail(setup: Setup) -> None:
    a, b = setup.a, setup.b
    ledger = Ledger()
    seed = random.randrange(1 << 30)
    load(
        [(a, setup.steady(a)), (b, setup.steady(b))], ledger,
        seconds=3, batch_callers=3, single_callers=2, batch_size=(100, 250), seed=seed,
    )  # fmt: skip
    failed_calls = [(c.replica, c.kind, c.failure) for c in ledger.calls if c.failure]
    assert not failed_calls, f"seed {seed}: {len(failed_calls)} calls failed: {failed_calls[:5]}"
    items = ledger.items()
    refused = [(it.route.workspace, it.outcome) for it in items if it.outcome != SIGNED]
    assert not refused, f"seed {seed}: {len(refused)} of {len(items)} items failed: {refused[:5]}"
    # Not vacuous: both replicas ran batches and single calls at once, over every workspace.
    for r in (a, b):
        mine = [c for c in ledger.calls if c.replica == r.name]
        assert sum(1 for c in mine if c.kind == "batch") >= 3, r.name
        assert sum(1 for c in mine if c.kind == "single") >= 5, r.name
    assert {it.route.workspace for it in items} == set(WORKSPACES)
    assert not _deadlocks_logged(setup.fleet)

    durable = Durable.read(setup.fleet)
    check_items(items, durable)
    coids = {it.coid for it in items}
    for ws in WORKSPACES:  # one event per signed item, the chain's sequence never reused
        chain = durable.chain(ws)
        assert [e.seq for e in chain] == list(range(1, len(chain) + 1)), ws
        ours = {it.event for it in items if it.route.workspace == ws}
        assert ours == {e.name for e in chain if e.coid in coids}, ws
    for replica in (a, b):
        verdict = verify_audit_log(replica)
        assert verdict.intact, verdict


def _revoke(replica: Replica, name: str, times: dict[str, float]) -> None:
    times["revoke_started"] = time.monotonic()
    cgrpc.CredentialServiceStub(replica.channel(replica.admin)).RevokeCredential(
        cpb.RevokeCredentialRequest(name=name, reason="compromised"),
        metadata=replica.md("security"),
        timeout=30,
    )
    times["revoke_returned"] = time.monotonic()


def _freeze(replica: Replica, ws: str, times: dict[str, float]) -> None:
    times["freeze_started"] = time.monotonic()
    wgrpc.WorkspaceServiceStub(replica.channel(replica.admin)).FreezeWorkspace(
        wpb.FreezeWorkspaceRequest(name=f"workspaces/{ws}", reason="incident"),
        metadata=replica.md("security"),
        timeout=30,
    )
    times["freeze_returned"] = time.monotonic()


def _kill_switch_held(
    durable: Durable,
    items: list[Item],
    *,
    workspace: str,
    event: str,
    credential: str,
    refusal: str,
    started: float,
    returned: float,
) -> None:
    """Items hit by a kill switch (``event`` on ``workspace``, for ``credential`` or all):
    signed before it started, refused as ``refusal`` once it returned (each refusal audited
    once, nothing written), and no signature chained after its event."""

    def touched(cred: str) -> bool:
        return cred == credential or not credential

    hit = [it for it in items if it.route.workspace == workspace and touched(it.route.credential)]
    wrong = [it.outcome for it in hit if it.outcome not in (SIGNED, refusal)]
    assert not wrong, f"{event}: unexpected outcomes {wrong[:5]}"
    before = [it for it in hit if it.call.ended < started]
    after = [it for it in hit if it.call.started > returned]
    assert before and after, f"{event}: not a race ({len(before)} before, {len(after)} after)"
    assert all(it.outcome == SIGNED for it in before), event
    late = [(it.call.replica, it.outcome) for it in after if it.outcome != refusal]
    assert not late, f"{event}: {len(late)} items signed after it returned: {late[:5]}"
    chain = durable.chain(workspace)
    switch = [
        e.seq
        for e in chain
        if e.action == event and e.outcome == "success" and touched(e.credential)
    ]
    assert len(switch) == 1, (event, switch)
    signed = [it for it in hit if it.outcome == SIGNED]
    chained_after = [it.event for it in signed if durable.events[it.event].seq > switch[0]]
    assert not chained_after, f"{event}: signatures chained after it: {chained_after[:5]}"
    uses_after = [
        e.name
        for e in chain
        if e.seq > switch[0]
        and (e.action, e.outcome) == ("credential.use", "success")
        and touched(e.credential)
    ]
    assert not uses_after, f"{event}: uses chained after it: {uses_after[:5]}"
    refused = [it for it in hit if it.outcome == refusal]
    denials = [
        e
        for e in chain
        if e.outcome == "denied" and e.error_reason == refusal and touched(e.credential)
    ]
    assert len(denials) == len(refused), (event, len(denials), len(refused))


def test_revoke_and_freeze_race_overlapping_batches(setup: Setup) -> None:
    a, b = setup.a, setup.b
    ledger = Ledger()
    times: dict[str, float] = {}
    seed = random.randrange(1 << 30)
    load(
        [(a, setup.routes["a"]), (b, setup.routes["b"])], ledger,
        seconds=1.0, batch_callers=3, single_callers=2, batch_size=(100, 250), seed=seed,
        during=[  # each once batches were answered, so some items are signed before it
            lambda: ledger.wait_answered(6),
            lambda: _revoke(a, setup.victim, times),
            lambda: ledger.wait_answered(6),
            lambda: _freeze(b, FROZEN_WS, times),
        ],
    )  # fmt: skip
    assert set(times) == {"revoke_started", "revoke_returned", "freeze_started", "freeze_returned"}
    failed_calls = [(c.replica, c.kind, c.failure) for c in ledger.calls if c.failure]
    assert not failed_calls, f"seed {seed}: {len(failed_calls)} calls failed: {failed_calls[:5]}"
    items = ledger.items()
    # Everything the kill switches do not touch is signed, in the same batches as the refusals.
    others = [
        (it.route.workspace, it.outcome)
        for it in items
        if it.route.credential != setup.victim
        and it.route.workspace != FROZEN_WS
        and it.outcome != SIGNED
    ]
    assert not others, f"seed {seed}: {len(others)} other items failed: {others[:5]}"

    durable = Durable.read(setup.fleet)
    check_items(items, durable)
    _kill_switch_held(
        durable, items, workspace=VICTIM_WS, event="credential.revoke",
        credential=setup.victim, refusal="CREDENTIAL_REVOKED",
        started=times["revoke_started"], returned=times["revoke_returned"],
    )  # fmt: skip
    _kill_switch_held(
        durable, items, workspace=FROZEN_WS, event="workspace.freeze",
        credential="", refusal="WORKSPACE_FROZEN",
        started=times["freeze_started"], returned=times["freeze_returned"],
    )  # fmt: skip
    assert not _deadlocks_logged(setup.fleet)
    for replica in (a, b):
        verdict = verify_audit_log(replica)
        assert verdict.intact, verdict
