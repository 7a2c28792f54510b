"""Fan-out: 1,000 orders in one ``BatchSignOrders`` call, against the same 1,000 orders one by one,
OpenBao's transit batch and the floor - each system in its own process, load from another one.

Why: a router reacting to one signal places an order on every account it manages at once. The
figure that matters is then the wall time until all 1,000 signatures (and their durable audit
events) are in hand, not one call's latency; this run says what the fan-out call buys over the
single path, and what it costs next to OpenBao's own batch and to the bare floor.

Setup, per pipvault system (SQLite and a fresh PostgreSQL database), through the public APIs and
timed apart from the measurements: ``workspaces`` x ``per_workspace`` Binance Spot HMAC
credentials (secrets generated here, at run time) created on the admin API by a few threads;
then one routing context per credential opened by the bench router (allowed every workspace)
from a load process with ``in_flight`` ``BeginRouting`` calls at once - that wall time is
``begin_routing`` (does a ``BatchBeginRouting`` pay?). The contexts live for the configured
maximum (3,600 s), longer than the run. Systems are set up one after another, so each setup
time is its own.

Measurements, each a whole piece of work timed from its load process (:mod:`bench.fanout_calls`)
and repeated in rounds, every system once per round in turn (interleaved, so drift on a shared
machine hits all alike); the first round warms caches and connections and is reported apart
(``first_ms``), the figures are the medians of the other rounds:

- ``<storage>_batch``: one ``BatchSignOrders`` of ``orders`` items (one per routing context, new
  client order ids every time); every result must be a signed response;
- ``<storage>_single``: the same orders as ``SignOrder`` calls, ``in_flight`` at a time;
- ``openbao_batch``: transit HMAC ``batch_input`` of ``orders`` inputs in the fewest chunks its
  default request limits accept (found by a probe at setup), all chunks in flight at once;
  ``openbao_batch_sequential``: the same chunks one after another;
- ``floor``: ``orders`` bare gRPC HMAC calls to the floor server, ``in_flight`` at a time.

The server process's CPU time over each piece of work (and over the ``BeginRouting`` calls) is
read from ``/proc`` around it, in clock ticks (10 ms); a PostgreSQL backend's own CPU is not in
it.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import driver, systems

WORKSPACES = 100
PER_WORKSPACE = 10
IN_FLIGHT = 64
ROUTING_TTL_S = 3600  # the bench config's signing.routing_ttl_max_s
SEED_THREADS = 8

DESCRIPTIONS = {
    "sqlite_batch": "pipvault BatchSignOrders, one call (SQLite)",
    "sqlite_single": "pipvault SignOrder one by one, {in_flight} in flight (SQLite)",
    "postgres_batch": "pipvault BatchSignOrders, one call (PostgreSQL)",
    "postgres_single": "pipvault SignOrder one by one, {in_flight} in flight (PostgreSQL)",
    "openbao_batch": "OpenBao transit HMAC batch_input, {requests} x {chunk}, all in flight",
    "openbao_batch_sequential": "OpenBao transit HMAC batch_input, {requests} x {chunk}, "
    "one after another",
    "floor": "the floor server: bare gRPC HMAC calls, {in_flight} in flight",
}


def workspace_ids(n: int) -> list[str]:
    return [f"fanout-{i:03d}" for i in range(n)]


def seed(
    pv: systems.Pipvault, workspaces: list[str], per_workspace: int, threads: int = SEED_THREADS
) -> tuple[list[str], dict[str, Any]]:
    """Workspaces and their credentials through the admin API; the credential names in order
    and how long each part took."""
    jobs = [(ws, f"binance-{j:02d}") for ws in workspaces for j in range(per_workspace)]
    started = time.perf_counter()
    with pv.admin_channel() as admin, ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda ws: systems.create_workspace(pv, admin, ws), workspaces))
        made_workspaces = time.perf_counter()
        credentials = list(pool.map(lambda j: systems.create_credential(pv, admin, *j), jobs))
    done = time.perf_counter()
    return credentials, {
        "workspaces": len(workspaces),
        "credentials": len(credentials),
        "threads": threads,
        "workspaces_s": round(made_workspaces - started, 2),
        "credentials_s": round(done - made_workspaces, 2),
        "setup_s": round(done - started, 2),
    }


def _start(
    home: Path, with_pg: bool, workspaces: list[str], stack: contextlib.ExitStack
) -> dict[str, Any]:
    """Every system at once (stopped by ``stack``, whatever happens)."""
    router = ["bench", *workspaces]
    with ThreadPoolExecutor(4) as pool:
        starting = {
            "floor": pool.submit(systems.start_floor, home),
            "sqlite": pool.submit(systems.start_pipvault, "sqlite", home, "sqlite", None, router),
            "openbao": pool.submit(systems.start_openbao, home),
        }
        if with_pg:
            starting["postgres"] = pool.submit(
                systems.start_pipvault, "postgres", home, "postgres", None, router
            )
        started: dict[str, Any] = {}
        for name, future in starting.items():
            with contextlib.suppress(Exception):
                started[name] = future.result()
                stack.callback(started[name].drop if name in ("sqlite", "postgres")
                               else started[name].stop)  # fmt: skip
        for future in starting.values():
            future.result()  # re-raise the first start-up failure (after cleanup is armed)
    return started


def _targets(started: dict[str, Any]) -> dict[str, driver.Target]:
    targets = {
        "floor": started["floor"].target,
        "openbao": systems.openbao_target(started["openbao"]),
    }
    for name in ("sqlite", "postgres"):
        if name in started:
            targets[name] = started[name].make_target()
    for t in targets.values():  # the load processes start together
        t.workers.append(driver.Worker(t.spec, wait=False))
    for t in targets.values():
        t.workers[0].wait_ready()
    return targets


def _summary(runs: list[dict[str, Any]], first: dict[str, Any], orders: int) -> dict[str, Any]:
    ms = [r["ms"] for r in runs]
    p50 = statistics.median(ms)
    codes: Counter[str] = Counter()
    for r in [first, *runs]:
        codes.update(r.get("error_codes", {}))
    out: dict[str, Any] = {
        "p50_ms": round(p50, 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
        "signatures_per_s": round(orders / (p50 / 1e3), 1) if p50 else None,
        "server_cpu_ms_p50": round(statistics.median(r["server_cpu_ms"] for r in runs), 1),
        "client_cpu_ms_p50": round(statistics.median(r["client_cpu_s"] for r in runs) * 1e3, 1),
        "first_ms": first["ms"],
        "errors": sum(r["errors"] for r in runs),
        "first_errors": first["errors"],
        "error_codes": dict(codes),
        "rounds": len(runs),
        "runs_ms": ms,
    }
    for key in ("request_bytes", "response_bytes", "requests", "chunk", "in_flight"):
        if key in first:
            out[key] = first[key]
    return out


def run_fanout(
    workdir: Path,
    rounds: int,
    with_pg: bool = True,
    *,
    workspaces: int = WORKSPACES,
    per_workspace: int = PER_WORKSPACE,
    in_flight: int = IN_FLIGHT,
    seed_threads: int = SEED_THREADS,
) -> dict[str, Any]:
    """Start the systems, set up, measure in interleaved rounds, stop them all."""
    home = workdir / "fanout"
    home.mkdir(parents=True)
    ws = workspace_ids(workspaces)
    orders = workspaces * per_workspace
    with contextlib.ExitStack() as stack:
        started = _start(home, with_pg, ws, stack)
        targets = _targets(started)
        stores = [s for s in ("sqlite", "postgres") if s in targets]
        setup: dict[str, Any] = {}
        for store in stores:  # one after another: each setup time is its own
            credentials, setup[store] = seed(started[store], ws, per_workspace, seed_threads)
            cpu0 = driver.proc_cpu_s(targets[store].server_pid)
            begun = targets[store].workers[0].request(
                {"op": "fanout_begin", "credentials": credentials, "conc": in_flight,
                 "ttl_s": ROUTING_TTL_S}
            )  # fmt: skip
            begun["server_cpu_ms"] = round(
                (driver.proc_cpu_s(targets[store].server_pid) - cpu0) * 1e3
            )
            contexts = begun.pop("contexts")
            setup[store]["begin_routing"] = {**begun, "contexts": len(contexts),
                                             "in_flight": in_flight}  # fmt: skip
            if begun["errors"] or len(contexts) != orders:
                raise RuntimeError(f"{store}: BeginRouting failed: {begun}")
        bao = targets["openbao"].workers[0]
        largest = int(bao.request({"op": "fanout_bao_largest", "max": orders})["largest"])
        if largest < 1:
            raise RuntimeError("OpenBao accepted no transit batch_input at all")
        chunks = -(-orders // largest)
        plan: list[tuple[str, driver.Target, dict[str, Any]]] = [
            *((f"{s}_batch", targets[s], {"op": "fanout_batch"}) for s in stores),
            ("openbao_batch", targets["openbao"],
             {"op": "fanout_bao_batch", "n": orders, "chunk": largest, "in_flight": chunks}),
            ("openbao_batch_sequential", targets["openbao"],
             {"op": "fanout_bao_batch", "n": orders, "chunk": largest, "in_flight": 1}),
            ("floor", targets["floor"], {"op": "fanout_burst", "n": orders, "conc": in_flight}),
            *((f"{s}_single", targets[s], {"op": "fanout_burst", "conc": in_flight})
              for s in stores),
        ]  # fmt: skip
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in plan}
        first: dict[str, dict[str, Any]] = {}
        for r in range(rounds + 1):
            for label, target, cmd in plan:
                cpu0 = driver.proc_cpu_s(target.server_pid)
                reply = target.workers[0].request(cmd)
                reply["server_cpu_ms"] = round((driver.proc_cpu_s(target.server_pid) - cpu0) * 1e3)
                if r == 0:
                    first[label] = reply
                else:
                    runs[label].append(reply)
    measurements = {}
    for label, _, _ in plan:
        m = _summary(runs[label], first[label], orders)
        m["description"] = DESCRIPTIONS[label].format(
            in_flight=in_flight, requests=m.get("requests"), chunk=m.get("chunk")
        )
        measurements[label] = m
    return {
        "description": (
            f"{orders:,} orders, one per Binance Spot HMAC credential, {workspaces} workspaces x "
            f"{per_workspace} credentials, one routing context each"
        ),
        "orders": orders,
        "workspaces": workspaces,
        "credentials_per_workspace": per_workspace,
        "in_flight": in_flight,
        "rounds": rounds,
        "openbao_largest_batch": largest,
        "setup": setup,
        "measurements": measurements,
    }
