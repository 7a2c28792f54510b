"""Where the server's time goes: ``py-spy record`` on the server PID under load.

The profile is taken in its own phase (sampling perturbs the process, so never during the
measured windows): 32 concurrent signers for a few seconds against the SQLite server, sampled by
``py-spy record --format raw`` (collapsed stacks). The top frames by own ("self") samples and by
inclusive samples are reported as shares of all samples; the raw stacks are kept beside the
results for flame-graph tools.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")


def find_py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("py-spy not found: `make install` installs it (dev extra)")
    return found


def record(pid: int, duration_s: int, out: Path, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``duration_s`` seconds into ``out`` (collapsed stacks)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            find_py_spy(), "record", "--pid", str(pid), "--duration", str(duration_s),
            "--rate", str(rate), "--format", "raw", "--output", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def _frame(raw: str) -> str:
    """``fn (path/to/file.py:123)`` -> ``fn (file path from the package root)``."""
    name = _LINE.sub(")", raw.strip())
    for marker in ("site-packages/", "/vault_server/", "/lib/python3"):
        if marker in name:
            head, _, tail = name.partition("(")
            path = tail.split(marker, 1)[1]
            prefix = "vault_server/" if marker == "/vault_server/" else ""
            return f"{head}({prefix}{path}"
    return name


def _busy(frames: list[str]) -> bool:
    """A sample is vault work when it is inside vault code other than the process entry point
    (py-spy's idle detection misses threads parked on a queue, and the main thread's stack
    always holds the CLI frames, even while the event loop waits in ``select``)."""
    return any("vault_server/" in f and "vault_server/cli/" not in f for f in frames)


def top_frames(collapsed: Path, n: int = 12) -> dict[str, Any]:
    """Shares of the busy samples by own frame and by inclusive vault frame, from py-spy's raw
    output (``busy_share``: the fraction of all samples that were vault work)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = busy = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        total += count
        if not frames or not _busy(frames):
            continue
        busy += count
        own[frames[-1]] += count
        for f in set(frames):
            if "vault_server/" in f and "vault_server/cli/" not in f:
                inclusive[f] += count
    if not busy:
        raise RuntimeError("py-spy recorded no samples inside vault code")

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "share": round(c / busy, 3)} for f, c in counter.most_common(n)]

    return {
        "samples": total,
        "busy_samples": busy,
        "busy_share": round(busy / total, 3),
        "self": share(own),
        "inclusive_vault_server": share(inclusive),
    }
