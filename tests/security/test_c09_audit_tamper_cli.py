"""Tampering with the audit log by raw SQL (as an owner who first drops the append-only guards),
caught by `pipvault audit verify` run as a real process, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.audit.audit_harness import (
    Attacker,
    Log,
    make_log,
    run_cli,
    write_key_file,
)
from vault_server.alerts.checkpoint_sinks import FileSink
from vault_server.audit._checkpoints import (
    AuditCheckpointer,
    CheckpointSigner,
    create_signing_key,
)
from vault_server.audit._store import ChainStore
from vault_server.core.clock import SystemClock

WS_A = "workspaces/ws-a/auditEvents"
Attack = Callable[[Attacker, str], None]


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    log = make_log(database_url, workspaces=("ws-a", "ws-b", *ATTACKS))
    for ws in ("ws-a", *ATTACKS):
        log.append(ws, credential="c1", n=8)  # seq 1 (workspace.create) .. 9
    log.append("ws-b", "credential.read", credential="c2", n=2)
    log.append(None, "auth.denied", outcome="denied", actor="mallory", n=2)
    try:
        yield log
    finally:
        log.close()


@pytest.fixture
def attacker(log: Log) -> Iterator[Attacker]:
    a = Attacker(log.url)
    a.drop_guards()
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def key_file(log: Log, tmp_path: Path) -> Path:
    return write_key_file(tmp_path / "chain.key", log.chain_key)


def _modify(a: Attacker, chain: str) -> None:
    a.sql("UPDATE audit_events SET reason = 'routine' WHERE chain_id = :c AND seq = 4", c=chain)


def _delete(a: Attacker, chain: str) -> None:
    a.sql("DELETE FROM audit_events WHERE chain_id = :c AND seq = 5", c=chain)


def _swap(a: Attacker, chain: str, *, keep_seq: bool) -> None:
    """Swap the stored content of events 3 and 4 (ids stay where they are)."""
    r3, r4 = a.row(chain, 3), a.row(chain, 4)
    cols = [k for k in r3 if k not in ("id", "seq")] + ([] if keep_seq else ["seq"])
    a.sql("UPDATE audit_events SET seq = -1 WHERE id = :i", i=r3["id"])
    for target, source in ((r4, r3), (r3, r4)):
        sets = ", ".join(f"{c} = :{c}" for c in cols)
        a.sql(
            f"UPDATE audit_events SET {sets} WHERE id = :target_id",
            target_id=target["id"],
            **{c: source[c] for c in cols},
        )
    if keep_seq:
        a.sql("UPDATE audit_events SET seq = 3 WHERE id = :i", i=r3["id"])


def _forge(a: Attacker, chain: str, seq: int, prev_hash: str) -> None:
    row = a.row(chain, 2)
    row.update(seq=seq, prev_hash=prev_hash, reason="approved by risk")
    row["hash"] = hashlib.sha256(repr(row).encode()).hexdigest()  # no chain key: a guess
    del row["id"]
    cols = ", ".join(row)
    a.sql(f"INSERT INTO audit_events ({cols}) VALUES ({', '.join(':' + c for c in row)})", **row)


def _insert_tail(a: Attacker, chain: str) -> None:
    _forge(a, chain, 10, a.head(chain)[1])


def _insert_middle(a: Attacker, chain: str) -> None:
    """Forge event 5, renumbering the later ones (and the head) to make room."""
    prev = a.row(chain, 4)["hash"]
    a.sql("UPDATE audit_events SET seq = seq + 1000 WHERE chain_id = :c AND seq >= 5", c=chain)
    a.sql("UPDATE audit_events SET seq = seq - 999 WHERE chain_id = :c AND seq > 1000", c=chain)
    a.sql("UPDATE audit_chain_heads SET seq = seq + 1 WHERE chain_id = :c", c=chain)
    _forge(a, chain, 5, prev)


def _truncate_head_left(a: Attacker, chain: str) -> None:
    a.sql("DELETE FROM audit_events WHERE chain_id = :c AND seq = 9", c=chain)


# One workspace per attack; its chain's expected (first bad seq, problem).
ATTACKS: dict[str, tuple[Attack, int, str]] = {
    "modified-field": (_modify, 4, "hash_mismatch"),
    "deleted-row": (_delete, 5, "sequence_gap"),
    "reordered-rows": (lambda a, c: _swap(a, c, keep_seq=False), 4, "reordered"),
    "swapped-content": (lambda a, c: _swap(a, c, keep_seq=True), 3, "reordered"),
    "inserted-at-tail": (_insert_tail, 10, "inserted"),
    "inserted-in-middle": (_insert_middle, 5, "inserted"),
    "tail-deleted-head-left": (_truncate_head_left, 9, "truncated"),
}


def test_intact_log_exits_0_with_the_key_derived_from_the_server_key(
    log: Log, tmp_path: Path
) -> None:
    server_key = write_key_file(tmp_path / "server.key", log.server_key)
    result = run_cli(log.url, "--server-key-file", str(server_key))
    assert result.code == 0, result.stderr
    assert result.doc["intact"] is True
    assert result.doc["chains_checked"] == 10 and result.doc["events_checked"] == 7 * 9 + 9 + 3 + 2


def test_wrong_key_is_not_intact_and_bad_usage_exits_2(tmp_path: Path) -> None:
    log = make_log(f"sqlite:///{tmp_path / 'vault.db'}")  # usage does not depend on the backend
    key_file = write_key_file(tmp_path / "chain.key", log.chain_key)
    wrong = write_key_file(tmp_path / "wrong.key", b"w" * 32)
    result = run_cli(log.url, "--chain-key-file", str(wrong))
    assert result.code == 1 and result.doc["problem"] == "hash_mismatch"
    assert run_cli(log.url).code == 2  # no key
    assert run_cli(log.url, "--chain-key-file", str(key_file), "--checkpoints", "x").code == 2
    missing = run_cli(f"sqlite:///{tmp_path / 'nope.db'}", "--chain-key-file", str(key_file))
    assert missing.code == 2 and "no SQLite database" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    key_file.chmod(0o644)
    loose = run_cli(log.url, "--chain-key-file", str(key_file))
    assert loose.code == 2 and "readable by group or others" in loose.stderr


def test_every_kind_of_tampering_is_named(log: Log, attacker: Attacker, key_file: Path) -> None:
    """Each attack hits its own chain; one run names the first bad event of every chain."""
    for ws, (tamper, _, _) in ATTACKS.items():
        tamper(attacker, log.chain_id(ws))
    result = run_cli(log.url, "--chain-key-file", str(key_file))
    assert result.code == 1, result.stderr
    found = {(f["event"], f["problem"]) for f in result.doc["findings"]}
    expected = {(f"workspaces/{ws}/auditEvents/{seq}", p) for ws, (_, seq, p) in ATTACKS.items()}
    assert found == expected
    first = min(ATTACKS)  # chains are checked in name order (after the system chain)
    _, seq, problem = ATTACKS[first]
    assert result.doc["first_bad_event"] == f"workspaces/{first}/auditEvents/{seq}"
    assert result.doc["problem"] == problem and result.doc["intact"] is False


def test_truncated_tail_is_invisible_without_checkpoints_and_caught_with_them(
    log: Log, attacker: Attacker, key_file: Path, tmp_path: Path
) -> None:
    signing_key = create_signing_key(tmp_path / "audit-checkpoint.key")
    checkpoints = tmp_path / "checkpoints.jsonl"
    store = ChainStore(log.db)
    signer = CheckpointSigner(signing_key)
    AuditCheckpointer(store, signer, [FileSink(checkpoints)], SystemClock()).checkpoint_now()
    cp = [
        "--checkpoints",
        str(checkpoints),
        "--public-key",
        str(tmp_path / "audit-checkpoint.key.pub"),
    ]
    assert run_cli(log.url, "--chain-key-file", str(key_file), *cp).code == 0

    # Cut events 8 and 9 and rewind the head: the remaining chain is self-consistent.
    chain = log.chain_id("ws-a")
    seven = attacker.row(chain, 7)["hash"]
    attacker.sql("DELETE FROM audit_events WHERE chain_id = :c AND seq >= 8", c=chain)
    attacker.sql(
        "UPDATE audit_chain_heads SET seq = 7, hash = :h WHERE chain_id = :c", c=chain, h=seven
    )

    blind = run_cli(log.url, "--chain-key-file", str(key_file), as_json=False)
    assert blind.code == 0, "without checkpoints a clean truncation cannot be seen"
    assert blind.stdout.startswith("audit log INTACT") and "cannot be detected" in blind.stdout
    caught = run_cli(log.url, "--chain-key-file", str(key_file), *cp)
    assert caught.code == 1
    assert (caught.doc["first_bad_event"], caught.doc["problem"]) == (f"{WS_A}/8", "truncated")
    human = run_cli(log.url, "--chain-key-file", str(key_file), *cp, as_json=False)
    assert human.code == 1 and human.stdout.startswith("audit log NOT INTACT")
    assert f"first bad event: {WS_A}/8" in human.stdout and "problem: truncated" in human.stdout
