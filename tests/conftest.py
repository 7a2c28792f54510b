"""Shared fixtures: backends (SQLite and real PostgreSQL) and a real running vault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import pg
from tests.support.vault import RunningVault, start_vault

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vault.db'}"
        return
    url = pg.create_database()
    try:
        yield url
    finally:
        pg.drop_database(url)


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[RunningVault]:
    """A vault on SQLite with every listener on real sockets."""
    running = start_vault(tmp_path / "home")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def vault_any_db(tmp_path: Path, database_url: str) -> Iterator[RunningVault]:
    """The same, once on SQLite and once on PostgreSQL."""
    running = start_vault(tmp_path / "home", database_url)
    try:
        yield running
    finally:
        running.stop()
