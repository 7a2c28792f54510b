"""The audit event sink: a follower of the committed log writes each event as one JSON line, in
each chain's order, remembers its position in a file, continues after a restart without a
duplicate, and after a crash that lost the position repeats (never skips). SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.audit.audit_harness import Log, make_log
from vault_server.audit._sink import AuditEventSink, LineFile, LineStream, Position
from vault_server.audit._store import ChainStore


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    log = make_log(database_url)
    try:
        yield log
    finally:
        log.close()


def _sink(log: Log, out: Path, batch_size: int = 500) -> AuditEventSink:
    position = Position(out.with_name(out.name + ".position"))
    return AuditEventSink(ChainStore(log.db), LineFile(out), position, batch_size=batch_size)


def _names(out: Path) -> list[str]:
    return [json.loads(line)["name"] for line in out.read_text().splitlines()]


def test_each_committed_event_once_in_chain_order_across_restarts(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "siem" / "events.jsonl"
    log.append("ws-a", credential="c1", n=3)
    log.append("ws-b", credential="c9", n=2)
    first = _sink(log, out, batch_size=2)  # several batches per tick
    written = first.tick()
    names = _names(out)
    assert written == len(names) >= 5 and len(set(names)) == len(names)
    for ws in ("ws-a", "ws-b"):
        seqs = [int(n.rsplit("/", 1)[1]) for n in names if n.startswith(f"workspaces/{ws}/")]
        assert seqs == list(range(1, len(seqs) + 1))  # every event of the chain, in order
    assert first.tick() == 0  # nothing new: nothing written

    log.append("ws-a", "credential.rotate", credential="c1")
    restarted = _sink(log, out)  # a new process: position from the file
    assert restarted.tick() == 1
    after = _names(out)
    assert after[:-1] == names and after[-1].startswith("workspaces/ws-a/auditEvents/")
    doc = json.loads(out.read_text().splitlines()[-1])
    assert doc["action"] == "credential.rotate" and doc["outcome"] == "OUTCOME_SUCCESS"
    assert len(doc["hash"]) == 64 and doc["event_time"].endswith("Z")
    assert oct(out.stat().st_mode & 0o777) == "0o600"

    # A crash after writing but before saving the position: the batch repeats, nothing is lost.
    out.with_name(out.name + ".position").unlink()
    again = _sink(log, out)
    assert again.tick() == len(after)
    assert _names(out) == after + after


def test_stdout_sink_writes_json_lines(log: Log, tmp_path: Path) -> None:
    log.append("ws-a", credential="c1", n=2)
    stream = io.StringIO()
    sink = AuditEventSink(
        ChainStore(log.db), LineStream(stream), Position(tmp_path / "stdout.position")
    )
    assert sink.tick() >= 2
    lines = stream.getvalue().splitlines()
    assert all(json.loads(line)["name"] for line in lines)
    assert json.loads((tmp_path / "stdout.position").read_text())["chains"]
