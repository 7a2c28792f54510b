"""Where signed audit checkpoints go: outside the database, so a truncated or rewritten log can be
caught. Sinks are declared in configuration only (never through an RPC).

``FileSink`` appends one JSON line per checkpoint and fsyncs it (ship the file to WORM storage or
a log pipeline); ``StdoutSink`` writes the same line to standard output, for collectors that read
container stdout (the vault's own logs go to stderr).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TextIO


class CheckpointSink(Protocol):
    def write(self, line: str) -> None: ...


class FileSink:
    """Append-only JSON-lines file, created 0600 (its directory 0700) if missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a checkpoint is one line")
        data = (line + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)


class StdoutSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a checkpoint is one line")
        out = self._stream or sys.stdout
        with self._lock:
            out.write(line + "\n")
            out.flush()


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each non-empty line of a checkpoints file, streamed."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if text:
                yield number, text
