"""Committed audit events, one JSON line each, for a log shipper (stdout or a file).

Decoupled from the audit write path: a follower reads what is *committed* in the audit table, in
each chain's order (per-chain ``id`` cursors, exactly like a following ``StreamAuditEvents``), and
remembers its position durably in a small JSON file (written atomically after the lines it covers
are flushed and, for a file sink, fsynced). Delivery is at least once: a crash between writing a
batch and saving the position repeats that batch on restart (never a gap); each line carries the
event's ``name`` and ``hash``, so a collector can drop repeats.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from vault_server.audit._query import AuditQuery
from vault_server.audit._store import Chain, ChainStore
from vault_server.observability.logging import get_logger
from vault_server.storage.models import AuditEvent

_log = get_logger("pipvault.audit_sink")
_OUTCOMES = {"success": "OUTCOME_SUCCESS", "denied": "OUTCOME_DENIED", "failed": "OUTCOME_FAILED"}
_ACTORS = {"user": "TYPE_USER", "service": "TYPE_SERVICE", "system": "TYPE_SYSTEM"}


def event_json(chain: Chain, row: AuditEvent) -> str:
    """One event as one JSON line, with the field names of the API's ``AuditEvent``."""
    when = row.event_time
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    doc: dict[str, Any] = {
        "name": chain.event(row.seq),
        "sequence": row.seq,
        "event_time": when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "workspace": row.workspace,
        "credential": row.credential,
        "action": row.action,
        "outcome": _OUTCOMES.get(row.outcome, "OUTCOME_UNSPECIFIED"),
        "actor": {
            "type": _ACTORS.get(row.actor_type, "TYPE_UNSPECIFIED"),
            "id": row.actor_id,
            "on_behalf_of": row.on_behalf_of,
        },
        "peer": row.peer,
        "reason": row.reason,
        "routing_context": row.routing_context,
        "request_id": row.request_id,
        "method": row.method,
        "error_reason": row.error_reason,
        "details": {str(k): str(v) for k, v in (row.details or {}).items()},
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


class LineFile:
    """Appends batches of lines to a 0600 file, one fsync per batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write_lines(self, lines: Sequence[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


class LineStream:
    """Writes batches of lines to a text stream (default: the process's stdout)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def write_lines(self, lines: Sequence[str]) -> None:
        out = self._stream or sys.stdout
        out.write("".join(line + "\n" for line in lines))
        out.flush()


class Position:
    """Per-chain ``id`` cursors, saved atomically (write a temp file, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, int]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        cursors = doc.get("chains", {}) if isinstance(doc, dict) else {}
        return {str(k): int(v) for k, v in cursors.items() if isinstance(v, int)}

    def save(self, cursors: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": 1, "chains": cursors}, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class AuditEventSink:
    """Follows the committed audit log and writes each event once (at least once on a crash)."""

    def __init__(
        self,
        store: ChainStore,
        writer: LineFile | LineStream,
        position: Position,
        *,
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._writer = writer
        self._position = position
        self._batch = batch_size
        self._cursors: dict[str, int] | None = None
        self._lock = threading.Lock()

    def tick(self) -> int:
        """Write everything committed since the last tick; returns how many events."""
        with self._lock:
            if self._cursors is None:
                self._cursors = self._position.load()
            total = 0
            while True:
                written = self._one_batch(self._cursors)
                total += written
                if written < self._batch:
                    return total

    def _one_batch(self, cursors: dict[str, int]) -> int:
        chains = self._store.chains(None)
        for chain in chains:
            cursors.setdefault(chain.id, 0)
        by_chain = {c.id: c for c in chains}
        rows = self._store.by_id(chains, cursors, AuditQuery(), self._batch, 10.0)
        merged = sorted(
            ((by_chain[cid], row) for cid, got in rows.items() for row in got),
            key=lambda pair: pair[1].id,
        )[: self._batch]
        if not merged:
            return 0
        # Only a prefix of the merged rows may be written: keep per-chain order (each chain's
        # rows are a prefix of what it returned, because the merge is by id within the chain).
        self._writer.write_lines([event_json(chain, row) for chain, row in merged])
        for chain, row in merged:
            cursors[chain.id] = max(cursors[chain.id], row.id)
        self._position.save(cursors)
        return len(merged)


def build_writer(kind: str, file: Path | None) -> LineFile | LineStream:
    if kind == "file":
        assert file is not None  # validated by the settings
        return LineFile(file)
    return LineStream()
