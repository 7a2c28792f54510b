"""Helpers for the issue-12 regression tests that run real ``pipvault`` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

PIPVAULT = [sys.executable, "-m", "vault_server.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serving(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as ch:
            status = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        return bool(status.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def wait_serving(target: str, proc: subprocess.Popen[str], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read() if proc.stdout else "exited")
        if serving(target):
            return
        time.sleep(0.2)
    raise AssertionError(f"vault did not become SERVING on {target}")


def dev_policy(path: Path) -> Path:
    path.write_text(
        "principals:\n  - id: ops\n    type: user\n    roles: [security]\n"
        f"    workspaces: ['*']\n    token_sha256: '{'0' * 64}'\n"
    )
    return path


def env_without_pipvault(**extra: str) -> dict[str, str]:
    """The test's environment minus any PIPVAULT_* (so only what a test sets is in effect)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPVAULT_")}
    env.update(extra)
    return env


@contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The command as a process, stopped with SIGTERM on exit; its output is then in
    ``proc.captured``."""
    proc = subprocess.Popen(
        [*PIPVAULT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield proc
    finally:
        output = ""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        proc.captured = output or ""  # type: ignore[attr-defined]
