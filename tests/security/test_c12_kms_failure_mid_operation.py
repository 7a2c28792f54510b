"""Attack: the key provider (KMS) or the audit write fails in the middle of an operation.

A failing ``unwrap`` during SignOrder/ExecuteOrder, a failing ``wrap`` during onboarding or
rotation, and an audit append that fails after the credential rows were written: each answers
UNAVAILABLE with its one reason, returns no signature and no plaintext, and leaves no business
row behind (the transaction rolls back as a whole). The OpenBao outage itself is attacked in
tests/integration/keys/test_keys_migration_transit.py; the database going away and the audit
INSERT being revoked in test_c12_audit_fail_closed.py.
"""

from __future__ import annotations

import secrets
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from sqlalchemy import text

from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.custody import binance_request, creds
from tests.support.errors import call_error, expect_error
from tests.support.vault import RunningVault, inspect_db, iter_audit
from vault_server.core.errors import AuditUnavailable, KeyProviderUnavailable

# Not kek_state: its per-KEK wrap counter is reserved before the KMS is asked (a wrap whose answer
# was lost may still have happened), so it may only ever over-count: the safe direction.
TABLES = ("credentials", "credential_versions", "signed_orders")


def _rows(vault: RunningVault) -> list[Any]:
    db = inspect_db(vault.app)
    try:
        with db.transaction() as session:
            return [session.execute(text(f"SELECT * FROM {t}")).all() for t in TABLES]
    finally:
        if db is not vault.app.db:
            db.dispose()


def _down(*_: Any, **__: Any) -> Any:
    raise KeyProviderUnavailable("the key provider did not answer")


def test_kms_down_while_signing_returns_no_signature(
    vault: RunningVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf.create_workspace(vault, "ws-a")
    canary = new_canary()
    key = sf.binance_hmac(sf.new_api_key(), canary)
    cred = sf.onboard(vault, key, "bn")
    rc = sf.begin(vault, cred.name).name
    sf.sign(vault, rc, sf.place_for(key))  # healthy first
    monkeypatch.setattr(vault.app.keys.providers["local"], "unwrap", _down)
    # A local keyring's data keys stay unwrapped once used (as the DEK cache keeps a remote
    # provider's): forget them, as a KEK event would, so these uses must ask the provider.
    vault.app.keys.forget()
    before = _rows(vault)
    mark = sf.last_audit_id(vault)
    for method, request in (
        ("SignOrder", sf.sign_request(rc, sf.place_for(key))),
        ("ExecuteOrder", sf.execute_request(rc, sf.place_for(key))),
    ):
        try:
            getattr(sf.signing(vault), method)(request, metadata=vault.md("router"), timeout=10)
        except grpc.RpcError as exc:
            err = call_error(exc)
            assert (err.code, err.reason) == (
                grpc.StatusCode.UNAVAILABLE,
                "KEY_PROVIDER_UNAVAILABLE",
            ), (method, err)
            assert not find(
                canary, f"{err.message}{err.metadata}{exc.trailing_metadata()}".encode()
            )
        else:
            raise AssertionError(f"{method} answered while the KMS was down")
    assert _rows(vault) == before, "a refused use left a signed order or a changed row"
    rows = sf.audit_rows(vault, after=mark)
    assert rows and all(r.outcome != "success" for r in rows), [r.key() for r in rows]
    assert not find(canary, "".join(r.raw for r in rows).encode())


@pytest.mark.parametrize("operation", ["create", "rotate"])
def test_kms_down_while_sealing_writes_nothing(
    vault: RunningVault, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    sf.create_workspace(vault, "ws-a")
    existing = (
        creds(vault)
        .CreateCredential(
            binance_request("ws-a", "old", "K" * 24, secrets.token_hex(16)),
            metadata=vault.md("onboarding"),
            timeout=10,
        )
        .credential
    )
    monkeypatch.setattr(vault.app.keys.providers["local"], "wrap", _down)
    before = _rows(vault)
    canary = new_canary()
    if operation == "create":
        call, request = (
            creds(vault).CreateCredential,
            binance_request("ws-a", "new", "K" * 24, canary),
        )
    else:
        call, request = (
            creds(vault).RotateCredential,
            cpb.RotateCredentialRequest(
                name=existing.name,
                material=credential_pb2.SecretMaterial(api_key="K2" * 12, secret=canary),
                reason="rotate while the KMS is down",
            ),
        )
    err = expect_error(call, request, metadata=vault.md("onboarding"), timeout=10)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "KEY_PROVIDER_UNAVAILABLE")
    assert _rows(vault) == before
    assert not find(canary, "".join(repr(vars(e)) for e in iter_audit(vault.app)).encode())


def test_audit_failure_after_the_rows_are_written_rolls_everything_back(
    vault: RunningVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf.create_workspace(vault, "ws-a")
    before = _rows(vault)
    events = len(list(iter_audit(vault.app)))
    original = vault.app.audit.append

    def failing(session: Any, ctx: Any, record: Any) -> Any:
        if record.action == "credential.create":
            session.flush()  # the credential and version rows are in the transaction now
            raise AuditUnavailable("the audit event could not be written")
        return original(session, ctx, record)

    monkeypatch.setattr(vault.app.audit, "append", failing)
    err = expect_error(
        creds(vault).CreateCredential,
        binance_request("ws-a", "half", "K" * 24, secrets.token_hex(16)),
        metadata=vault.md("onboarding"),
        timeout=10,
    )
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "AUDIT_UNAVAILABLE")
    assert _rows(vault) == before, "a credential survived without its audit event"
    new = list(iter_audit(vault.app))[events:]
    assert not [e for e in new if e.action == "credential.create" and e.outcome == "success"]
