"""What ``pipvault dev`` prints: a vaultctl command that runs as printed, what storage and keys it
really uses, and every listener (issue 19 §8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault_server.cli.dev import (
    Endpoints,
    banner,
    describe_keys,
    describe_storage,
    vaultctl_command,
)
from vault_server.config import load_settings

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[3]
TOKENS = {"dev-security": "pvdev_sec", "dev-router": "pvdev_router"}


def _path_without_venv() -> str:
    keep = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
    return os.pathsep.join([*keep, "/usr/bin", "/bin"])


def _runs(command: str, cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    """The printed command line, typed into a shell with that PATH in that folder."""
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        ["bash", "-c", f"{command} --version"], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("where", ["repo", "elsewhere"])
def test_vaultctl_command_runs_as_printed_when_not_on_path(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = REPO if where == "repo" else tmp_path
    monkeypatch.setenv("PATH", _path_without_venv())
    command = vaultctl_command(cwd)
    assert command != "vaultctl"  # not on PATH: a bare name would be "command not found"
    if where == "elsewhere" or not VENV_BIN.resolve().is_relative_to(REPO):
        assert Path(command).is_absolute()
    else:
        assert not Path(command).is_absolute()  # e.g. .venv/bin/vaultctl under the checkout
    result = _runs(command, cwd, _path_without_venv())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("vaultctl ")


def test_vaultctl_command_is_the_bare_name_when_this_one_is_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = os.pathsep.join([str(VENV_BIN), _path_without_venv()])
    monkeypatch.setenv("PATH", path)
    assert vaultctl_command(tmp_path) == "vaultctl"
    assert _runs("vaultctl", tmp_path, path).returncode == 0


def test_another_vaultctl_first_on_path_is_not_the_one_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "bin"
    other.mkdir()
    (other / "vaultctl").write_text("#!/bin/sh\necho impostor\n")
    (other / "vaultctl").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(other), str(VENV_BIN), "/usr/bin", "/bin"]))
    command = vaultctl_command(tmp_path)
    assert Path(command).parent == VENV_BIN.resolve()


def _dev(tmp_path: Path, **overrides: object) -> object:
    return load_settings(
        None, mode="dev", home=str(tmp_path), listen={"data_socket": None}, **overrides
    )


def test_storage_and_keys_say_what_is_used(tmp_path: Path) -> None:
    settings = _dev(tmp_path)
    assert describe_storage(settings) == f"SQLite {tmp_path / 'vault.db'}"
    assert describe_keys(settings) == (
        f"local keyring {tmp_path / 'keyring.json'} (provider 'local')"
    )


def test_transit_primary_is_named_and_local_is_not_claimed(tmp_path: Path) -> None:
    settings = _dev(
        tmp_path,
        keys={
            "providers": {
                "transit": "vault-transit://transit/keys/pipvault",
                "local": f"local://{tmp_path / 'keyring.json'}",
            },
            "primary": "transit",
            "transit_address": "http://127.0.0.1:18299",
        },
    )
    text = describe_keys(settings)
    assert text.startswith("OpenBao/Vault transit key transit/keys/pipvault")
    assert "http://127.0.0.1:18299" in text and "also configured: local" in text
    assert not text.startswith("local keyring")


def test_postgres_url_password_is_never_shown(tmp_path: Path) -> None:
    settings = _dev(tmp_path, database_url="postgresql://app:hunter2@db.internal:5433/vault")
    text = describe_storage(settings)
    assert text == "PostgreSQL db.internal:5433/vault"
    assert "hunter2" not in text


def test_banner_shows_every_listener_and_the_runnable_command(tmp_path: Path) -> None:
    endpoints = Endpoints(
        admin="127.0.0.1:8201",
        data_socket=str(tmp_path / "data.sock"),
        data_address="127.0.0.1:8200",
        health="127.0.0.1:8202",
        metrics="127.0.0.1:8203",
    )
    text = banner(_dev(tmp_path), endpoints, TOKENS, ".venv/bin/vaultctl")
    assert "  metrics     : http://127.0.0.1:8203/metrics" in text
    assert "  health      : 127.0.0.1:8202" in text
    assert f"  data plane  : unix://{tmp_path / 'data.sock'} and 127.0.0.1:8200" in text
    assert "    .venv/bin/vaultctl workspaces list" in text
    assert "export PIPVAULT_ADDR=127.0.0.1:8201 PIPVAULT_TOKEN=pvdev_sec" in text
    off = banner(_dev(tmp_path), Endpoints("127.0.0.1:8201", "", "", "", ""), TOKENS, "vaultctl")
    assert "  metrics     : off" in off and "  data plane  : off" in off
