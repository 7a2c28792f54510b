"""Regression (issue 12): ``vaultctl --json audit verify`` and ``pipvault audit verify --json``
disagreed on field types (int64 counts as strings in one, numbers in the other) and keys. Both
now render the one ``VerifyAuditLogResponse`` the same way: run both on the same database, intact
and then tampered, and compare keys, types and verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.audit.audit_harness import Attacker
from tests.support.custody import make_workspace
from tests.support.vault import RunningVault

VAULTCTL = str(Path(sys.executable).with_name("vaultctl"))


def _shape(value: Any) -> Any:
    """Keys and JSON types, recursively (list elements by their shapes)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _both(vault: RunningVault) -> tuple[dict[str, Any], dict[str, Any]]:
    home = vault.home
    offline = subprocess.run(
        [sys.executable, "-m", "vault_server.cli.main", "audit", "verify", "--json",
         "--database-url", vault.app.settings.resolved_database_url(),
         "--server-key-file", str(home / "server.key"),
         "--checkpoints", str(home / "audit-checkpoints.jsonl"),
         "--public-key", str(home / "audit-checkpoint.key.pub")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    env = {
        **os.environ,
        "PIPVAULT_ADDR": vault.admin_target,
        "PIPVAULT_TOKEN": vault.tokens["auditor"],
    }
    online = subprocess.run(
        [VAULTCTL, "--json", "audit", "verify"], capture_output=True, text=True, timeout=60, env=env
    )
    assert offline.returncode == online.returncode, (offline.stderr, online.stderr)
    return json.loads(offline.stdout), json.loads(online.stdout)


def test_both_verifiers_print_one_schema(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    vault.app.checkpointer.checkpoint_now()

    offline, online = _both(vault)
    assert _shape(offline) == _shape(online)
    assert offline["intact"] is True and isinstance(offline["events_checked"], int)
    assert offline["checkpoints"]["valid"] >= 1 and isinstance(
        online["checkpoints"]["invalid"], int
    )
    for key in ("intact", "chains_checked", "first_bad_event", "problem", "findings"):
        assert offline[key] == online[key], key

    attacker = Attacker(vault.app.settings.resolved_database_url())
    try:
        attacker.drop_guards()
        attacker.sql("UPDATE audit_events SET reason = 'routine' WHERE action = 'workspace.create'")
    finally:
        attacker.close()
    offline, online = _both(vault)
    assert offline["intact"] is False and offline["findings"]
    assert _shape(offline) == _shape(online)
    for key in ("intact", "first_bad_event", "problem", "detail", "findings"):
        assert offline[key] == online[key], key
