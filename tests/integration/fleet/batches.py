"""``BatchSignOrders`` load against real server processes, and what the database must hold after.

A ``Ledger`` records every call sent (a batch or a single ``SignOrder``), every item's client
order id and what the caller got back: ``SIGNED`` with the item's audit event, the item's
refusal reason, or nothing at all (the call itself failed, e.g. the server was killed under it).
``Durable`` reads the replay claims (``signed_orders``) and the audit events straight from the
database as its owner; ``check_items`` holds one against the other: every item is written
whole or not at all, and every signature a caller received is durable under its own event.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipsync.vault.v1 import audit_service_pb2 as apb
from pipsync.vault.v1 import audit_service_pb2_grpc as agrpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipvault_client import SignOrderRequest, VaultClient, VaultClientError

from tests.integration.fleet.fleet import Fleet, Replica
from tests.support.signing_flow import coid, place

SIGNED = "SIGNED"


@dataclass(frozen=True)
class Route:
    """A routing context opened on one replica for one credential."""

    workspace: str  # resource id, e.g. "w3"
    credential: str  # workspaces/w3/credentials/c1
    routing_context: str


@dataclass
class Item:
    coid: str
    route: Route
    call: Call = field(repr=False)
    outcome: str = ""  # "": no answer (the call failed); SIGNED; or the item's ErrorInfo reason
    event: str = ""  # the audit event a SIGNED item's response names


@dataclass(eq=False)
class Call:
    replica: str
    kind: str  # "batch" or "single"
    started: float
    items: list[Item] = field(default_factory=list)
    ended: float = 0.0
    failure: str = ""  # the whole call failed (no per-item answer): its code or reason

    @property
    def answered(self) -> bool:
        return self.ended > 0 and not self.failure


class Ledger:
    """Every call and item sent, thread-safe."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def open(self, replica: str, kind: str, routes: Sequence[Route]) -> Call:
        call = Call(replica, kind, time.monotonic())
        call.items = [Item(coid("f"), r, call) for r in routes]
        with self._lock:
            self.calls.append(call)
        return call

    def items(self) -> list[Item]:
        with self._lock:
            return [item for call in self.calls for item in call.items]

    def answered(self, kind: str = "batch") -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.kind == kind and c.answered)

    def wait_answered(self, more: int, timeout: float = 60) -> None:
        """Until ``more`` batches more than now were answered."""
        target, deadline = self.answered() + more, time.monotonic() + timeout
        while self.answered() < target:
            assert time.monotonic() < deadline, f"{more} more batches were not answered"
            time.sleep(0.005)


def sign_batch(
    client: VaultClient, replica: str, routes: Sequence[Route], ledger: Ledger, timeout: float = 60
) -> Call:
    """One ``BatchSignOrders`` through the client (the call's reason, none per item)."""
    call = ledger.open(replica, "batch", routes)
    requests = [
        SignOrderRequest(routing_context=it.route.routing_context, order=place("LTCBTC", it.coid))
        for it in call.items
    ]
    try:
        results = client.sign_orders(requests, reason="fan out a signal", timeout=timeout)
    except VaultClientError as err:
        call.failure = err.reason or err.code_name
        call.ended = time.monotonic()
        return call
    call.ended = time.monotonic()
    for item, result in zip(call.items, results, strict=True):
        if isinstance(result, spb.SignOrderResponse):
            item.outcome, item.event = SIGNED, result.audit_event
        else:
            item.outcome = result.reason or result.code_name
    return call


def sign_single(client: VaultClient, replica: str, route: Route, ledger: Ledger) -> Call:
    """One plain ``SignOrder``: a refusal is its item's outcome."""
    call = ledger.open(replica, "single", [route])
    (item,) = call.items
    try:
        got = client.sign_order(
            route.routing_context, place("LTCBTC", item.coid), reason="one signal", timeout=30
        )
    except VaultClientError as err:
        call.ended = time.monotonic()
        if err.reason:  # refused by the vault: this item's answer
            item.outcome = err.reason
        else:
            call.failure = err.code_name
        return call
    call.ended = time.monotonic()
    item.outcome, item.event = SIGNED, got.audit_event
    return call


def shuffled_cover(routes: Sequence[Route], size: int, rng: random.Random) -> list[Route]:
    """``size`` items (at least one per route, then random ones), in random order."""
    picked = list(routes) + [rng.choice(routes) for _ in range(max(0, size - len(routes)))]
    rng.shuffle(picked)
    return picked


