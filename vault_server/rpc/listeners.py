"""Who owns a listener: the Unix data socket (an ``flock`` on a lock file next to it, plus a
connect probe) and TCP ports (a bind probe before gRPC core, which would log its own error lines).
A conflict is a one-line ``ListenerConflict``; nothing that belongs to another process is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path


class ListenerConflict(Exception):
    """A listener cannot be opened: another process owns the socket or the port. The message is
    one line naming the conflict (the CLI prints it and exits 1, never a traceback)."""


class SocketLock:
    """Ownership of a Unix data socket: an ``flock`` on ``<socket>.lock`` held for the life of
    the process. A start that cannot take the lock (or finds a socket that still accepts
    connections) leaves the live instance and its socket alone."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.path = socket_path.with_name(socket_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ListenerConflict(
                f"listen.data_socket: {self.socket_path} is in use by another running "
                f"pipvault (lock {self.path} is held); leaving it alone"
            ) from None
        if _accepts_connections(self.socket_path):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise ListenerConflict(
                f"listen.data_socket: {self.socket_path} is accepting connections from another "
                "process; leaving it alone"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        if self.socket_path.exists() or self.socket_path.is_symlink():
            self.socket_path.unlink()  # stale: its owner is gone (we hold the lock)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def probe_port(address: str) -> None:
    """Raise ``OSError`` if a fixed TCP port is taken (port 0 always binds)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return
    for family, kind, proto, _name, sockaddr in socket.getaddrinfo(
        host.strip("[]") or None, int(port), type=socket.SOCK_STREAM
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(sockaddr)


def _accepts_connections(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True
