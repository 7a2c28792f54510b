"""Local keyrings: an envelope's data key is unwrapped once, then each use is one decryption.

The cache (``KeyManager._openers``) is keyed by envelope *and* binding, keeps only envelopes that
opened, and is dropped by every ``forget`` (KEK rotation or revocation, credential revocation,
freeze) - so it can neither open a moved or tampered ciphertext nor outlive a key event.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.custody import make_workspace, onboard
from tests.support.vault import RunningVault
from vault_server.core.errors import IntegrityCheckFailed
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.storage.models import Credential, CredentialVersion
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace


class _CountingUnwrap:
    def __init__(self, provider: Any) -> None:
        self.calls = 0
        self._inner = provider.unwrap
        provider.unwrap = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._inner(*args, **kwargs)


def _envelopes(vault: RunningVault) -> list[tuple[bytes, EnvelopeBinding]]:
    app = vault.app
    out = []
    with app.db.transaction() as session:
        workspaces = ws_repo.all_ids(session)
    for uid, _rid in workspaces:
        with app.db.transaction() as session:
            bind_workspace(session, uid)
            for v in session.execute(select(CredentialVersion)).scalars():
                cred = session.get(Credential, v.credential_id)
                assert cred is not None and v.envelope is not None
                out.append((v.envelope, EnvelopeBinding(uid, cred.id, v.version)))
    return out


def test_unwrapped_once_then_dropped_by_forget(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    secret = secrets.token_hex(24)
    onboard(vault, "ws-a", "c1", "K" * 20, secret)
    keys = vault.app.keys
    assert keys.local_only
    (blob, binding) = _envelopes(vault)[0]
    keys.forget()
    counter = _CountingUnwrap(keys.providers["local"])
    for _ in range(3):
        assert secret.encode() in keys.open(blob, binding).reveal()
    assert counter.calls == 1
    keys.forget()  # what KEK rotation/revocation, credential revocation and freeze call
    assert secret.encode() in keys.open(blob, binding).reveal()
    assert counter.calls == 2


def test_a_moved_or_tampered_envelope_never_opens_from_the_cache(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    onboard(vault, "ws-a", "c1", "K" * 20, secrets.token_hex(24))
    onboard(vault, "ws-a", "c2", "L" * 20, secrets.token_hex(24))
    keys = vault.app.keys
    (blob1, binding1), (_blob2, binding2) = _envelopes(vault)
    keys.open(blob1, binding1)  # cached for (blob1, binding1) only
    with pytest.raises(IntegrityCheckFailed):
        keys.open(blob1, binding2)  # the same ciphertext under another credential
    tampered = blob1[:-1] + bytes([blob1[-1] ^ 1])
    before = len(keys._openers)
    for _ in range(2):
        with pytest.raises(IntegrityCheckFailed):
            keys.open(tampered, binding1)
    assert len(keys._openers) == before  # a failed open leaves nothing behind
