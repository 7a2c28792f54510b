"""What a new user meets in the first hour, as real processes (issue 19 §8): ``--version`` on both
CLIs, and a ``pipvault dev`` banner whose commands run as printed and whose addresses answer."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.e2e.test_cli_processes import _dev, _free_port, _wait_serving

VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("argv", "distribution"),
    [
        ([str(VENV_BIN / "pipvault"), "--version"], "pipvault"),
        ([sys.executable, "-m", "vault_server.cli.main", "--version"], "pipvault"),
        ([str(VENV_BIN / "vaultctl"), "--version"], "pipvault-client"),
    ],
)
def test_version_prints_the_installed_version(argv: list[str], distribution: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    name = Path(argv[0]).name if "-m" not in argv else "pipvault"
    assert result.stdout == f"{name} {version(distribution)}\n"
    assert "usage" not in result.stdout + result.stderr


def _path_without_venv() -> str:
    keep = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
    return os.pathsep.join([*keep, "/usr/bin", "/bin"])


def read_banner(proc: subprocess.Popen[str]) -> list[str]:
    """Lines of stdout up to the banner's last line (the process keeps running)."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if "Ctrl-C stops the vault." in line:
            return lines
    raise AssertionError("no banner:\n" + "\n".join(lines[-40:]))


def banner_value(lines: list[str], label: str) -> str:
    for line in lines:
        if line.strip().startswith(f"{label} "):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {label!r} line in the banner")


def test_dev_banner_commands_run_as_printed_and_metrics_answer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = {name: _free_port() for name in ("admin", "data", "health", "metrics")}
    env = {**os.environ, "PATH": _path_without_venv()}  # vaultctl is not on PATH (no activate)
    proc = subprocess.Popen(
        _dev(home, ports), cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = read_banner(proc)
        _wait_serving(f"127.0.0.1:{ports['health']}", proc)
        assert banner_value(lines, "storage") == f"SQLite {home.resolve() / 'vault.db'}"
        assert banner_value(lines, "keys").startswith("local keyring")
        assert banner_value(lines, "health") == f"127.0.0.1:{ports['health']}"
        metrics = banner_value(lines, "metrics")
        assert metrics == f"http://127.0.0.1:{ports['metrics']}/metrics"
        with urllib.request.urlopen(metrics, timeout=5) as answer:
            assert b"pipvault_rpc_total" in answer.read()
        tried = lines[lines.index("  try:") + 1 : -1]
        assert tried[0].strip().startswith("export PIPVAULT_ADDR=")
        script = "\n".join(line.strip() for line in tried) + " --json"
        result = subprocess.run(
            ["bash", "-e", "-c", script], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, (shlex.join(tried), result.stderr)
        assert "workspaces/demo" in result.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
