"""Fixtures of the key tests: moto's KMS in server mode and SoftHSM2 tokens (see kms_fixtures)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.integration.keys.kms_fixtures import MotoKms, SoftHsmToken, init_softhsm, start_moto

TOKENS = 16


@pytest.fixture(scope="session")
def moto_kms() -> Iterator[MotoKms]:
    """One KMS emulator for the run (tests that take it down start their own)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def softhsm_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """Hands out fresh tokens, all initialised before the library is first loaded."""
    tokens = init_softhsm(tmp_path_factory.mktemp("softhsm"), [f"pv-{i}" for i in range(TOKENS)])
    return iter(tokens.values())


@pytest.fixture
def hsm_token(softhsm_tokens: Iterator[SoftHsmToken]) -> SoftHsmToken:
    """A token of its own for one test (it may delete it)."""
    token = next(softhsm_tokens, None)
    if token is None:
        raise RuntimeError(f"more than {TOKENS} tests asked for a SoftHSM token: raise TOKENS")
    return token
