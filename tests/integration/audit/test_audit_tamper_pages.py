"""Issue 19 §4: an audit row edited by hand pages the on-call, once per break, whichever verifier
finds it: ``VerifyAuditLog``, the periodic verifier, ``pipvault audit verify`` (with database
access) and the checkpointer (a chain cut below its signed head). SQLite and PostgreSQL, a real
vault, a real tampered row, a real webhook receiver on loopback (or the outbox rows)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipsync.vault.v1 import audit_service_pb2 as apb
from pipsync.vault.v1 import audit_service_pb2_grpc as agrpc
from sqlalchemy import select

from tests.integration.audit.audit_harness import Attacker, Log, make_log, run_cli, write_key_file
from tests.integration.audit.test_paging_outbox import Receiver
from tests.support import pg
from tests.support.custody import make_workspace, onboard
from tests.support.vault import RunningVault, inspect_db, iter_audit, start_vault
from vault_server.storage.database import Database
from vault_server.storage.models import PagerOutbox

PAGE_CLASS = "audit.integrity_check_failed"
WS_A = "workspaces/ws-a/auditEvents"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _vault(home: Path, url: str, receiver: Receiver | None, **audit: Any) -> RunningVault:
    paging: dict[str, Any] = {"kind": "none"}
    if receiver is not None:
        paging = {"kind": "webhook", "url": f"{receiver.url}/hook", "sender_interval_s": 0.05}
    return start_vault(home, url, paging=paging, audit={"verify_interval_s": 0, **audit})


def _populate(vault: RunningVault, credentials: int = 3) -> str:
    """ws-a with events 1 (workspace.create) .. 1 + credentials; returns its chain id."""
    make_workspace(vault, "ws-a")
    for i in range(credentials):
        onboard(vault, "ws-a", f"c{i}", f"K{i}" * 10, secrets.token_hex(16))
    chains = {e.chain_id for e in iter_audit(vault.app) if e.workspace == "workspaces/ws-a"}
    (chain,) = chains
    return str(chain)


def _attacker(vault: RunningVault) -> Attacker:
    """Owner rights on the vault's database, the append-only guards dropped."""
    attacker = Attacker(pg.admin_for(vault.app.settings.resolved_database_url()))
    attacker.drop_guards()
    return attacker


def _edit(vault: RunningVault, chain: str, seq: int) -> None:
    attacker = _attacker(vault)
    try:
        attacker.sql(
            "UPDATE audit_events SET reason = 'routine' WHERE chain_id = :c AND seq = :s",
            c=chain, s=seq,
        )  # fmt: skip
    finally:
        attacker.engine.dispose()


def _pages(db: Database) -> list[PagerOutbox]:
    with db.transaction() as session:
        rows = session.execute(select(PagerOutbox).order_by(PagerOutbox.id)).scalars().all()
    return [r for r in rows if r.payload.get("class") == PAGE_CLASS]


def _outbox(vault: RunningVault) -> list[PagerOutbox]:
    db = inspect_db(vault.app)
    try:
        return _pages(db)
    finally:
        if db is not vault.app.db:
            db.dispose()


