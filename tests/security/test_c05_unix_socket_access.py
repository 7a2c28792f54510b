"""The pod-local Unix socket: mode 0660 with the configured owner/group; another UID cannot
connect, and the socket still requires a per-call identity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.vault import start_vault

NOBODY = 65534
# The venv's interpreter lives under /root (0700), so other users run the system interpreter and
# probe the socket at the OS level: exactly the check the file mode enforces.
SYSTEM_PYTHON = "/usr/bin/python3"
RAW_PROBE = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    print("CONNECTED")
except PermissionError:
    print("REFUSED EACCES")
"""
PROBE = """
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
try:
    with grpc.insecure_channel(sys.argv[1]) as ch:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
    print("CONNECTED")
except grpc.RpcError as exc:
    print("REFUSED", exc.code().name)
"""


def test_socket_mode_owner_and_other_uid(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "this machine's tests run as root (CI too); needed to switch users"
    home = tmp_path / "home"
    # pytest's tmp dirs are 0700; put the socket where only its own mode decides access.
    sock_dir = Path(tempfile.mkdtemp(prefix="pipvault-sock-", dir="/tmp"))
    os.chmod(sock_dir, 0o755)
    vault = start_vault(
        home,
        listen={"data_socket": str(sock_dir / "vault.sock"), "socket_group": 4242},
    )
    try:
        st = (sock_dir / "vault.sock").stat()
        assert oct(st.st_mode & 0o777) == "0o660" and st.st_gid == 4242 and st.st_uid == 0
        target = f"unix:{sock_dir / 'vault.sock'}"
        owner = subprocess.run(
            [sys.executable, "-c", PROBE, target], capture_output=True, text=True, timeout=30
        )
        assert owner.stdout.strip() == "CONNECTED", owner.stderr

        def as_nobody() -> None:
            os.setgid(NOBODY)
            os.setgroups([])
            os.setuid(NOBODY)

        path = str(sock_dir / "vault.sock")
        other = subprocess.run(
            [SYSTEM_PYTHON, "-c", RAW_PROBE, path], capture_output=True, text=True, timeout=30,
            preexec_fn=as_nobody,
        )  # fmt: skip
        assert other.stdout.strip() == "REFUSED EACCES", other.stdout + other.stderr

        def as_group_member() -> None:
            os.setgid(4242)
            os.setgroups([4242])
            os.setuid(NOBODY)

        member = subprocess.run(
            [SYSTEM_PYTHON, "-c", RAW_PROBE, path], capture_output=True, text=True, timeout=30,
            preexec_fn=as_group_member,
        )  # fmt: skip
        assert member.stdout.strip() == "CONNECTED", member.stdout + member.stderr
    finally:
        vault.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)
