"""The `pipvault` commands as real processes: dev mode serves and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from tests.support import pg

PIPVAULT = [sys.executable, "-m", "vault_server.cli.main"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_serving(target: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            with grpc.insecure_channel(target) as ch:
                status = (
                    health_pb2_grpc.HealthStub(ch)
                    .Check(health_pb2.HealthCheckRequest(), timeout=1)
                    .status
                )
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError("vault did not become SERVING")


def _dev(home: Path, ports: dict[str, int]) -> list[str]:
    """``pipvault dev`` on loopback ports: ``{"admin": port, "data": port, ...}``."""
    addresses = [(f"--{name}-address", f"127.0.0.1:{port}") for name, port in ports.items()]
    return [*PIPVAULT, "dev", "--home", str(home), *(arg for pair in addresses for arg in pair)]


def _popen(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _start_dev(
    home: Path, names: tuple[str, ...], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """``pipvault dev`` serving on free ports. A port found free can be taken (an outgoing
    connection's ephemeral port) before the server binds it: then the server exits saying so,
    and it starts again on other ports (at most three times)."""
    for attempt in range(3):
        ports = {name: _free_port() for name in names}
        proc = _popen(_dev(home, ports), env)
        try:
            _wait_serving(f"127.0.0.1:{ports['health']}", proc)
            return proc, ports
        except AssertionError as exc:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if "address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_dev_mode_serves_a_demo_workspace_and_drains_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, ports = _start_dev(home, ("admin", "data", "health", "metrics"))
    try:
        tokens = json.loads((home / "dev-tokens.json").read_text())
        assert oct((home / "dev-tokens.json").stat().st_mode & 0o777) == "0o600"
        assert oct((home / "server.key").stat().st_mode & 0o777) == "0o600"
        assert oct((home / "data.sock").stat().st_mode & 0o777) == "0o660"
        deadline = time.monotonic() + 10
        names: list[str] = []
        while time.monotonic() < deadline and "workspaces/demo" not in names:
            with grpc.insecure_channel(f"127.0.0.1:{ports['admin']}") as ch:
                resp = rpc.WorkspaceServiceStub(ch).ListWorkspaces(
                    pb.ListWorkspacesRequest(),
                    metadata=[("authorization", f"Bearer {tokens['dev-security']}")],
                    timeout=5,
                )
            names = [w.name for w in resp.workspaces]
            time.sleep(0.1)
        assert "workspaces/demo" in names
        import urllib.request

        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=5)
            .read()
            .decode()
        )
        assert "pipvault_rpc_total" in metrics and tokens["dev-security"] not in metrics
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "vault.stopped" in out and "DEV MODE" in out
        assert not (home / "data.sock").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_db_upgrade_on_postgres_then_production_refuses_an_old_schema(tmp_path: Path) -> None:
    url = pg.create_database()
    try:
        subprocess.run(
            [*PIPVAULT, "keys", "init-audit", "--path", str(tmp_path / "audit.key")],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        missing = subprocess.run(
            [*PIPVAULT, "serve", "--config", str(_prod_config(tmp_path, url))],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PIPVAULT_SERVER_KEY": "A" * 44},
        )  # fmt: skip
        assert missing.returncode == 2 and "keyring" in missing.stderr  # never created silently
        assert (tmp_path / "audit.key.pub").exists()
        made = subprocess.run(
            [*PIPVAULT, "keys", "init-local", "--path", str(tmp_path / "keyring.json")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (
            made.returncode == 0
            and oct((tmp_path / "keyring.json").stat().st_mode & 0o777) == "0o600"
        )
        again = subprocess.run(
            [*PIPVAULT, "keys", "init-local", "--path", str(tmp_path / "keyring.json")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 2
        bare = subprocess.run(
            [*PIPVAULT, "serve", "--config", str(_prod_config(tmp_path, url))],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PIPVAULT_SERVER_KEY": "A" * 44},
        )  # fmt: skip
        assert bare.returncode == 2 and "pipvault db upgrade" in bare.stderr
        up = subprocess.run(
            [*PIPVAULT, "db", "upgrade", "--database-url", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        head = sorted(MIGRATIONS.glob("0*.py"))[-1].name[:4]  # the newest migration's revision
        assert (
            up.returncode == 0 and f"schema at {head}" in up.stdout and "pipvault_app" in up.stdout
        )
    finally:
        pg.drop_database(url)


MIGRATIONS = Path(__file__).resolve().parents[2] / "vault_server/storage/migrations/versions"


def test_invalid_config_stops_startup_naming_the_setting(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("mode: dev\nlimits:\n  max_deadline_s: -1\n")
    result = subprocess.run(
        [*PIPVAULT, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "limits.max_deadline_s" in result.stderr


def test_a_missing_uvloop_stops_startup_naming_the_setting(tmp_path: Path) -> None:
    """On a machine without uvloop the default loop cannot start: one line naming
    ``event_loop`` and exit 2, before anything is created; ``event_loop: asyncio`` serves."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "uvloop.py").write_text("raise ImportError('no uvloop on this platform')\n")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPVAULT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), *filter(None, [env.get("PYTHONPATH")])])
    argv = _dev(home, {"admin": _free_port(), "data": _free_port()})
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "pipvault: event_loop: uvloop is not installed here; install it or set event_loop: asyncio"
    ]
    assert not (home / "data.sock").exists()
    env["PIPVAULT_EVENT_LOOP"] = "asyncio"
    health = _free_port()
    proc = _popen([*argv, "--health-address", f"127.0.0.1:{health}"], env)
    try:
        _wait_serving(f"127.0.0.1:{health}", proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert re.findall(r"vault\.serving .*event_loop=(\w+)", out) == ["asyncio"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _prod_config(tmp_path: Path, url: str) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "principals:\n  - id: ops\n    type: user\n    roles: [security]\n"
        f"    workspaces: ['*']\n    token_sha256: '{'0' * 64}'\n"
    )
    cfg = tmp_path / "prod.yaml"
    cfg.write_text(
        f"mode: production\ndatabase_url: {url}\npolicy_file: {policy}\n"
        f"keys:\n  providers:\n    local: local://{tmp_path}/keyring.json\n"
        f"audit:\n  checkpoint_key_file: {tmp_path}/audit.key\n"
        f"  checkpoint_file: {tmp_path}/checkpoints.jsonl\n"
        "listen:\n  admin_address: 127.0.0.1:0\n  health_address: 127.0.0.1:0\n  metrics_address: null\n"
    )
    return cfg


@pytest.mark.parametrize("configured", [None, "asyncio"])
def test_serve_runs_on_the_configured_event_loop(tmp_path: Path, configured: str | None) -> None:
    """uvloop by default (core.event_loop); ``event_loop: asyncio`` selects the standard loop.
    Either way the server freezes its start-up heap before serving (core.heap), answers, and
    SIGTERM drains it to a clean exit."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "PIPVAULT_EVENT_LOOP"}
    if configured is not None:
        env["PIPVAULT_EVENT_LOOP"] = configured
    proc, ports = _start_dev(home, ("admin", "data", "health"), env)
    try:
        tokens = json.loads((home / "dev-tokens.json").read_text())
        md = [("authorization", f"Bearer {tokens['dev-security']}")]
        with grpc.insecure_channel(f"127.0.0.1:{ports['admin']}") as ch:
            stub = rpc.WorkspaceServiceStub(ch)
            assert stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=md, timeout=5)
            with pytest.raises(grpc.RpcError) as missing:  # the error path runs on it too
                stub.GetWorkspace(
                    pb.GetWorkspaceRequest(name="workspaces/nope"), metadata=md, timeout=5
                )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        # dev mode logs for the console: `vault.serving ... event_loop=<kind> ...`
        assert re.findall(r"vault\.serving .*event_loop=(\w+)", out) == [configured or "uvloop"]
        # start-up objects were moved out of the collector's way before serving (core.heap)
        (frozen,) = re.findall(r"vault\.heap_frozen .*objects=(\d+)", out)
        assert int(frozen) > 10_000
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
