"""Operating a replica: /metrics only on the metrics port, rpc log lines with request id and
peer, `vaultctl audit tail --follow` across a server restart (no gap, no duplicate), `vaultctl
audit export --format jsonl`, and the audit event sink (one JSON line per committed event)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.integration.fleet.fleet import Fleet
from tests.support.signing_flow import coid

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]
VAULTCTL = [sys.executable, "-m", "vaultctl"]


def _db_event_names(admin_url: str) -> list[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT chain_id, workspace, seq FROM audit_events ORDER BY id"
        ).fetchall()
    return [
        f"system/auditEvents/{seq}" if chain == "system" or not ws else f"{ws}/auditEvents/{seq}"
        for chain, ws, seq in rows
    ]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_metrics_logs_tail_across_restart_export_and_event_sink(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "fleet")
    tail = None
    try:
        sink = tmp_path / "siem" / "audit-events.jsonl"
        a = fleet.start("a", audit={"event_sink": "file", "event_file": str(sink)})
        fleet.make_workspace(a, "desk")
        cred = fleet.onboard(a, "desk", "c1")
        assert a.sign(a.begin_routing(cred), coid("m")).signed_request.url

        env = {**os.environ, "PIPVAULT_ADDR": a.admin, "PIPVAULT_TOKEN": fleet.tokens["auditor"]}
        tail = subprocess.Popen(
            [*VAULTCTL, "--json", "audit", "tail", "--follow"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        printed: list[str] = []

        def read() -> None:
            assert tail is not None and tail.stdout is not None
            for line in tail.stdout:
                printed.append(json.loads(line)["name"])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def caught_up(timeout: float = 20) -> list[str]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                expected = _db_event_names(fleet.admin_url)
                if set(expected) <= set(printed):
                    return expected
                time.sleep(0.2)
            raise AssertionError(f"tail did not catch up: {len(printed)} printed")

        caught_up()
        fleet.restart(a)  # the tail's stream breaks here; it must resume, not restart
        for i in range(2):
            cred_i = fleet.onboard(a, "desk", f"r{i}")
            assert a.sign(a.begin_routing(cred_i), coid("r")).signed_request.url
        expected = caught_up()
        assert len(printed) == len(set(printed)), "duplicate events after the restart"
        assert set(printed) <= set(_db_event_names(fleet.admin_url))  # nothing invented
        tail.terminate()
        tail.wait(timeout=10)
        assert "resuming" in (tail.stderr.read() if tail.stderr else "")

        # export: the backlog as JSON Lines, chain order kept, nothing else on stdout.
        export = subprocess.run(
            [*VAULTCTL, "audit", "export", "--since", "1h", "--format", "jsonl"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert export.returncode == 0, export.stderr
        exported = [json.loads(line) for line in export.stdout.splitlines()]
        assert {e["name"] for e in exported} >= set(expected)
        desk = [int(e["sequence"]) for e in exported if e["workspace"] == "workspaces/desk"]
        assert desk == sorted(desk) and len(desk) == len(set(desk))

        # /metrics only, with the key-provider, readiness and RPC families; nothing secret.
        status, body = _get(f"{a.metrics_url}/metrics")
        assert status == 200
        assert "pipvault_ready 1.0" in body
        assert 'pipvault_degraded{component="key_provider"} 0.0' in body
        assert 'pipvault_kms_request_seconds_count{operation="wrap",provider="local"}' in body
        assert "pipvault_pager_backlog" in body and "pipvault_rpc_total" in body
        assert all(token not in body for token in fleet.tokens.values())
        for path in ("/", "/metrics/x", "/debug", "/favicon.ico"):
            assert _get(f"{a.metrics_url}{path}")[0] == 404

        # Every rpc log line names its request id and peer.
        rpc_lines = [
            doc
            for doc in (json.loads(x) for x in a.output().splitlines() if x.startswith("{"))
            if doc.get("event") == "rpc"
        ]
        assert len(rpc_lines) >= 6
        assert all(d["request_id"] and d["peer"] for d in rpc_lines)

        # The event sink wrote every committed event once, in each chain's order.
        a.stop()  # the last tick runs on shutdown
        written = [json.loads(line) for line in sink.read_text().splitlines()]
        names = [e["name"] for e in written]
        final = _db_event_names(fleet.admin_url)
        assert sorted(names) == sorted(final) and len(names) == len(set(names))
        desk_seqs = [e["sequence"] for e in written if e["workspace"] == "workspaces/desk"]
        assert desk_seqs == sorted(desk_seqs)
        assert all(len(e["hash"]) == 64 for e in written)
        assert oct(sink.stat().st_mode & 0o777) == "0o600"
        assert (sink.parent / "audit-events.jsonl.position").exists()
    finally:
        if tail is not None and tail.poll() is None:
            tail.kill()
        fleet.close()
