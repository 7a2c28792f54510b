"""The honest benchmark: pipvault SignOrder against its floor and OpenBao, each in its own process.

Systems (each a separate server process; load comes from separate load-generator processes):
- floor: a bare ``grpc.aio`` unary handler computing one HMAC-SHA256, on a Unix socket;
- floor_uvloop: the same on uvloop, the event loop pipvault runs on;
- durable_floor: the floor, each call group-committed to SQLite (WAL, fsynced) before it
  answers - the least a durable signature costs on this machine's disk;
- sqlite / postgres: ``pipvault serve`` SignOrder for Binance Spot HMAC with a routing context
  and a durable, hash-chained audit event, on SQLite and on a fresh PostgreSQL database;
- openbao: OpenBao transit HMAC through hvac, raft storage, a file audit device.

Sequential p50/p99 in interleaved rounds, throughput at 1, 8 and 32 callers, the fan-out case
(1,000 orders in one ``BatchSignOrders`` against 1,000 ``SignOrder`` calls, OpenBao's transit
batch, the floor and the durable floor's batch; the routing contexts opened one by one and in one
``BatchBeginRouting``; ``bench.fanout``), then (full run) the fleet case (two replicas on one
PostgreSQL against one, ``bench.fleet``), scale runs, a py-spy profile and the CPU per call of
each server thread. Results: ``bench/results/latest.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import driver, fanout, fanout_chart, fleet, report, systems

RESULTS = Path(__file__).parent / "results"
DESCRIPTIONS = {
    "floor": "bare grpc.aio handler, one HMAC-SHA256 (Unix socket)",
    "floor_uvloop": "the floor on uvloop, pipvault's event loop (Unix socket)",
    "durable_floor": "the floor + its call group-committed to SQLite, fsynced (Unix socket)",
    "sqlite": "pipvault SignOrder, SQLite (Unix socket)",
    "postgres": "pipvault SignOrder, PostgreSQL (Unix socket)",
    "openbao": "OpenBao transit HMAC via hvac (raft, file audit; loopback TCP)",
}


def _config(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {"rounds": 5, "per_round": 30, "warmup": 10, "tp_rounds": 1, "tp_duration": 0.75,
                "procs": args.procs}  # fmt: skip
    return {"rounds": 40, "per_round": 50, "warmup": 50, "tp_rounds": 2, "tp_duration": 3.0,
            "procs": args.procs}  # fmt: skip


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def run_core(
    workdir: Path, cfg: dict[str, Any], with_pg: bool, pipvault_loop: str = "uvloop"
) -> dict[str, Any]:
    """Start every system, measure, stop them all (whatever happens)."""
    loop = {"event_loop": pipvault_loop}
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(4) as pool:
        # start-up in parallel (OpenBao's raft init alone takes seconds); stopped in reverse
        starting = {
            "floor": pool.submit(systems.start_floor, workdir),
            "floor_uvloop": pool.submit(systems.start_floor, workdir, uvloop=True),
            "durable_floor": pool.submit(systems.start_floor, workdir, durable=True),
            "sqlite": pool.submit(systems.start_pipvault, "sqlite", workdir, "sqlite", loop),
            "openbao": pool.submit(systems.start_openbao, workdir),
        }
        if with_pg:
            starting["postgres"] = pool.submit(
                systems.start_pipvault, "postgres", workdir, "postgres", loop
            )
        started: dict[str, Any] = {}
        for name, future in starting.items():
            with contextlib.suppress(Exception):
                started[name] = future.result()
                stack.callback(started[name].drop if name in ("sqlite", "postgres")
                               else started[name].stop)  # fmt: skip
        for future in starting.values():
            future.result()  # re-raise the first start-up failure (after cleanup is armed)
        targets = [
            started["floor"].target,
            started["floor_uvloop"].target,
            started["durable_floor"].target,
            started["sqlite"].make_target(),
        ]
        if with_pg:
            targets.append(started["postgres"].make_target())
        bao = started["openbao"]
        targets.append(systems.openbao_target(bao))
        for t in targets:  # every load process starts at once
            t.workers.extend(driver.Worker(t.spec, wait=False) for _ in range(cfg["procs"]))
        for t in targets:
            for w in t.workers:
                w.wait_ready()
        print(f"systems up: {', '.join(t.name for t in targets)}; measuring", flush=True)
        seq = driver.sequential(targets, cfg["rounds"], cfg["per_round"], cfg["warmup"])
        tp = driver.throughput(
            targets, list(report.LEVELS), cfg["tp_rounds"], cfg["tp_duration"], cfg["procs"]
        )
        out: dict[str, Any] = {}
        for t in targets:
            out[t.name] = {
                "description": DESCRIPTIONS[t.name],
                "sequential": report.latency_stats(seq["samples"][t.name], seq["errors"][t.name]),
                "throughput": report.throughput_stats(tp[t.name]),
            }
        out["openbao"]["audit_log_lines"] = systems.audit_lines(bao)
        return out


def run_scale(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from bench import scale

    print(f"scale: {args.credentials:,} credentials in {args.workspaces:,} workspaces", flush=True)
    local = scale.run_local(
        workdir, credentials=args.credentials, workspaces=args.workspaces, rounds=25,
        per_round=20, budget_s=args.rewrap_budget,
    )  # fmt: skip
    print(f"scale: transit rewrap of {args.transit_credentials:,} data keys", flush=True)
    with contextlib.ExitStack() as stack:
        bao = systems.start_openbao(workdir / "scale")
        stack.callback(bao.stop)
        transit = scale.run_transit(
            workdir, bao, credentials=args.transit_credentials, workspaces=10,
            budget_s=args.rewrap_budget,
        )  # fmt: skip
    return {"local": local, "transit": transit}


def run_profile(workdir: Path, out_dir: Path, seconds: int) -> dict[str, Any]:
    """py-spy on the SQLite server: one caller (where a signature's latency goes), then 32."""
    from bench import profile

    pv = systems.start_pipvault("profiled", workdir, "sqlite")
    out: dict[str, Any] = {"system": "sqlite", "seconds": seconds}
    try:
        target = pv.make_target()
        target.start_workers(2)
        assert pv.proc is not None
        for callers in (1, 32):
            raw = out_dir / f"profile-sqlite-{callers}.txt"
            spy = profile.record(pv.proc.pid, seconds, raw)
            time.sleep(0.5)
            load = driver.window(target, callers, seconds - 1, 2)
            _, err = spy.communicate(timeout=seconds + 60)
            if spy.returncode != 0:
                raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-1000:]}")
            out[f"callers_{callers}"] = {
                "load": load,
                "raw_stacks": f"bench/results/{raw.name}",
                **profile.top_frames(raw),
            }
    finally:
        pv.drop()
    return out


