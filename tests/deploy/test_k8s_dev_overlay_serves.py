"""The dev overlay's rendered config and policy run a real `pipvault serve`: only the Pod-specific
paths and ports are moved into a temp dir and onto free loopback ports, and the policy's
placeholder hashes are replaced by hashes of tokens generated here. The health port says SERVING,
the data socket answers with the configured mode and group, the policy is enforced on the admin
plane, /metrics reports ready, and SIGTERM drains and removes the socket."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from tests.support.k8s_manifests import configmap, render

PIPVAULT = [sys.executable, "-m", "vault_server.cli.main"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as ch:
        return int(
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2).status
        )


def _wait_serving(target: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if _health(target) == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError("the vault did not become SERVING")


def test_dev_overlay_config_serves_through_the_socket_and_drains(tmp_path: Path) -> None:
    docs = render("dev")
    data = configmap(docs, "pipvault-config")["data"]
    config = yaml.safe_load(data["config.yaml"])
    policy = yaml.safe_load(configmap(docs, "pipvault-policy")["data"]["policy.yaml"])

    tokens = {p["id"]: secrets.token_urlsafe(32) for p in policy["principals"]}
    for principal in policy["principals"]:
        committed = principal["token_sha256"]
        principal["token_sha256"] = hashlib.sha256(tokens[principal["id"]].encode()).hexdigest()
        assert committed != principal["token_sha256"]
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "policy.yaml").write_text(yaml.safe_dump(policy))

    ports = {name: _free_port() for name in ("admin", "health", "metrics")}
    socket_path = tmp_path / "run" / "data.sock"
    socket_path.parent.mkdir()
    listen = config["listen"]
    assert listen["socket_mode"] == 0o660
    listen.update(
        data_socket=str(socket_path),
        admin_address=f"127.0.0.1:{ports['admin']}",
        health_address=f"127.0.0.1:{ports['health']}",
        metrics_address=f"127.0.0.1:{ports['metrics']}",
        socket_group=os.getgid(),  # the Pod's fsGroup; here a group this process may use
    )
    config.update(home=str(tmp_path / "home"), policy_file=str(tmp_path / "etc" / "policy.yaml"))
    config_file = tmp_path / "etc" / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPVAULT_")}
    proc = subprocess.Popen(
        [*PIPVAULT, "serve", "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        _wait_serving(f"127.0.0.1:{ports['health']}", proc)

        info = socket_path.stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == os.getgid()
        assert _health(f"unix:{socket_path}") == health_pb2.HealthCheckResponse.SERVING

        def list_workspaces(token: str) -> list[str]:
            with grpc.insecure_channel(f"127.0.0.1:{ports['admin']}") as ch:
                resp = rpc.WorkspaceServiceStub(ch).ListWorkspaces(
                    pb.ListWorkspacesRequest(),
                    metadata=[("authorization", f"Bearer {token}")],
                    timeout=5,
                )
            return [w.name for w in resp.workspaces]

        assert isinstance(list_workspaces(tokens["security-oncall"]), list)
        try:
            list_workspaces(secrets.token_urlsafe(32))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
        else:
            raise AssertionError("an unknown token was accepted")

        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=5)
            .read()
            .decode()
        )
        assert "pipvault_ready 1.0" in metrics
        for token in tokens.values():
            assert token not in metrics

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert not socket_path.exists()
        for token in tokens.values():
            assert token not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
