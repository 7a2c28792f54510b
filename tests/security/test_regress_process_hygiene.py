"""Process hygiene (issue 12, Build 3), checked on real ``pipvault`` processes through /proc:
no core dumps and non-dumpable, umask 077 and owner-only files under the home, and no secret
passed by environment left in ``/proc/<pid>/environ`` or argv (the process re-executes itself
without them and still uses them)."""

from __future__ import annotations

import base64
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.regress_processes import (
    PIPVAULT,
    dev_policy,
    env_without_pipvault,
    free_port,
    running,
    wait_serving,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _proc(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


def _assert_hardened(pid: int, out_so_far: str = "") -> None:
    limits = _proc(pid, "limits").decode()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core
    status = _proc(pid, "status").decode()
    umask = next(line for line in status.splitlines() if line.startswith("Umask:"))
    assert umask.split()[1] == "0077", umask
    # Non-dumpable: /proc/<pid> files belong to root, so another process of the same (non-root)
    # user can read neither its environment nor its memory. (As root this holds trivially.)
    assert Path(f"/proc/{pid}/environ").stat().st_uid == 0


def test_serve_takes_secrets_from_env_without_leaving_them_in_proc(tmp_path: Path) -> None:
    server_key = base64.b64encode(secrets.token_bytes(32)).decode()
    vault_token = f"hvs.CANARY{secrets.token_hex(12)}"
    pager_key = f"CANARY{secrets.token_hex(13)}"
    for cmd in (["keys", "init-local", "--path", str(tmp_path / "keyring.json")],
                ["keys", "init-audit", "--path", str(tmp_path / "audit.key")],
                ["db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'vault.db'}"]):  # fmt: skip
        subprocess.run([*PIPVAULT, *cmd], check=True, capture_output=True, timeout=120)
    health = free_port()
    cfg = tmp_path / "prod.yaml"
    cfg.write_text(
        f"mode: production\ndatabase_url: sqlite:///{tmp_path / 'vault.db'}\n"
        f"policy_file: {dev_policy(tmp_path / 'policy.yaml')}\n"
        f"keys:\n  providers:\n    local: local://{tmp_path / 'keyring.json'}\n"
        f"audit:\n  checkpoint_key_file: {tmp_path / 'audit.key'}\n"
        f"  checkpoint_file: {tmp_path / 'checkpoints.jsonl'}\n"
        "paging:\n  kind: pagerduty\n  url: http://127.0.0.1:9\n"
        f"listen:\n  admin_address: 127.0.0.1:0\n  health_address: 127.0.0.1:{health}\n"
        "  metrics_address: null\n"
    )
    env = env_without_pipvault(
        PIPVAULT_SERVER_KEY=server_key,
        PIPVAULT_PAGERDUTY_ROUTING_KEY=pager_key,
        VAULT_TOKEN=vault_token,
    )
    with running(["serve", "--config", str(cfg)], env) as proc:
        # It serves: production mode needs the server key and the pager key it was handed.
        wait_serving(f"127.0.0.1:{health}", proc)
        environ, cmdline = _proc(proc.pid, "environ"), _proc(proc.pid, "cmdline")
        for value in (server_key, vault_token, pager_key):
            assert value.encode() not in environ and value.encode() not in cmdline
        assert b"PIPVAULT_SERVER_KEY=" not in environ and b"VAULT_TOKEN=" not in environ
        assert b"PIPVAULT_SECRETS_FD=" in environ  # only the handover's fd number
        _assert_hardened(proc.pid)
    out: str = proc.captured  # type: ignore[attr-defined]
    assert '"dumpable": "0", "umask": "0077", "event": "process.hardened"' in out
    for value in (server_key, vault_token, pager_key):
        assert value not in out


def test_every_file_under_the_dev_home_is_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = [free_port() for _ in range(4)]
    args = ["dev", "--home", str(home), "--admin-address", f"127.0.0.1:{ports[0]}",
            "--data-address", f"127.0.0.1:{ports[1]}", "--health-address", f"127.0.0.1:{ports[2]}",
            "--metrics-address", f"127.0.0.1:{ports[3]}"]  # fmt: skip
    # A permissive umask in the parent must not leak into the vault's files.
    old = os.umask(0o002)
    try:
        with running(args, env_without_pipvault()) as proc:
            wait_serving(f"127.0.0.1:{ports[2]}", proc)
            _assert_hardened(proc.pid)
            socket_mode = stat.S_IMODE((home / "data.sock").stat().st_mode)
            assert socket_mode == 0o660  # the shared-group socket is set explicitly
    finally:
        os.umask(old)
    assert proc.returncode == 0
    seen = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        seen.append(path.name)
        assert mode & 0o077 == 0, f"{path}: {oct(mode)}"
    assert {"vault.db", "keyring.json", "server.key", "dev-tokens.json", "policy.yaml"} <= set(seen)
