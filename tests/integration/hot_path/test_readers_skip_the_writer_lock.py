"""On SQLite the periodic readers (epoch poll, readiness ping, KEK lag check) run deferred
transactions: they read while a writer holds the lock, and never hold it themselves - so they
can neither wait on the group committer nor hold it up."""

from __future__ import annotations

import sqlite3

from tests.support.vault import RunningVault
from vault_server.keys._guard import kek_lag
from vault_server.storage.invalidation import read_epochs


def test_periodic_reads_proceed_while_another_connection_holds_the_writer_lock(
    vault: RunningVault,
) -> None:
    app = vault.app
    url = str(app.db.engine.url)
    assert url.startswith("sqlite:///")
    writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")  # what the committer holds during a batch
    try:
        epochs = read_epochs(app.db.engine)
        ok = app.db.ping()
        lag = kek_lag(app.db, app.keys.providers)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    # With BEGIN IMMEDIATE each would have waited out the busy timeout and failed ("database
    # is locked": read_epochs and kek_lag raise, ping answers False) - no clock needed.
    assert isinstance(epochs, dict) and ok and lag == []