def run_thread_cpu(workdir: Path, seconds: float) -> dict[str, Any]:
    """CPU per call on each server thread, at 1 and 32 callers: the floor, the durable floor
    and pipvault on SQLite (``bench.thread_cpu``)."""
    from bench import thread_cpu

    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        cpu_dir = workdir / "thread-cpu"
        cpu_dir.mkdir()
        servers = [
            systems.start_floor(cpu_dir),
            systems.start_floor(cpu_dir, durable=True),
        ]
        for server in servers:
            stack.callback(server.stop)
        pv = systems.start_pipvault("sqlite", cpu_dir, "sqlite")
        stack.callback(pv.drop)
        targets = [s.target for s in servers] + [pv.make_target()]
        for t in targets:
            stack.callback(t.close)
            t.start_workers(2)
            t.workers[0].request({"op": "seq", "n": 200})  # warm: connection, caches, pools
            out[t.name] = {
                f"callers_{callers}": thread_cpu.measure(t, callers, seconds) for callers in (1, 32)
            }
    return out


def _guarded(what: str, fn: Any, *args: Any) -> dict[str, Any]:
    try:
        out: dict[str, Any] = fn(*args)
    except Exception as exc:
        print(f"{what} failed: {type(exc).__name__}: {str(exc)[-500:]}", flush=True)
        return {"error": f"{type(exc).__name__}: {str(exc)[-500:]}"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--scale", action="store_true", help="only the scale runs (updates "
                        "the scale section of the existing results)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="only the py-spy profile")
    parser.add_argument("--fleet", action="store_true", help="only the fleet case (updates the "
                        "fleet section of the existing results)")  # fmt: skip
    parser.add_argument("--fanout", action="store_true", help="only the fan-out case (updates "
                        "the fan-out section of the existing results)")  # fmt: skip
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL system")
    parser.add_argument("--procs", type=int, default=2, help="load processes per system")
    parser.add_argument(
        "--pipvault-loop", choices=("uvloop", "asyncio"), default="uvloop",
        help="the event loop of the pipvault servers (their config's event_loop)",
    )  # fmt: skip
    parser.add_argument("--credentials", type=int, default=100_000)
    parser.add_argument("--workspaces", type=int, default=1_000)
    parser.add_argument("--transit-credentials", type=int, default=500)
    parser.add_argument(
        "--rewrap-budget", type=float, default=60.0, help="seconds per rewrap (the target)"
    )
    parser.add_argument("--profile-seconds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args()
    out_dir: Path = args.out or RESULTS
    stem = "quick" if args.quick else "latest"
    partial = args.scale or args.profile or args.fleet or args.fanout
    started = time.monotonic()
    result: dict[str, Any] = {}
    if partial and (out_dir / "latest.json").exists():
        result = json.loads((out_dir / "latest.json").read_text())
    result.update(
        when=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine=_machine(),
        command="python -m bench"
        + "".join(
            f" --{flag}"
            for flag in ("quick", "scale", "profile", "fleet", "fanout")
            if getattr(args, flag)
        )
        + (f" --pipvault-loop {args.pipvault_loop}" if args.pipvault_loop != "uvloop" else ""),
    )
    workdir = Path(tempfile.mkdtemp(prefix="pipvault-bench-"))
    try:
        if not partial:
            cfg = _config(args)
            result["config"] = cfg
            result["postgres_server"] = None if args.no_postgres else systems.describe_pg()
            cfg["pipvault_loop"] = args.pipvault_loop
            result["systems"] = run_core(workdir, cfg, not args.no_postgres, args.pipvault_loop)
            result.setdefault("scale", None)
            result.setdefault("profile", None)
            result.setdefault("thread_cpu", None)
            result.setdefault("fleet", None)
        if args.fanout or not partial:  # quick runs too: fewer rounds, the same 1,000 orders
            result["fanout"] = _guarded(
                "fan-out", fanout.run_fanout, workdir, 3 if args.quick else 7,
                not args.no_postgres,
            )  # fmt: skip
        if (args.fleet or not (partial or args.quick)) and not args.no_postgres:
            result["fleet"] = _guarded("fleet", fleet.run_fleet, workdir)
        # a failed scale run or profile (e.g. no ptrace for py-spy) is recorded, not fatal:
        # the measurements already taken are still written
        if args.scale or not (partial or args.quick):
            result["scale"] = _guarded("scale runs", run_scale, workdir, args)
        if args.profile or not (partial or args.quick):
            result["profile"] = _guarded(
                "profile", run_profile, workdir, out_dir, args.profile_seconds
            )
            result["thread_cpu"] = _guarded(
                "thread CPU", run_thread_cpu, workdir, float(args.profile_seconds) / 2
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["duration_s"] = round(time.monotonic() - started, 1)
    report.finish(result)
    text = report.table(result)
    report.write_json(result, out_dir / f"{stem}.json")
    (out_dir / f"{stem}.md").write_text(f"Generated by `{result['command']}` at "
                                        f"{result['when']}.\n\n{text}\n")  # fmt: skip
    if result.get("systems"):
        report.chart(result, out_dir / f"{stem}.png")
    fanout_chart.chart(result, out_dir / f"{stem}-fanout.png")
    print(text)
    print(f"results: {out_dir / (stem + '.json')} ({result['duration_s']} s)")


if __name__ == "__main__":
    main()
