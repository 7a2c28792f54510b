"""Attack: a ciphertext that fails its integrity check (copied to another row, or its KEK
replaced) is refused, audited as INTEGRITY_CHECK_FAILED, and pages the on-call through the
outbox, once per credential and bucket however often it is tried."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.security.test_c09_copied_ciphertext import _copy_envelope, _sign
from tests.support.custody import make_workspace, onboard
from tests.support.vault import RunningVault, inspect_db, iter_audit, start_vault
from vault_server.crypto.providers import init_local_keyring
from vault_server.storage.models import PagerOutbox


def _integrity_pages(vault: RunningVault, expected: int) -> list[Any]:
    """The integrity pages in the outbox, waiting briefly for the background writer."""
    db = inspect_db(vault.app)
    rows: list[Any] = []
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            with db.transaction() as session:
                rows = [
                    r
                    for r in session.execute(select(PagerOutbox).order_by(PagerOutbox.id)).scalars()
                    if r.dedup_key.startswith("pipvault:integrity:")
                ]
            if len(rows) >= expected:
                time.sleep(0.3)  # a duplicate would have landed by now
                with db.transaction() as session:
                    rows = [
                        r
                        for r in session.execute(select(PagerOutbox)).scalars()
                        if r.dedup_key.startswith("pipvault:integrity:")
                    ]
                break
            time.sleep(0.05)
    finally:
        if db is not vault.app.db:
            db.dispose()
    return rows


def test_copied_ciphertext_pages_once_besides_the_audit_event(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    onboard(vault, "ws-a", "one", "K1" * 10, secrets.token_hex(16))
    onboard(vault, "ws-a", "two", "K2" * 10, secrets.token_hex(16))
    _copy_envelope(vault, "ws-a/one", "ws-a/two")
    for _ in range(3):
        err = _sign(vault, "router", "workspaces/ws-a/credentials/two")
        assert err is not None and err.reason == "INTEGRITY_CHECK_FAILED"
    pages = _integrity_pages(vault, 1)
    assert len(pages) == 1
    page = pages[0]
    assert page.dedup_key.startswith("pipvault:integrity:ws-a:two:")
    assert page.payload["class"] == "credential.integrity_check_failed"
    assert page.payload["custom_details"]["credential"] == "workspaces/ws-a/credentials/two"
    assert page.payload["custom_details"]["kek"] == "local:1"
    assert page.payload["severity"] == "critical"
    failed = [e for e in iter_audit(vault.app) if e.error_reason == "INTEGRITY_CHECK_FAILED"]
    assert len(failed) == 3  # every attempt is audited; the page is deduplicated
    # The intact credential still signs and pages nothing.
    assert _sign_ok(vault, "workspaces/ws-a/credentials/one")
    assert len(_integrity_pages(vault, 1)) == 1


def _sign_ok(vault: RunningVault, credential: str) -> bool:
    from pipsync.vault.v1 import signing_service_pb2 as spb
    from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
    from pipsync.vault.v1 import trading_pb2

    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=credential, strategy_id="s1", reason="route"),
        metadata=vault.md("router"), timeout=10,
    ).routing_context  # fmt: skip
    order = trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT)
    signed = stub.SignOrder(
        spb.SignOrderRequest(routing_context=rc.name, order=order, reason="sign"),
        metadata=vault.md("router"), timeout=10,
    )  # fmt: skip
    return "signature=" in signed.signed_request.url


def test_replaced_kek_pages(tmp_path: Path) -> None:
    home = tmp_path / "home"
    vault = start_vault(home)
    try:
        make_workspace(vault, "ws-a")
        onboard(vault, "ws-a", "main", "K" * 20, secrets.token_hex(16))
    finally:
        vault.stop()
    # Someone swaps the keyring for another one with the same version numbers.
    other = tmp_path / "other-keyring.json"
    init_local_keyring(other)
    shutil.copyfile(other, home / "keyring.json")
    vault = start_vault(home)
    try:
        for _ in range(2):
            err = _sign(vault, "router", "workspaces/ws-a/credentials/main")
            assert err is not None and err.reason == "INTEGRITY_CHECK_FAILED"
        pages = _integrity_pages(vault, 1)
        assert len(pages) == 1 and pages[0].dedup_key.startswith("pipvault:integrity:ws-a:main:")
    finally:
        vault.stop()
