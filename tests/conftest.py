"""Shared fixtures: backends (SQLite and real PostgreSQL) and a real running vault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import pg
from tests.support.vault import RunningVault, start_vault

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _isolate_logging() -> Iterator[None]:
    """Tests that configure logging (DEBUG capture, canaries) must not leak it to later tests."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


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


@pytest.fixture(params=BACKENDS)
def vault_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database ready for the server: SQLite (migrated at start), or PostgreSQL migrated by
    `pipvault db upgrade` and reached as the non-owner app role."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vault.db'}"
        return
    admin, app = pg.provisioned_database()
    try:
        yield app
    finally:
        pg.drop_database(admin)


@pytest.fixture
def vault_any_db(tmp_path: Path, vault_database_url: str) -> Iterator[RunningVault]:
    """The same vault, once on SQLite and once on PostgreSQL (as the app role)."""
    running = start_vault(tmp_path / "home", vault_database_url)
    try:
        yield running
    finally:
        running.stop()
