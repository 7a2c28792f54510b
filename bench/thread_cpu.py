"""CPU per call, per server thread: where one call's CPU goes, read from ``/proc``.

The profile's shares say which frames are busy; this says how much CPU a call costs and on
which thread - the event loop, the group committer, gRPC's own threads - which is what bounds
throughput when every thread of a Python process shares one GIL. For each server, during a
window of 1 and of 32 callers (its own phase, never during the measured windows), the CPU time
of every thread (``/proc/PID/task/TID/stat``, user + system) before and after, divided by the
calls the window completed. Python thread names come from ``py-spy dump`` (``/proc`` knows
only the process name for threads Python started); numbered pool workers are summed under one
name.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from bench import driver
from bench.profile import find_py_spy

_TICK = os.sysconf("SC_CLK_TCK")
_DUMP_THREAD = re.compile(r'^Thread (\d+) \([^)]*\): "(.+)"$', re.MULTILINE)
_NUMBERED = re.compile(r"_\d+$")


def thread_times(pid: int) -> dict[str, tuple[str, float]]:
    """Thread id -> (kernel name, CPU seconds) for every live thread of ``pid``."""
    out: dict[str, tuple[str, float]] = {}
    task = Path(f"/proc/{pid}/task")
    for tid in os.listdir(task):
        try:
            comm = (task / tid / "comm").read_text().strip()
            fields = (task / tid / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended between listdir and read
            continue
        out[tid] = (comm, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def python_names(pid: int) -> dict[str, str]:
    """Thread id -> Python thread name, from ``py-spy dump`` (empty if py-spy cannot attach)."""
    dump = subprocess.run(
        [find_py_spy(), "dump", "--pid", str(pid)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return dict(_DUMP_THREAD.findall(dump.stdout))


def per_call_us(
    before: dict[str, tuple[str, float]],
    after: dict[str, tuple[str, float]],
    names: dict[str, str],
    calls: int,
) -> dict[str, float]:
    """CPU µs per call by thread name (largest first; threads under 1 µs per call left out)."""
    by_name: dict[str, float] = {}
    for tid, (comm, cpu) in after.items():
        used = cpu - before.get(tid, (comm, 0.0))[1]
        name = _NUMBERED.sub("", names.get(tid, comm))
        by_name[name] = by_name.get(name, 0.0) + used
    out = {n: round(s / calls * 1e6, 1) for n, s in by_name.items() if calls and s / calls >= 1e-6}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def measure(target: driver.Target, callers: int, seconds: float) -> dict[str, Any]:
    """One window of ``callers`` against ``target``, the server's threads read as it opens and
    as it closes."""
    names = python_names(target.server_pid)
    load = driver.window(
        target, callers, seconds, min(2, callers), probe=lambda: thread_times(target.server_pid)
    )
    before, after = load.pop("probe")
    threads = per_call_us(before, after, names, load["calls"])
    return {"load": load, "cpu_us_per_call": round(sum(threads.values()), 1), "threads": threads}
