"""Fan-out: 1,000 orders in one ``BatchSignOrders`` call, against the same 1,000 orders one by one,
OpenBao's transit batch, the floor and the durable floor's batch - each system in its own
process, load from another one.

Why: a router reacting to one signal places an order on every account it manages at once. The
figure that matters is then the wall time until all 1,000 signatures (and their durable audit
events) are in hand, not one call's latency; this run says what the fan-out call buys over the
single path, and what it costs next to OpenBao's own batch and to the bare floor.

Setup, per pipvault system (SQLite and a fresh PostgreSQL database), through the public APIs and
timed apart from the measurements: ``workspaces`` x ``per_workspace`` Binance Spot HMAC
credentials (secrets generated here, at run time) created on the admin API by a few threads;
then one routing context per credential opened by the bench router (allowed every workspace)
from a load process, both ways, ``begin_rounds`` times each in ABBA order (batch, one by one,
one by one, batch, ...; each way early and late alike): ``begin_routing``, ``in_flight``
``BeginRouting`` calls at once, and ``batch_begin_routing``, one ``BatchBeginRouting`` of every
credential; each figure is the median of its runs (every run kept). The measurements use the
contexts the last run opened (a batch's; BeginRouting in either form seeds the server's use
state, so even the first round's batch finds them in memory). The contexts live for the
configured maximum (3,600 s), longer than the run. Systems are set up one after another, so
each setup time is its own.

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
- ``floor``: ``orders`` bare gRPC HMAC calls to the floor server, ``in_flight`` at a time;
- ``durable_floor_batch``: ``orders`` items in one ``HmacBatch`` call to the durable floor (one
  HMAC-SHA256 each, then one row per item in ONE SQLite transaction, fsynced, before it answers):
  the least a durable batch of ``orders`` signatures costs on this machine.

The server process's CPU time over each piece of work (and over the routing-context setup) is
read from ``/proc`` around it twice: ``server_cpu_ms`` the process's (``/proc/PID/stat``, clock
ticks of 10 ms) and ``server_cpu_ms_threads`` its live threads' to the nanosecond
(``schedstat``), which the CPU-per-item figures use (the durable floor's batch costs a few ms). A
PostgreSQL backend's own CPU is in neither.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
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
BEGIN_ROUNDS = 2  # each way of opening the contexts, ABBA
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
    "durable_floor_batch": "the durable floor: one HmacBatch call, one SQLite transaction "
    "(fsynced) for every row",
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
            "durable_floor": pool.submit(systems.start_floor, home, durable=True),
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
        "durable_floor": started["durable_floor"].target,
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


def _server_cpu(pid: int) -> tuple[float, float]:
    return driver.proc_cpu_s(pid), driver.proc_threads_cpu_s(pid)


def _timed(target: driver.Target, cmd: dict[str, Any]) -> dict[str, Any]:
    """One piece of work from the target's load process, the server's CPU read around it."""
    ticks0, threads0 = _server_cpu(target.server_pid)
    reply = target.workers[0].request(cmd)
    ticks1, threads1 = _server_cpu(target.server_pid)
    reply["server_cpu_ms"] = round((ticks1 - ticks0) * 1e3)
    reply["server_cpu_ms_threads"] = round((threads1 - threads0) * 1e3, 2)
    return reply


def _open_contexts(
    target: driver.Target, credentials: list[str], in_flight: int, rounds: int
) -> dict[str, Any]:
    """The routing contexts, opened ``rounds`` times each way in ABBA order (the last run a
    batch's: its contexts are the ones the measurements use); each way's median and runs. A
    failed item is counted (by code, with the first messages) in its way's errors; only the
    last run must open every context, since the measurements need them all."""
    ops = {
        "begin_routing": {"op": "fanout_begin", "conc": in_flight},
        "batch_begin_routing": {"op": "fanout_batch_begin"},
    }
    order = [
        way
        for r in range(rounds)
        for way in (("begin_routing", "batch_begin_routing") if r % 2
                    else ("batch_begin_routing", "begin_routing"))
    ]  # fmt: skip
    order.reverse()  # ... B A A B: the batch last
    runs: dict[str, list[dict[str, Any]]] = {way: [] for way in ops}
    for i, way in enumerate(order):
        cmd = {**ops[way], "credentials": credentials, "ttl_s": ROUTING_TTL_S}
        reply = _timed(target, cmd)
        contexts = reply.pop("contexts")
        if i == len(order) - 1 and (reply["errors"] or len(contexts) != len(credentials)):
            raise RuntimeError(f"{target.name}: {way} failed: {reply}")
        runs[way].append({**reply, "contexts": len(contexts)})
    out: dict[str, Any] = {}
    for way, done in runs.items():
        codes: Counter[str] = Counter()
        for r in done:
            codes.update(r.get("error_codes", {}))
        samples = [e for r in done for e in r.get("error_samples", [])]
        out[way] = {
            "ms": round(statistics.median(r["ms"] for r in done), 2),
            "server_cpu_ms": round(statistics.median(r["server_cpu_ms"] for r in done)),
            "server_cpu_ms_threads": round(
                statistics.median(r["server_cpu_ms_threads"] for r in done), 2
            ),
            "errors": sum(r["errors"] for r in done),
            "error_codes": dict(codes),
            **({"error_samples": samples[:5]} if samples else {}),
            "contexts": len(credentials),
            "runs_ms": [r["ms"] for r in done],
            "runs": done,
        }
    out["begin_routing"]["in_flight"] = in_flight
    out["batch_begin_routing"]["calls"] = 1
    out["order"] = order
    return out


def _summary(runs: list[dict[str, Any]], first: dict[str, Any], orders: int) -> dict[str, Any]:
    ms = [r["ms"] for r in runs]
    p50 = statistics.median(ms)
    cpu_p50 = round(statistics.median(r["server_cpu_ms_threads"] for r in runs), 2)
    codes: Counter[str] = Counter()
    samples: list[str] = []
    for r in [first, *runs]:
        codes.update(r.get("error_codes", {}))
        samples += r.get("error_samples", [])
    out: dict[str, Any] = {
        "p50_ms": round(p50, 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
        "signatures_per_s": round(orders / (p50 / 1e3), 1) if p50 else None,
        "server_cpu_ms_p50": round(statistics.median(r["server_cpu_ms"] for r in runs), 1),
        "server_cpu_ms_threads_p50": cpu_p50,
        "server_cpu_us_per_item": round(cpu_p50 * 1e3 / orders, 1),
        "first_server_cpu_ms_threads": first["server_cpu_ms_threads"],
        "client_cpu_ms_p50": round(statistics.median(r["client_cpu_s"] for r in runs) * 1e3, 1),
        "first_ms": first["ms"],
        "errors": sum(r["errors"] for r in runs),
        "first_errors": first["errors"],
        "error_codes": dict(codes),
        **({"error_samples": samples[:5]} if samples else {}),
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
    begin_rounds: int = BEGIN_ROUNDS,
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
            setup[store].update(
                _open_contexts(targets[store], credentials, in_flight, begin_rounds)
            )
        bao = targets["openbao"].workers[0]
        largest = int(bao.request({"op": "fanout_bao_largest", "max": orders})["largest"])
        if largest < 1:
            raise RuntimeError("OpenBao accepted no transit batch_input at all")
        chunks = -(-orders // largest)
        plan: list[tuple[str, driver.Target, dict[str, Any]]] = [
            *((f"{s}_batch", targets[s], {"op": "fanout_batch"}) for s in stores),
            ("durable_floor_batch", targets["durable_floor"],
             {"op": "fanout_floor_batch", "n": orders}),
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
                reply = _timed(target, cmd)
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
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "description": (
            f"{orders:,} orders, one per Binance Spot HMAC credential, {workspaces} workspaces x "
            f"{per_workspace} credentials, one routing context each"
        ),
        "orders": orders,
        "workspaces": workspaces,
        "credentials_per_workspace": per_workspace,
        "in_flight": in_flight,
        "rounds": rounds,
        "begin_rounds": begin_rounds,
        "openbao_largest_batch": largest,
        "setup": setup,
        "measurements": measurements,
    }
