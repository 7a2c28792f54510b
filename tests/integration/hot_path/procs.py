"""Real ``pipvault dev`` server processes for the hot-path tests (kill -9, two replicas).

Replicas share one key material set (server key, local keyring, checkpoint key, dev tokens),
copied from the first home before the next process starts, and one database given through
``PIPVAULT_DATABASE_URL``; each has its own home, sockets and ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

PIPVAULT = [sys.executable, "-m", "vault_server.cli.main"]
SHARED = ("server.key", "keyring.json", "audit-checkpoint.key", "dev-tokens.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    home: Path
    database_url: str | None
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> str:
        return f"127.0.0.1:{self.ports['admin']}"

    @property
    def data(self) -> str:
        return f"unix:{self.home / 'data.sock'}"

    def tokens(self) -> dict[str, str]:
        tokens: dict[str, str] = json.loads((self.home / "dev-tokens.json").read_text())
        return tokens

    def start(self, timeout: float = 60) -> ServerProcess:
        self.ports = {n: free_port() for n in ("admin", "data", "health", "metrics")}
        env = {**os.environ}
        if self.database_url:
            env["PIPVAULT_DATABASE_URL"] = self.database_url
        log = open(self.home.parent / f"{self.home.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *PIPVAULT, "dev", "--home", str(self.home),
                "--admin-address", self.admin,
                "--data-address", f"127.0.0.1:{self.ports['data']}",
                "--health-address", f"127.0.0.1:{self.ports['health']}",
                "--metrics-address", f"127.0.0.1:{self.ports['metrics']}",
            ],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        log.close()
        self._wait_serving(timeout)
        return self

    def _wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        target = f"127.0.0.1:{self.ports['health']}"
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.output()
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
        raise AssertionError("vault did not become SERVING:\n" + self.output())

    def output(self) -> str:
        path = self.home.parent / f"{self.home.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def replica_of(first: ServerProcess, home: Path) -> ServerProcess:
    """A second server on the first one's database and key material."""
    home.mkdir(parents=True, mode=0o700)
    for name in SHARED:
        shutil.copy2(first.home / name, home / name)
    return ServerProcess(home, first.database_url)


def audit_verify(database_url: str, home: Path) -> tuple[int, dict[str, object]]:
    """``pipvault audit verify`` as a process (checkpoints included); (exit code, report)."""
    args = [
        *PIPVAULT, "audit", "verify", "--json", "--database-url", database_url,
        "--server-key-file", str(home / "server.key"),
    ]  # fmt: skip
    checkpoints = home / "audit-checkpoints.jsonl"
    if checkpoints.exists():
        args += [
            "--checkpoints",
            str(checkpoints),
            "--public-key",
            str(home / "audit-checkpoint.key.pub"),
        ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    try:
        report: dict[str, object] = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = {"stdout": done.stdout, "stderr": done.stderr}
    return done.returncode, report


class ProcVault:
    """Enough of ``RunningVault`` for ``tests.support.signing_flow`` against a server process
    (dev principals mapped to the suite's role names; workspace ``demo``)."""

    ROLE_TOKENS = {
        "security": "dev-security",
        "onboarding": "dev-onboarding",
        "router": "dev-router",
        "auditor": "dev-auditor",
    }

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        dev = server.tokens()
        self.tokens = {role: dev[pid] for role, pid in self.ROLE_TOKENS.items()}
        self.channels: list[grpc.Channel] = []

    @property
    def admin_target(self) -> str:
        return self.server.admin

    @property
    def socket_target(self) -> str:
        return self.server.data

    def channel(self, target: str | None = None) -> grpc.Channel:
        ch = grpc.insecure_channel(target or self.admin_target)
        self.channels.append(ch)
        return ch

    def md(self, who: str = "security") -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[who]}")]

    def close(self) -> None:
        for ch in self.channels:
            ch.close()
        self.channels.clear()