def _hooks(receiver: Receiver, at_least: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    """The integrity pages the webhook received, once ``at_least`` arrived (then a settle time
    in which a duplicate would have arrived too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [b for b in receiver.bodies() if b["payload"].get("class") == PAGE_CLASS]
        if len(got) >= at_least:
            break
        time.sleep(0.05)
    time.sleep(1.0)
    return [b for b in receiver.bodies() if b["payload"].get("class") == PAGE_CLASS]


def _verify(vault: RunningVault) -> apb.VerifyAuditLogResponse:
    return agrpc.AuditServiceStub(vault.channel()).VerifyAuditLog(
        apb.VerifyAuditLogRequest(), metadata=vault.md("auditor"), timeout=30
    )


def _names(page: dict[str, Any], seq: int, problem: str, found_by: str) -> None:
    details = page["custom_details"]
    assert details["first_bad_event"] == f"{WS_A}/{seq}" and details["seq"] == str(seq)
    assert details["problem"] == problem and details["chain"] == "workspaces/ws-a"
    assert details["found_by"] == found_by and page["severity"] == "critical"
    assert f"{WS_A}/{seq}" in page["summary"]


def test_verify_rpc_pages_a_tampered_row_once(
    tmp_path: Path, vault_database_url: str, receiver: Receiver
) -> None:
    vault = _vault(tmp_path / "home", vault_database_url, receiver)
    try:
        chain = _populate(vault)
        assert _verify(vault).intact and _hooks(receiver, 0) == []
        _edit(vault, chain, 2)
        for _ in range(2):  # the second verification finds the same break: no second page
            result = _verify(vault)
            assert not result.intact
            assert (result.first_bad_event, result.problem) == (f"{WS_A}/2", "hash_mismatch")
        hooks = _hooks(receiver)
        assert len(hooks) == 1
        _names(hooks[0]["payload"], 2, "hash_mismatch", "VerifyAuditLog")
        assert hooks[0]["dedup_key"] == f"pipvault:audit-integrity:{chain}:2:hash_mismatch"
        assert len(_outbox(vault)) == 1
    finally:
        vault.stop()


def test_periodic_verifier_pages_a_tampered_row_once(
    tmp_path: Path, vault_database_url: str, receiver: Receiver
) -> None:
    vault = _vault(tmp_path / "home", vault_database_url, receiver, verify_interval_s=0.2)
    try:
        chain = _populate(vault)
        time.sleep(0.5)  # intact runs page nothing
        _edit(vault, chain, 3)
        assert _hooks(receiver)  # the first run after the edit pages
        time.sleep(1.0)  # several more runs find the same break
        hooks = _hooks(receiver)
        assert len(hooks) == 1
        _names(hooks[0]["payload"], 3, "hash_mismatch", "periodic")
        # An RPC finding the same break pages nobody either.
        assert _verify(vault).first_bad_event == f"{WS_A}/3"
        assert len(_hooks(receiver)) == 1 and len(_outbox(vault)) == 1
    finally:
        vault.stop()


def test_chain_cut_below_its_signed_checkpoint_pages_once(
    tmp_path: Path, vault_database_url: str
) -> None:
    vault = _vault(tmp_path / "home", vault_database_url, None, checkpoint_interval_s=0.1)
    try:
        chain = _populate(vault)
        vault.app.checkpointer.checkpoint_now()  # signs ws-a at seq 4
        attacker = _attacker(vault)
        try:  # cut events 3 and 4 and rewind the head: what is left still links
            two = attacker.row(chain, 2)["hash"]
            attacker.sql("DELETE FROM audit_events WHERE chain_id = :c AND seq >= 3", c=chain)
            attacker.sql(
                "UPDATE audit_chain_heads SET seq = 2, hash = :h WHERE chain_id = :c",
                c=chain, h=two,
            )  # fmt: skip
        finally:
            attacker.engine.dispose()
        deadline = time.monotonic() + 10
        while not _outbox(vault) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # more checkpoints are written meanwhile: none signs the cut chain
        pages = _outbox(vault)
        assert len(pages) == 1
        _names(pages[0].payload, 3, "truncated", "checkpoint")
        result = _verify(vault)  # the latest checkpoint still reaches 4
        assert (result.first_bad_event, result.problem) == (f"{WS_A}/3", "truncated")
        assert len(_outbox(vault)) == 1
    finally:
        vault.stop()


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    log = make_log(database_url)
    log.append("ws-a", credential="c1", n=6)  # seq 1 (workspace.create) .. 7
    try:
        yield log
    finally:
        log.close()


def test_cli_with_database_access_pages_once_per_break(log: Log, tmp_path: Path) -> None:
    key = write_key_file(tmp_path / "chain.key", log.chain_key)
    chain = log.chain_id("ws-a")
    attacker = Attacker(log.url)
    attacker.drop_guards()
    try:
        attacker.sql(
            "UPDATE audit_events SET reason = 'routine' WHERE chain_id = :c AND seq = 5", c=chain
        )
        checked = run_cli(log.url, "--chain-key-file", str(key), "--no-page")
        assert checked.code == 1 and _pages(log.db) == []
        for _ in range(2):
            result = run_cli(log.url, "--chain-key-file", str(key))
            assert result.code == 1, result.stderr
            assert result.doc["first_bad_event"] == f"{WS_A}/5"
        pages = _pages(log.db)
        assert len(pages) == 1
        _names(pages[0].payload, 5, "hash_mismatch", "pipvault audit verify")
        assert pages[0].dedup_key == f"pipvault:audit-integrity:{chain}:5:hash_mismatch"
        # A new break (an earlier event) is another page.
        attacker.sql(
            "UPDATE audit_events SET reason = 'routine' WHERE chain_id = :c AND seq = 2", c=chain
        )
        assert run_cli(log.url, "--chain-key-file", str(key)).doc["first_bad_event"] == f"{WS_A}/2"
        pages = _pages(log.db)
        assert len(pages) == 2
        _names(pages[1].payload, 2, "hash_mismatch", "pipvault audit verify")
    finally:
        attacker.engine.dispose()
