"""The prod overlay's rendered config runs a real `pipvault serve` against real PostgreSQL and a
real OpenBao over TLS (derived aes256-gcm96 transit key, least-privilege token), with its key files
prepared exactly as the Pod prepares them: written group-readable as kubelet writes Secret files
under fsGroup, then copied by the `pipvault-key-files` init container's own command.

Only what cannot exist outside a cluster is moved: paths into a temp dir, ports onto free loopback
ports, the database URL to a test database (the test server has no TLS client-certificate auth)
and the OpenBao address to the test server. Everything else (mode, key provider, checkpoint sink,
paging, limits) is the committed prod config."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from tests.integration.crypto.openbao import free_port, start_openbao, transit_policy
from tests.support import pg
from tests.support.k8s_manifests import SIDECAR, configmap, pod, render

PIPVAULT = [sys.executable, "-m", "vault_server.cli.main"]
SECRET_DIR = "/var/run/secrets/pipvault/keys"  # where the init container reads the Secret
KEYS_DIR = "/run/pipvault-keys"  # where it copies the files, and pipvault reads them

pytestmark = [pytest.mark.postgres, pytest.mark.openbao]


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as ch:
        return int(
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2).status
        )


def _wait_serving(target: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"pipvault exited {proc.returncode}: {err[-2000:]}")
        try:
            if _health(target) == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError("the vault did not become SERVING")


def test_prod_overlay_config_serves_on_postgres_and_openbao_transit(tmp_path: Path) -> None:
    docs = render("prod")
    data = configmap(docs, "pipvault-config")["data"]
    helper = pod(docs).container(f"{SIDECAR}-key-files")

    bao = start_openbao(tmp_path / "openbao", tls=True)
    admin_url = None
    proc: subprocess.Popen[str] | None = None
    try:
        config = yaml.safe_load(data["config.yaml"])
        transit_uri = config["keys"]["providers"][config["keys"]["primary"]]
        mount, _, name = transit_uri.removeprefix("vault-transit://").partition("/keys/")
        bao.create_transit_key(name, mount=mount)
        vault_token = bao.create_token("pipvault-transit", transit_policy(mount, name))
        assert bao.ca_file is not None

        # --- the Secret, as kubelet writes it under fsGroup: group-readable (0440)
        secret_dir = tmp_path / "secret"
        secret_dir.mkdir()
        subprocess.run(
            [*PIPVAULT, "keys", "init-audit", "--path", str(secret_dir / "audit-checkpoint.key")],
            check=True,
            capture_output=True,
            timeout=60,
        )
        (secret_dir / "server.key").write_text(base64.b64encode(os.urandom(32)).decode())
        (secret_dir / "openbao-ca.crt").write_bytes(bao.ca_file.read_bytes())
        for unused in ("db-client.crt", "db-client.key", "db-ca.crt"):  # test DB: no TLS
            (secret_dir / unused).write_text("unused by this test\n")
        for f in secret_dir.iterdir():
            f.chmod(0o440)

        # --- the init container's own command, with the two directories moved
        keys_dir = tmp_path / "keys"
        keys_dir.mkdir()
        command = [
            arg.replace(SECRET_DIR, str(secret_dir)).replace(KEYS_DIR, str(keys_dir))
            for arg in helper["command"]
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        for f in keys_dir.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o400, f

        # --- the committed config, with Pod paths moved and cluster endpoints replaced
        text = data["config.yaml"].replace(f"{KEYS_DIR}/", f"{keys_dir}/")
        text = text.replace("/etc/pipvault/", f"{tmp_path}/etc/").replace(
            "/run/pipvault/", f"{tmp_path}/run/"
        )
        config = yaml.safe_load(text)
        admin_url, app_url = pg.provisioned_database()
        config["database_url"] = app_url
        config["keys"]["transit_address"] = bao.address
        ports = {n: free_port() for n in ("admin", "health", "metrics")}
        config["listen"].update(
            admin_address=f"127.0.0.1:{ports['admin']}",
            health_address=f"127.0.0.1:{ports['health']}",
            metrics_address=f"127.0.0.1:{ports['metrics']}",
            socket_group=os.getgid(),
        )
        (tmp_path / "run").mkdir()
        (tmp_path / "etc").mkdir()
        policy = yaml.safe_load(configmap(docs, "pipvault-policy")["data"]["policy.yaml"])
        tokens = {p["id"]: secrets.token_urlsafe(32) for p in policy["principals"]}
        for principal in policy["principals"]:
            principal["token_sha256"] = hashlib.sha256(tokens[principal["id"]].encode()).hexdigest()
        (tmp_path / "etc" / "policy.yaml").write_text(yaml.safe_dump(policy))
        config["policy_file"] = str(tmp_path / "etc" / "policy.yaml")
        config_file = tmp_path / "etc" / "config.yaml"
        config_file.write_text(yaml.safe_dump(config))

        pager_key = secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPVAULT_", "VAULT_"))}
        env.update(
            {
                config["keys"]["transit_token_env"]: vault_token,
                config["paging"]["routing_key_env"]: pager_key,
            }
        )

        # --- why the copy step exists: pipvault refuses the Secret's group-readable files
        raw = dict(config, server_key_file=str(secret_dir / "server.key"))
        raw_file = tmp_path / "etc" / "raw.yaml"
        raw_file.write_text(yaml.safe_dump(raw))
        refused = subprocess.run(
            [*PIPVAULT, "serve", "--config", str(raw_file)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert refused.returncode == 2, refused.stderr
        assert "must not be readable by group or others" in refused.stderr

        # --- the real thing
        proc = subprocess.Popen(
            [*PIPVAULT, "serve", "--config", str(config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        _wait_serving(f"127.0.0.1:{ports['health']}", proc)
        socket_path = tmp_path / "run" / "data.sock"
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o660
        assert _health(f"unix:{socket_path}") == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(f"127.0.0.1:{ports['admin']}") as ch:
            rpc.WorkspaceServiceStub(ch).CreateWorkspace(
                pb.CreateWorkspaceRequest(workspace_id="desk-a", reason="deploy test"),
                metadata=[("authorization", f"Bearer {tokens['security-oncall']}")],
                timeout=10,
            )
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=5)
            .read()
            .decode()
        )
        assert "pipvault_ready 1.0" in metrics

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        # checkpoints go to stdout (audit.checkpoint_sink: stdout), logs to stderr
        checkpoints = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert checkpoints
        assert all(c["type"] == "pipvault.audit.checkpoint" for c in checkpoints)
        assert any(c["heads"] for c in checkpoints), "the workspace's chain head was signed"
        for secret in (vault_token, pager_key, *tokens.values()):
            assert secret not in out and secret not in err
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        bao.stop()
        if admin_url is not None:
            pg.drop_database(admin_url)
