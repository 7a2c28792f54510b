"""Drive load-generator processes: interleaved sequential rounds and concurrent windows.

Every system gets its own load processes (``python -m bench.loadgen``), started once and reused,
so no measurement pays for interpreter start-up. Sequential latency runs in interleaved rounds
(A, B, C, A, B, C, ...) so that drift on a shared machine hits every system alike. Throughput at
C callers splits the callers over ``procs`` load processes that start on one wall-clock instant;
each process reports its CPU time, and the server's CPU time is read from ``/proc``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_threads_cpu_s(pid: int) -> float:
    """CPU seconds of a process's live threads, to the nanosecond: the sum of each thread's
    ``/proc/PID/task/TID/schedstat`` time on a CPU (``/proc/PID/stat`` counts clock ticks, 10 ms,
    too coarse for a few milliseconds of work). A thread that ends between two readings takes
    its CPU with it; the servers measured keep theirs for their lifetime."""
    total = 0
    task = Path(f"/proc/{pid}/task")
    for tid in os.listdir(task):
        try:
            total += int((task / tid / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # ended between listdir and read
            continue
    return total / 1e9


def proc_rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"{key} not found for pid {pid}")


class Worker:
    """One load-generator process for one system."""

    def __init__(self, spec: dict[str, Any], *, wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        self._send(spec)
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        if not self._recv().get("ready"):
            raise RuntimeError("load generator did not start")

    def _send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def _recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited ({self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._send(obj)
        return self._recv()

    def send(self, obj: dict[str, Any]) -> None:
        self._send(obj)

    def receive(self) -> dict[str, Any]:
        return self._recv()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send({"op": "quit"})
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Target:
    """A running system under test, as the load generators see it."""

    name: str
    spec: dict[str, Any]
    server_pid: int
    workers: list[Worker] = field(default_factory=list)

    def start_workers(self, procs: int) -> None:
        new = [Worker(self.spec, wait=False) for _ in range(procs - len(self.workers))]
        for w in new:  # started together, so their interpreters load in parallel
            w.wait_ready()
        self.workers.extend(new)

    def close(self) -> None:
        for w in self.workers:
            w.close()
        self.workers.clear()


def sequential(targets: list[Target], rounds: int, per_round: int, warmup: int) -> dict[str, Any]:
    """Interleaved rounds of sequential calls; every latency sample per system, in µs."""
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    errors: dict[str, int] = {t.name: 0 for t in targets}
    for t in targets:
        t.workers[0].request({"op": "seq", "n": warmup})
    for _ in range(rounds):
        for t in targets:
            reply = t.workers[0].request({"op": "seq", "n": per_round})
            samples[t.name].extend(reply["lat_us"])
            errors[t.name] += reply["errors"]
    return {"samples": samples, "errors": errors}


def throughput(
    targets: list[Target], levels: list[int], rounds: int, duration: float, procs: int
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Calls per second at each concurrency level, interleaved by system within each round."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {
        t.name: {str(c): [] for c in levels} for t in targets
    }
    for _ in range(rounds):
        for conc in levels:
            for t in targets:
                out[t.name][str(conc)].append(window(t, conc, duration, procs))
    return out


def window(
    t: Target, conc: int, duration: float, procs: int, probe: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """One measurement window: ``conc`` callers split over up to ``procs`` load processes
    (``probe``, if given, is called as the window opens and as it closes; both results are
    returned under ``probe``)."""
    used = t.workers[: max(1, min(procs, conc))]
    split = [conc // len(used) + (1 if i < conc % len(used) else 0) for i in range(len(used))]
    start_at = time.time() + 0.5  # room for every process to connect and warm up
    for w, c in zip(used, split, strict=True):
        w.send({"op": "tp", "conc": c, "start_at": start_at, "duration": duration})
    time.sleep(max(0.0, start_at - time.time()))
    opened = probe() if probe is not None else None
    server0 = proc_cpu_s(t.server_pid)
    time.sleep(max(0.0, start_at + duration - time.time()))
    server_cpu = proc_cpu_s(t.server_pid) - server0
    closed = probe() if probe is not None else None
    replies = [w.receive() for w in used]
    calls = sum(r["calls"] for r in replies)
    extra = {} if probe is None else {"probe": (opened, closed)}
    return {
        **extra,
        "calls": calls,
        "errors": sum(r["errors"] for r in replies),
        "calls_per_s": round(calls / duration, 1),
        "load_procs": len(used),
        "client_cpu_frac": round(sum(r["cpu_s"] for r in replies) / duration, 2),
        "server_cpu_frac": round(server_cpu / duration, 2),
    }
