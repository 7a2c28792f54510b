"""Fixtures of the crypto unit tests: real local key providers on private temporary keyrings."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.unit.crypto.crypto_testkit import make_local
from vault_server.core.clock import FixedClock
from vault_server.crypto.providers.local import LocalKeyProvider

START = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def local(tmp_path: Path) -> LocalKeyProvider:
    return make_local(tmp_path)


@pytest.fixture(scope="module")
def shared_local(tmp_path_factory: pytest.TempPathFactory) -> LocalKeyProvider:
    """One keyring per module, for hypothesis tests (function fixtures do not mix with @given)."""
    directory = tmp_path_factory.mktemp("keyring")
    os.chmod(directory, 0o700)
    return make_local(directory)
