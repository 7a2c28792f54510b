"""Signed checkpoints of real chain heads, exported to a file, and what they let the verifier see
(SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.audit.audit_harness import Attacker, Log, make_log, run_cli, write_key_file
from vault_server.alerts.checkpoint_sinks import FileSink, StdoutSink
from vault_server.audit._checkpoints import (
    AuditCheckpointer,
    CheckpointSigner,
    create_signing_key,
    load_public_key,
    read_checkpoints,
)
from vault_server.audit._store import ChainStore
from vault_server.audit._verify import verify_chains
from vault_server.core.clock import FixedClock


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    log = make_log(database_url)
    log.append("ws-a", credential="c1", n=3)
    log.append(None, "auth.denied", outcome="denied")
    try:
        yield log
    finally:
        log.close()


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "audit-checkpoint.key"
    create_signing_key(path)
    return path


def checkpointer(log: Log, keyfile: Path, path: Path, clock: FixedClock) -> AuditCheckpointer:
    from vault_server.audit._checkpoints import load_signing_key

    signer = CheckpointSigner(load_signing_key(keyfile))
    stdout = io.StringIO()
    sinks = [FileSink(path), StdoutSink(stdout)]
    return AuditCheckpointer(ChainStore(log.db), signer, sinks, clock, heartbeat_s=600)


def verify(log: Log, cp_path: Path, keyfile: Path):  # type: ignore[no-untyped-def]
    store = ChainStore(log.db)
    cps = read_checkpoints(cp_path, load_public_key(Path(f"{keyfile}.pub")))
    return verify_chains(store, log.chain_key, store.chains(None, discover=True), cps)


def test_checkpoints_sign_every_chain_head_and_skip_when_nothing_changed(
    log: Log, keyfile: Path, tmp_path: Path
) -> None:
    clock = FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    path = tmp_path / "checkpoints.jsonl"
    job = checkpointer(log, keyfile, path, clock)
    cp = job.checkpoint_now()
    a, b = log.chain_id("ws-a"), log.chain_id("ws-b")
    assert {k: (h.seq, h.workspace) for k, h in cp.heads.items()} == {
        "system": (1, ""),
        a: (4, "workspaces/ws-a"),
        b: (1, "workspaces/ws-b"),
    }
    assert Attacker(log.url).head(a) == (4, cp.heads[a].hash)
    clock.advance(60)
    assert job.tick() is None  # unchanged: nothing written
    log.append("ws-b")
    clock.advance(60)
    assert job.tick() is not None
    clock.advance(600)
    assert job.tick() is not None  # heartbeat even when unchanged
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["sig"] for line in lines)
    result = verify(log, path, keyfile)
    assert result.intact and result.checkpoints.count == 3


def test_tampered_or_foreign_checkpoints_make_the_log_unverified(
    log: Log, keyfile: Path, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    clock = FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    checkpointer(log, keyfile, path, clock).checkpoint_now()
    assert verify(log, path, keyfile).intact

    doc = json.loads(path.read_text())
    doc["heads"][log.chain_id("ws-a")]["seq"] = 2  # hide the last events from the checkpoint
    path.write_text(json.dumps(doc) + "\n")
    result = verify(log, path, keyfile)
    assert not result.intact
    assert (result.first.event, result.first.problem) == (f"{path}:1", "checkpoint_invalid")

    other = tmp_path / "other.key"
    create_signing_key(other)
    foreign = tmp_path / "foreign.jsonl"
    clock.advance(1)
    checkpointer(log, other, foreign, clock).checkpoint_now()
    result = verify(log, foreign, keyfile)
    assert result.first is not None and result.first.detail == "signed by another key"

    key = write_key_file(tmp_path / "chain.key", log.chain_key)
    pub = str(keyfile) + ".pub"
    cli = run_cli(log.url, "--chain-key-file", str(key), "--checkpoints", str(foreign),
                  "--public-key", pub)  # fmt: skip
    assert cli.code == 1 and cli.doc["problem"] == "checkpoint_invalid"


def test_a_workspace_chain_deleted_outright_is_truncated_from_event_1(
    log: Log, keyfile: Path, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    clock = FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    checkpointer(log, keyfile, path, clock).checkpoint_now()
    attacker = Attacker(log.url)
    attacker.drop_guards()
    chain = log.chain_id("ws-a")
    attacker.sql("DELETE FROM audit_events WHERE chain_id = :c", c=chain)
    attacker.sql("DELETE FROM audit_chain_heads WHERE chain_id = :c", c=chain)
    attacker.sql("DELETE FROM workspaces WHERE id = :c", c=chain)
    attacker.close()
    store = ChainStore(log.db)
    assert verify_chains(store, log.chain_key, store.chains(None, discover=True)).intact
    result = verify(log, path, keyfile)
    assert (result.first.event, result.first.problem) == (
        "workspaces/ws-a/auditEvents/1",
        "truncated",
    )
