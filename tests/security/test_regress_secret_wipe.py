"""Secrets in mutable buffers are wiped after use where Python allows (issue 12, Build 3): the
``Secret`` buffer itself, and the data key of a seal or a cross-provider rewrap, which nothing
needs afterwards. (What Python cannot wipe is documented in ``core/secret.py``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.crypto.crypto_testkit import make_local
from vault_server.core.clock import SystemRandom
from vault_server.core.secret import Secret
from vault_server.crypto import envelope
from vault_server.crypto.envelope import EnvelopeBinding

BINDING = EnvelopeBinding("ws-uuid", "cred-uuid", 1)


def test_wipe_empties_the_buffer_in_place() -> None:
    secret = Secret(b"\x01" * 40)
    buffer: bytearray = secret._Secret__value  # type: ignore[attr-defined]
    revealed = secret.reveal()
    secret.wipe()
    assert buffer == bytearray() and len(secret) == 0 and not secret
    assert secret.reveal() == b""
    assert revealed == b"\x01" * 40  # a copy handed out earlier is not the buffer (see limits)


class _Recording:
    """Wraps a real provider and keeps the data-key objects it was asked to wrap."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.provider_id = inner.provider_id
        self.deks: list[Secret] = []

    def wrap(self, dek: Secret, aad: bytes) -> Any:
        assert len(dek) == 32  # intact while in use
        self.deks.append(dek)
        return self._inner.wrap(dek, aad)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_seal_and_rewrap_wipe_their_data_keys(tmp_path: Path) -> None:
    source = make_local(tmp_path, provider_id="a")
    target = _Recording(make_local(tmp_path, provider_id="b"))
    sealing = _Recording(source)
    blob = envelope.seal(Secret(b"api-secret"), BINDING, sealing, SystemRandom())  # type: ignore[arg-type]
    moved = envelope.rewrap(blob, BINDING, {"a": source}, target)  # type: ignore[arg-type]
    assert [len(d) for d in sealing.deks + target.deks] == [0, 0]  # wiped after use
    opened = envelope.open_envelope(moved, BINDING, {"a": source, "b": target._inner})
    assert opened.reveal() == b"api-secret"  # and everything still decrypts


def test_a_wiped_secret_cannot_authenticate_anything() -> None:
    key = Secret(b"k" * 32)
    key.wipe()
    with pytest.raises(Exception):
        envelope.AesGcm(key, SystemRandom())
