"""``kill -9`` in the middle of large ``BatchSignOrders`` calls (a real ``pipvault serve`` process,
SQLite and PostgreSQL) leaves every item whole or absent.

Three callers send batches of 300-1000 items over twelve credentials in four workspaces, back to
back; the server is killed with SIGKILL at a different moment each round (during the first
batches, with a cold cache, or later), restarted on the same database, and the next round
begins. Afterwards, read straight from the database:

- every item has both its replay claim (``signed_orders``) and its one ``credential.use`` event,
  or neither, whether or not its caller got an answer;
- every signature a caller received names a durable event of its own client order id;
- an unanswered batch is durable entirely or not at all (one transaction);
- the audit log verifies, against the signed checkpoints the server exported too; and the
  restarted server signs a batch again, continuing every chain.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pipvault_client import VaultClient

from tests.integration.fleet.batches import (
    SIGNED,
    Durable,
    Ledger,
    Route,
    check_items,
    shuffled_cover,
    sign_batch,
    verify_audit_log,
)
from tests.integration.fleet.fleet import Fleet, Replica

pytestmark = pytest.mark.timeout(300)

WORKSPACES = ("k0", "k1", "k2", "k3")
CREDENTIALS = ("c0", "c1", "c2")
CALLERS = 3


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crash_fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet.create(tmp_path / "fleet", sqlite=request.param == "sqlite")
    try:
        yield fleet
    finally:
        fleet.close()


def _routes(fleet: Fleet, replica: Replica) -> list[Route]:
    routes = []
    for ws in WORKSPACES:
        fleet.make_workspace(replica, ws)
        for cred_id in CREDENTIALS:
            cred = fleet.onboard(replica, ws, cred_id)
            routes.append(Route(ws, cred, replica.begin_routing(cred)))
    return routes


def _batches_until_killed(
    replica: Replica, routes: list[Route], ledger: Ledger, rng: random.Random, answers: int
) -> float:
    """Callers send batches back to back; once ``answers`` more batches were answered and a
    random while later, SIGKILL. Returns when it was sent."""
    stop = threading.Event()
    seeds = [rng.random() for _ in range(CALLERS)]
    errors: list[BaseException] = []

    def caller(seed: float) -> None:
        crng = random.Random(seed)
        try:
            with VaultClient(replica.data, token=replica.tokens["router"], timeout=60) as client:
                while not stop.is_set():
                    picked = shuffled_cover(routes, crng.randint(300, 1000), crng)
                    sign_batch(client, replica.name, picked, ledger)
        except BaseException as exc:
            errors.append(exc)

    base = ledger.answered()
    threads = [threading.Thread(target=caller, args=(s,), daemon=True) for s in seeds]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while ledger.answered() < base + answers and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.5))
    killed_at = time.monotonic()
    replica.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller hung after the kill"
    assert not errors, errors
    return killed_at


def test_kill_9_mid_batch_leaves_every_item_whole_or_absent(crash_fleet: Fleet) -> None:
    fleet = crash_fleet
    postgres = not fleet.admin_url.startswith("sqlite")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    replica = fleet.start("a", audit={"checkpoint_interval_s": 0.2})
    routes = _routes(fleet, replica)
    ledger = Ledger()
    in_flight = []

    def crash(answers: int) -> None:
        first = len(ledger.calls)
        killed_at = _batches_until_killed(replica, routes, ledger, rng, answers)
        calls = ledger.calls[first:]
        # Every call the kill did not end was answered in full (every item signed, below).
        early = [c for c in calls if c.failure and c.ended < killed_at]
        assert not early, f"seed {seed}: calls failed before the kill: {early[0].failure}"
        in_flight.append(sum(1 for c in calls if c.failure and c.started < killed_at))

    *rounds, last = (0, 2) if postgres else (0, 1, 3)
    for answers in rounds:
        crash(answers)
        fleet.restart(replica)  # the same database, home and ports
    crash(last)
    with ThreadPoolExecutor(1) as pool:
        # The log exactly as the last crash left it (before any restart), verified by the CLI
        # against the checkpoints the killed server signed - while the server restarts.
        verify = pool.submit(fleet.verify_chains, checkpoints=replica)
        fleet.restart(replica)
        verified = verify.result(timeout=120)
    assert verified["intact"] is True, verified
    assert verified["checkpoints"]["valid"] > 0, verified["checkpoints"]
    assert all(in_flight), f"seed {seed}: a kill found no batch in flight: {in_flight}"

    # The restarted server signs again, every chain continuing where it was durable.
    with VaultClient(replica.data, token=replica.tokens["router"], timeout=60) as client:
        after = sign_batch(client, replica.name, shuffled_cover(routes, 50, rng), ledger)
    assert after.answered and all(it.outcome == SIGNED for it in after.items), after.failure

    items = ledger.items()
    answered = [it for it in items if it.call.answered]
    assert all(it.outcome == SIGNED for it in answered), f"seed {seed}: an item was refused"
    lost = [it for it in items if not it.call.answered]
    assert len(answered) >= 300 and lost, (len(answered), len(lost))
    durable = Durable.read(fleet)
    check_items(items, durable)
    # A batch nobody heard back from is one transaction: all of its items or none.
    unanswered = [c for c in ledger.calls if not c.answered]
    split = [
        (sum(1 for it in c.items if it.coid in durable.uses), len(c.items))
        for c in unanswered
        if 0 < sum(1 for it in c.items if it.coid in durable.uses) < len(c.items)
    ]
    assert not split, f"seed {seed}: batches durable in part (written, items): {split}"
    verdict = verify_audit_log(replica)
    assert verdict.intact, verdict
