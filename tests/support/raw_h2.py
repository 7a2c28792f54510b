"""One unary gRPC call written as raw HTTP/2 frames, with headers exactly as given.

gRPC clients merge or drop repeated headers before they reach the wire; an attacker's own
HTTP/2 client does not. Literal header fields only (no Huffman, no indexing), plaintext (h2c).
The answer is not decoded: tests look at what the vault did (audit rows), not at its HPACK.
"""

from __future__ import annotations

import socket
import struct
import time

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _SETTINGS = 0, 1, 4
_END_STREAM, _END_HEADERS = 0x1, 0x4


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _literal(name: str, value: str) -> bytes:
    """HPACK literal header field without indexing, new name, raw (short) strings."""
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127, "short strings only"
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def unary_call(target: str, path: str, message: bytes, headers: list[tuple[str, str]]) -> None:
    """Send one call on a fresh connection and wait (up to 10 s) until its stream ends."""
    host, port = target.rsplit(":", 1)
    pseudo = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", target),
              ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "10S")]  # fmt: skip
    block = b"".join(_literal(k, v) for k, v in [*pseudo, *headers])
    body = b"\x00" + struct.pack(">I", len(message)) + message
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, b"")
            + _frame(_HEADERS, _END_HEADERS, 1, block)
            + _frame(_DATA, _END_STREAM, 1, body)
        )
        buffer, deadline = b"", time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while len(buffer) >= 9:
                length = int.from_bytes(buffer[:3], "big")
                if len(buffer) < 9 + length:
                    break
                kind, flags = buffer[3], buffer[4]
                stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                buffer = buffer[9 + length :]
                if stream == 1 and kind == _HEADERS and flags & _END_STREAM:
                    return
        raise AssertionError("the call did not end within 10 s")
