"""Socket and port ownership between real `pipvault` processes: a second start on the same
config never touches the live instance's socket and exits 1 with one line; a port clash is one
line too; a socket left behind by a killed process is reclaimed."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from tests.e2e.test_cli_processes import PIPVAULT, _free_port, _wait_serving


def _dev(home: Path, ports: dict[str, int]) -> list[str]:
    return [
        *PIPVAULT, "dev", "--home", str(home),
        "--admin-address", f"127.0.0.1:{ports['admin']}",
        "--data-address", f"127.0.0.1:{ports['data']}",
        "--health-address", f"127.0.0.1:{ports['health']}",
        "--metrics-address", f"127.0.0.1:{ports['metrics']}",
    ]  # fmt: skip


def _ports() -> dict[str, int]:
    return {name: _free_port() for name in ("admin", "data", "health", "metrics")}


def _start(home: Path, ports: dict[str, int], grace_s: float = 5) -> subprocess.Popen[str]:
    env = {**os.environ, "PIPVAULT_LISTEN__GRACE_PERIOD_S": str(grace_s)}
    proc = subprocess.Popen(
        _dev(home, ports), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    _wait_serving(f"127.0.0.1:{ports['health']}", proc)
    return proc


def _list_over_socket(home: Path) -> list[str]:
    tokens = json.loads((home / "dev-tokens.json").read_text())
    with grpc.insecure_channel(f"unix:{home / 'data.sock'}") as ch:
        # The data plane refuses admin methods with WRONG_LISTENER: a real answer from the
        # process that owns the socket (a dead socket would be UNAVAILABLE).
        try:
            rpc.WorkspaceServiceStub(ch).ListWorkspaces(
                pb.ListWorkspacesRequest(),
                metadata=[("authorization", f"Bearer {tokens['dev-security']}")],
                timeout=10,
            )
        except grpc.RpcError as err:
            return [err.code().name]
    return ["OK"]


def _conflict_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr + result.stdout
    return [line for line in result.stderr.splitlines() if line.startswith("pipvault:")]


def test_second_start_on_one_config_leaves_the_live_socket_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = _ports()
    first = _start(home, ports)
    try:
        before = _list_over_socket(home)
        assert before == ["PERMISSION_DENIED"]  # served (WRONG_LISTENER), not UNAVAILABLE
        inode = (home / "data.sock").stat().st_ino
        second = subprocess.run(_dev(home, ports), capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        lines = _conflict_lines(second)
        assert len(lines) == 1 and "listen.data_socket" in lines[0] and "data.sock" in lines[0]
        # The live instance still owns the very same socket and answers on it.
        assert (home / "data.sock").stat().st_ino == inode
        assert _list_over_socket(home) == before
        assert first.poll() is None

        # A port clash (another home, same admin port) is one line, exit 1, never a traceback.
        other = _ports()
        other["admin"] = ports["admin"]
        clash = subprocess.run(
            _dev(tmp_path / "other", other), capture_output=True, text=True, timeout=60
        )
        assert clash.returncode == 1
        lines = _conflict_lines(clash)
        assert len(lines) == 1 and "listen.admin_address" in lines[0]
        assert not (tmp_path / "other" / "data.sock").exists()  # released on the way out
        assert _list_over_socket(home) == before
    finally:
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=30)
    assert first.returncode == 0, out
    assert not (home / "data.sock").exists()  # the owner removes its own socket on exit


def test_a_socket_left_by_a_killed_process_is_reclaimed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = _ports()
    first = _start(home, ports)
    first.kill()  # no cleanup: the socket file stays, its lock dies with the process
    first.communicate(timeout=30)
    assert (home / "data.sock").exists()
    again = _start(home, ports)
    try:
        assert _list_over_socket(home) == ["PERMISSION_DENIED"]
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=30)
    assert again.returncode == 0


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def _half_sent_call(port: int) -> socket.socket:
    """A slow client: an HTTP/2 call whose headers arrived but whose request never does (an
    in-flight call the drain waits for; a follow stream no longer does, it ends at SIGTERM)."""

    def literal(name: str, value: str) -> bytes:  # HPACK literal, not indexed, no Huffman
        return bytes([0, len(name)]) + name.encode() + bytes([len(value)]) + value.encode()

    headers = b"".join(
        literal(n, v)
        for n, v in (
            (":method", "POST"), (":scheme", "http"), (":authority", "vault"),
            (":path", "/pipsync.vault.v1.WorkspaceService/ListWorkspaces"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        )
    )  # fmt: skip
    conn = socket.create_connection(("127.0.0.1", port))
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    conn.sendall(preface + _frame(4, 0, 0) + _frame(1, 4, 1, headers))  # SETTINGS, HEADERS
    conn.recv(4096)  # the server's SETTINGS
    conn.sendall(_frame(4, 1, 0))  # SETTINGS ACK: the connection stays up
    return conn


def test_a_restart_inside_the_drain_window_leaves_the_draining_instance_alone(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    ports = _ports()
    first = _start(home, ports, grace_s=60)
    slow = _half_sent_call(ports["admin"])
    try:
        # An in-flight call keeps the first process draining after SIGTERM.
        time.sleep(0.3)
        first.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert first.poll() is None  # still draining (grace period)
        second = subprocess.run(_dev(home, ports), capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        lines = _conflict_lines(second)
        assert len(lines) == 1 and "listen.data_socket" in lines[0]
        assert first.poll() is None
        # The draining process still owns the socket's lock (gRPC closed its listener already).
        fd = os.open(home / "data.sock.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        slow.close()  # the last in-flight call ends: the drain finishes early
    finally:
        slow.close()
        out, _ = first.communicate(timeout=30)
    assert first.returncode == 0, out
    assert not (home / "data.sock").exists()
    # Once the old process is gone, the same start succeeds.
    again = _start(home, ports)
    again.send_signal(signal.SIGTERM)
    again.communicate(timeout=30)
    assert again.returncode == 0
