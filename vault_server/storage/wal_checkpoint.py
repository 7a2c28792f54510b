"""SQLite: checkpoint the write-ahead log from a thread of its own, never inside a signature.

By default SQLite checkpoints inside whichever commit pushes the WAL past 1,000 pages; on the
signing path that is the group committer, so every hundred-odd batches one of them also copies
the WAL into the database file and fsyncs it - the signatures waiting on that batch pay for it
(the p99). The committer's connection raises that threshold far out of the way (it remains a
backstop should this thread fall behind), and this thread runs a PASSIVE checkpoint every
``interval_s``: it never takes the writer lock, so it never blocks a batch.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from vault_server.observability.logging import get_logger

_log = get_logger("pipvault.wal_checkpoint")

# Pages the committer lets the WAL grow to before it checkpoints itself (the backstop; ~40 MB).
COMMITTER_AUTOCHECKPOINT_PAGES = 10_000


class WalCheckpointer:
    def __init__(self, engine: Engine, interval_s: float = 0.25) -> None:
        self._engine = engine
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._engine.dialect.name != "sqlite" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="pipvault-wal", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, WAL frames, frames checkpointed)."""
        raw = self._engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
            row = cur.fetchone()
            return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
        finally:
            raw.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.checkpoint()
            except Exception:  # never let the thread die; the committer's backstop remains
                _log.warning("wal_checkpoint.failed", exc_info=True)