def load(
    replicas: Sequence[tuple[Replica, Sequence[Route]]],
    ledger: Ledger,
    *,
    seconds: float,
    batch_callers: int,
    single_callers: int,
    batch_size: tuple[int, int],
    seed: int,
    during: Sequence[Callable[[], None]] = (),
) -> None:
    """Per replica, ``batch_callers`` threads sending ``BatchSignOrders`` (items covering every
    route given for that replica, shuffled) and ``single_callers`` threads sending ``SignOrder``,
    back to back; meanwhile each action of ``during`` runs in turn, then the calls go on for
    ``seconds``."""
    stop = threading.Event()
    errors: list[BaseException] = []
    counter = itertools.count()

    def caller(replica: Replica, routes: Sequence[Route], kind: str) -> None:
        rng = random.Random(seed * 1000 + next(counter))
        try:
            with VaultClient(replica.data, token=replica.tokens["router"], timeout=60) as client:
                while not stop.is_set():
                    if kind == "batch":
                        size = rng.randint(*batch_size)
                        sign_batch(client, replica.name, shuffled_cover(routes, size, rng), ledger)
                    else:
                        sign_single(client, replica.name, rng.choice(routes), ledger)
        except BaseException as exc:  # a bug in the harness must fail the test, not hide
            errors.append(exc)

    threads = [
        threading.Thread(target=caller, args=(replica, routes, kind), daemon=True)
        for replica, routes in replicas
        for kind, n in (("batch", batch_callers), ("single", single_callers))
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    try:
        for action in during:
            action()
        time.sleep(seconds)
    finally:
        stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    assert not errors, errors


def verify_audit_log(replica: Replica) -> apb.VerifyAuditLogResponse:
    """``VerifyAuditLog`` on a running replica: every chain, against its latest checkpoint."""
    stub = agrpc.AuditServiceStub(replica.channel(replica.admin))
    verdict: apb.VerifyAuditLogResponse = stub.VerifyAuditLog(
        apb.VerifyAuditLogRequest(), metadata=replica.md("auditor"), timeout=60
    )
    return verdict


# --- what the database holds ---------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    name: str  # workspaces/{ws}/auditEvents/{seq}
    workspace: str  # resource id
    seq: int
    action: str
    outcome: str
    credential: str
    routing_context: str
    error_reason: str
    coid: str  # details.clientOrderId ("" when the event has none)


@dataclass
class Durable:
    claims: Counter[str]  # client order id -> replay claims (signed_orders rows)
    events: dict[str, Event]  # event name -> event (workspace chains only)
    uses: dict[str, list[Event]]  # client order id -> its successful credential.use events

    @classmethod
    def read(cls, fleet: Fleet) -> Durable:
        claims = Counter(str(r[0]) for r in fleet.rows("SELECT client_order_id FROM signed_orders"))
        events: dict[str, Event] = {}
        uses: dict[str, list[Event]] = {}
        rows = fleet.rows(
            "SELECT workspace, seq, action, outcome, credential, routing_context, error_reason, "
            "details FROM audit_events WHERE workspace <> ''"
        )
        for ws, seq, action, outcome, cred, rc, reason, details in rows:
            doc = json.loads(details) if details else {}
            event = Event(
                f"{ws}/auditEvents/{seq}", str(ws).rsplit("/", 1)[1], int(seq), str(action),
                str(outcome), str(cred), str(rc), str(reason), str(doc.get("clientOrderId", "")),
            )  # fmt: skip
            assert event.name not in events, f"two events named {event.name}"
            events[event.name] = event
            if action == "credential.use" and outcome == "success":
                uses.setdefault(event.coid, []).append(event)
        return cls(claims, events, uses)

    def chain(self, workspace: str) -> list[Event]:
        return sorted((e for e in self.events.values() if e.workspace == workspace), key=_seq)


def _seq(event: Event) -> int:
    return event.seq


def check_items(items: Sequence[Item], durable: Durable) -> None:
    """Every item is durable whole (replay claim and one ``credential.use`` success event for its
    client order id) or not at all; every signature a caller received names its own event; a
    refused item wrote neither; and the database holds no claim without its event or the reverse,
    whoever asked."""
    half = [
        (it.coid, durable.claims[it.coid], len(durable.uses.get(it.coid, [])))
        for it in items
        if (durable.claims[it.coid] > 0) != (it.coid in durable.uses)
    ]
    assert not half, f"{len(half)} items half-written (coid, claims, events): {half[:5]}"
    twice = [
        (it.coid, durable.claims[it.coid], len(durable.uses.get(it.coid, [])))
        for it in items
        if durable.claims[it.coid] > 1 or len(durable.uses.get(it.coid, [])) > 1
    ]
    assert not twice, f"{len(twice)} items written twice: {twice[:5]}"
    bad: list[tuple[object, ...]] = []
    for it in items:
        if it.outcome == SIGNED:
            event = durable.events.get(it.event)
            if (
                event is None
                or (event.action, event.outcome) != ("credential.use", "success")
                or event.coid != it.coid
                or event.credential != it.route.credential
                or event.workspace != it.route.workspace
                or durable.claims[it.coid] != 1
            ):
                bad.append((it.coid, it.event, event))
        elif it.outcome and (durable.claims[it.coid] or it.coid in durable.uses):
            bad.append((it.coid, it.outcome, durable.uses.get(it.coid)))
    assert not bad, f"{len(bad)} answers disagree with the database: {bad[:5]}"
    events = [it.event for it in items if it.outcome == SIGNED]
    assert len(events) == len(set(events)), "two signatures were given the same audit event"
    orphans = set(durable.claims) ^ set(durable.uses)
    assert not orphans, f"{len(orphans)} claims without an event or events without a claim"
