"""Fixtures for the crypto integration tests: one real OpenBao dev server per session."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.crypto.openbao import OpenBao, start_openbao


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A running OpenBao dev server with transit enabled at ``transit/``; killed at the end."""
    server = start_openbao(tmp_path_factory.mktemp("openbao"))
    try:
        server.enable_transit("transit")
        yield server
    finally:
        server.stop()


@pytest.fixture
def transit_key(openbao: OpenBao) -> str:
    """A fresh derived aes256-gcm96 key (unique name per test)."""
    name = f"kek-{secrets.token_hex(4)}"
    openbao.create_transit_key(name)
    return name


@pytest.fixture
def own_openbao(tmp_path: Path) -> Iterator[OpenBao]:
    """A private server a test may stop (starts in well under a second)."""
    server = start_openbao(tmp_path / "openbao")
    try:
        yield server
    finally:
        server.stop()
