"""Two vaults (in this process, each with its own engine, caches and committer) sharing one
PostgreSQL database and one set of keys, like two replicas of a fleet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import pg
from tests.support.vault import RunningVault, start_vault


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[RunningVault, RunningVault]]:
    admin, app_url = pg.provisioned_database()
    a = b = None
    try:
        a = start_vault(tmp_path / "a", app_url)
        (tmp_path / "b").mkdir(mode=0o700)
        for name in ("server.key", "keyring.json", "audit-checkpoint.key"):
            shutil.copy2(tmp_path / "a" / name, tmp_path / "b" / name)
        b = start_vault(tmp_path / "b", app_url, tokens=a.tokens)
        b.app.epoch_watcher.stop()  # B hears nothing: only the in-batch epoch check is left
        yield a, b
    finally:
        for v in (b, a):
            if v is not None:
                v.stop()
        pg.drop_database(admin)
