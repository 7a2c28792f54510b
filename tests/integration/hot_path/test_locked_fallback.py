"""When the cached state keeps moving (every fresh state already stale at commit), a call ends
on the locked single-transaction path, which keeps every promise of the hot path."""

from __future__ import annotations

import grpc
import pytest

from tests.support import signing_flow as sf
from tests.support.errors import call_error
from tests.support.vault import RunningVault, iter_audit
from vault_server.signing import _hot_path as hot_signing


def test_the_locked_path_signs_audits_and_refuses(
    vault_any_db: RunningVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = vault_any_db
    sf.create_workspace(vault)
    key = sf.binance_hmac()
    cred = sf.onboard(vault, key, "bn")
    rc = sf.begin(vault, cred.name).name
    monkeypatch.setattr(hot_signing, "ATTEMPTS", 0)  # no hot attempt: straight to the fallback
    first = sf.sign(vault, rc, sf.place_for(key, "locked-1"))
    assert first.audit_event
    with pytest.raises(grpc.RpcError) as dup:
        sf.sign(vault, rc, sf.place_for(key, "locked-1"))
    assert call_error(dup.value).reason == "DUPLICATE_CLIENT_ORDER_ID"
    sf.revoke(vault, cred.name)
    with pytest.raises(grpc.RpcError) as revoked:
        sf.sign(vault, rc, sf.place_for(key))
    assert call_error(revoked.value).reason == "CREDENTIAL_REVOKED"
    uses = [e for e in iter_audit(vault.app) if e.action == "credential.use"]
    assert [(e.outcome, e.error_reason) for e in uses] == [
        ("success", ""),
        ("denied", "DUPLICATE_CLIENT_ORDER_ID"),
        ("denied", "CREDENTIAL_REVOKED"),
    ]
    assert first.audit_event.endswith(f"/auditEvents/{uses[0].seq}")
