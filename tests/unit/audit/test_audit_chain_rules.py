"""The pure chain verifier on in-memory rows: each rule, and which event it names."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from vault_server.audit._checkpoints import CheckpointHead
from vault_server.audit._log import GENESIS, chain_hash
from vault_server.audit._store import Chain, Head
from vault_server.audit._verify import ChainReport, ChainVerifier
from vault_server.storage.models import AuditEvent

KEY = b"k" * 32
CHAIN = Chain("c-1", "c-1", "workspaces/acme")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def chain(n: int, key: bytes = KEY) -> list[AuditEvent]:
    rows, prev = [], GENESIS
    for i in range(1, n + 1):
        row = AuditEvent(
            id=i * 10, chain_id=CHAIN.id, seq=i, event_time=T0 + dt.timedelta(seconds=i),
            workspace_id=CHAIN.id, workspace=CHAIN.name, credential="", action="credential.use",
            outcome="success", actor_type="service", actor_id="router", on_behalf_of="",
            peer="10.0.0.1", reason=f"order {i}", routing_context="", request_id=f"r{i}",
            method="/x", error_reason="", details={"n": str(i)}, prev_hash=prev, hash="",
        )  # fmt: skip
        row.hash = chain_hash(key, row)
        prev = row.hash
        rows.append(row)
    return rows


def clone(row: AuditEvent, **changes: object) -> AuditEvent:
    cols = {c: getattr(row, c) for c in AuditEvent.__table__.columns.keys()}  # noqa: SIM118
    cols.update(changes)
    return AuditEvent(**cols)


def run(
    rows: list[AuditEvent],
    head: Head | None = None,
    checkpoint: CheckpointHead | None = None,
    key: bytes = KEY,
) -> ChainReport:
    v = ChainVerifier(key, CHAIN, checkpoint=checkpoint)
    for row in rows:
        if not v.feed(row):
            break
    if head is None and rows:
        head = Head(rows[-1].seq, rows[-1].hash)
    return v.finish(head)


def named(report: ChainReport) -> tuple[str, str] | None:
    f = report.finding
    return None if f is None else (f.event.rsplit("/", 1)[1], f.problem)


def test_an_intact_chain_and_an_empty_one() -> None:
    rows = chain(6)
    report = run(rows)
    assert report.finding is None and report.events == 6 and report.last_seq == 6
    assert run([], head=None).finding is None


def test_every_field_the_hash_covers_is_protected() -> None:
    rows = chain(5)
    for column in ("action", "reason", "peer", "actor_id", "credential", "details", "event_time"):
        value = {"details": {"n": "x"}, "event_time": T0}.get(column, "forged")
        tampered = [*rows[:2], clone(rows[2], **{column: value}), *rows[3:]]
        assert named(run(tampered)) == ("3", "hash_mismatch"), column


def test_modified_last_row_is_a_hash_mismatch_and_a_wrong_key_fails_at_once() -> None:
    rows = chain(4)
    assert named(run([*rows[:3], clone(rows[3], reason="x")])) == ("4", "hash_mismatch")
    assert named(run(rows, key=b"z" * 32)) == ("1", "hash_mismatch")


def test_gap_names_the_missing_event() -> None:
    rows = chain(5)
    assert named(run([rows[0], rows[1], rows[3], rows[4]])) == ("3", "sequence_gap")
    assert named(run(rows[1:])) == ("1", "sequence_gap")


def test_rows_stored_out_of_order_are_reordered() -> None:
    rows = chain(5)
    # Content (with its seq) swapped between two stored rows: ids no longer follow seq.
    swapped = [rows[0], rows[1], clone(rows[2], id=rows[3].id), clone(rows[3], id=rows[2].id)]
    assert named(run([*swapped, rows[4]])) == ("4", "reordered")
    # Content swapped but each row kept its seq: the content verifies at another position.
    moved = [rows[0], clone(rows[3], seq=2, id=rows[1].id), rows[2], clone(rows[1], seq=4)]
    assert named(run(moved)) == ("2", "reordered")


def test_forged_rows_are_inserted() -> None:
    rows = chain(5)
    forged = clone(rows[4], seq=6, id=99, prev_hash=rows[4].hash, hash="ab" * 32)
    assert named(run([*rows, forged], head=Head(5, rows[4].hash))) == ("6", "inserted")
    # In the middle, with everything after it renumbered: the next row verifies without it.
    shifted = [clone(r, seq=r.seq + 1, id=r.id + 1) for r in rows[2:]]
    fake = clone(rows[2], reason="approved", hash="cd" * 32)
    assert named(run([rows[0], rows[1], fake, *shifted], head=Head(6, "x"))) == ("3", "inserted")
    # A duplicate sequence number.
    dup = clone(rows[2], id=rows[2].id + 1, hash="ef" * 32)
    assert named(run([*rows[:3], dup, *rows[3:]])) == ("3", "inserted")


def test_a_broken_link_with_an_authentic_hash() -> None:
    rows = chain(3)
    relinked = clone(rows[1], prev_hash="00" * 32)
    relinked.hash = chain_hash(KEY, relinked)  # someone holding the key, but not the chain
    assert named(run([rows[0], relinked, rows[2]])) == ("2", "broken_link")


def test_head_row_and_checkpoint_rules() -> None:
    rows = chain(5)
    last = rows[-1].hash
    assert named(run(rows, head=Head(7, "x"))) == ("6", "truncated")
    assert named(run(rows, head=Head(4, rows[3].hash))) == ("5", "head_mismatch")
    assert named(run(rows, head=Head(5, "y" * 64))) == ("5", "head_mismatch")
    v = ChainVerifier(KEY, CHAIN)
    for row in rows:
        v.feed(row)
    assert named(v.finish(None)) == ("5", "head_mismatch")  # rows but no head row
    # A tail cut cleanly (head rewound too) is caught only by the checkpoint.
    assert run(rows[:3]).finding is None
    assert named(run(rows[:3], checkpoint=CheckpointHead(5, last))) == ("4", "truncated")
    assert run(rows, checkpoint=CheckpointHead(5, last)).finding is None
    assert run(rows, checkpoint=CheckpointHead(3, rows[2].hash)).finding is None
    # A chain rewritten by someone holding the key disagrees with the signed checkpoint.
    assert named(run(rows, checkpoint=CheckpointHead(3, "f" * 64))) == ("3", "hash_mismatch")
    # A chain deleted outright (rows and head) against its checkpoint.
    assert named(run([], head=None, checkpoint=CheckpointHead(2, "x"))) == ("1", "truncated")


def test_rows_after_a_finding_are_ignored() -> None:
    rows = chain(4)
    v = ChainVerifier(KEY, CHAIN)
    assert v.feed(rows[0]) and not v.feed(rows[2])
    assert not v.feed(rows[3])
    assert named(v.finish(Head(4, rows[3].hash))) == ("2", "sequence_gap")


@pytest.mark.parametrize("name", ["workspaces/acme", "system"])
def test_event_names(name: str) -> None:
    chain_ = dataclasses.replace(CHAIN, name=name)
    assert chain_.event(7) == f"{name}/auditEvents/7"
