"""Turn measured samples into the results: statistics, ratios, targets, JSON, table, chart.

Every ratio is computed here from the measured numbers in the same result object, so a rerun
regenerates all of them (and the README cites ``bench/results/latest.json`` / ``latest.md``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

LEVELS = (1, 8, 32)
# Issue 9 "Targets": (ratio key, comparison, bound).
TARGETS: list[tuple[str, str, float]] = [
    ("p50_vs_floor", "<=", 1.5),
    ("p99_vs_floor", "<=", 2.5),
    ("throughput32_vs_floor", ">=", 0.7),
    ("throughput32_vs_openbao", ">=", 3.0),
    ("pg_p50_vs_floor", "<=", 1.5),
    ("pg_p99_vs_floor", "<=", 2.5),
    ("pg_throughput32_vs_floor", ">=", 0.7),
    ("pg_throughput32_vs_openbao", ">=", 3.0),
    ("pg_p50_vs_sqlite_p50", "<=", 2.0),
    ("scale_p50_100k_vs_10", "<=", 1.1),
    ("scale_rewrap_local_s", "<", 60.0),
    ("scale_rewrap_failed_signatures", "<=", 0.0),
    ("scale_rss_mb", "<", 300.0),
    # Fan-out (BatchSignOrders of 1,000 orders; ``bench.fanout``): p50 wall time of the call,
    # and its signatures/s against 1,000 SignOrder calls 64 in flight and OpenBao's batch.
    ("fanout1000_ms", "<=", 100.0),
    ("fanout1000_pg_ms", "<=", 150.0),
    ("fanout1000_vs_single_path", ">=", 6.0),
    ("fanout1000_vs_single_path_pg", ">=", 6.0),
    ("fanout1000_vs_openbao_batch", ">=", 0.25),
    ("fanout1000_vs_openbao_batch_pg", ">=", 0.25),
]

_TARGET_BOUNDS = {key: bound for key, _, bound in TARGETS}
# (figure suffix, ms figure, storage) of the fan-out figures.
_FANOUT_STORES = (("", "fanout1000_ms", "sqlite"), ("_pg", "fanout1000_pg_ms", "postgres"))


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100), at least 1
    return float(ordered[int(rank) - 1])


def latency_stats(samples: list[float], errors: int) -> dict[str, Any]:
    if not samples:
        raise ValueError("no successful calls measured")
    return {
        "p50_us": round(percentile(samples, 50), 1),
        "p99_us": round(percentile(samples, 99), 1),
        "p999_us": round(percentile(samples, 99.9), 1),
        "max_us": round(max(samples), 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "n": len(samples),
        "errors": errors,
    }


def throughput_stats(windows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per level: the median of the rounds' calls/s, and every window kept for the record."""
    return {
        level: {
            "calls_per_s": round(statistics.median(w["calls_per_s"] for w in runs), 1),
            "errors": sum(w["errors"] for w in runs),
            "windows": runs,
        }
        for level, runs in windows.items()
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _throughput(systems: dict[str, dict[str, Any]], name: str, level: int = 32) -> float | None:
    """A measured system's calls/s at ``level`` callers (None: not measured)."""
    s = systems.get(name)
    entry = s["throughput"].get(str(level)) if s else None
    return entry["calls_per_s"] if entry else None


def compute_ratios(systems: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The issue's ratios, from whichever systems were measured (missing ones give None)."""

    def p(name: str, key: str) -> float | None:
        s = systems.get(name)
        return s["sequential"][key] if s else None

    def tp(name: str) -> float | None:
        return _throughput(systems, name)

    ratios: dict[str, float | None] = {}
    for prefix, name in (("", "sqlite"), ("pg_", "postgres")):
        ratios[f"{prefix}p50_vs_floor"] = _ratio(p(name, "p50_us"), p("floor", "p50_us"))
        ratios[f"{prefix}p99_vs_floor"] = _ratio(p(name, "p99_us"), p("floor", "p99_us"))
        ratios[f"{prefix}throughput32_vs_floor"] = _ratio(tp(name), tp("floor"))
        ratios[f"{prefix}throughput32_vs_openbao"] = _ratio(tp(name), tp("openbao"))
    ratios["pg_p50_vs_sqlite_p50"] = _ratio(p("postgres", "p50_us"), p("sqlite", "p50_us"))
    # Not targets: how far the durable floor (the floor + one group-committed fsync) is from the
    # floor, and pipvault from the durable floor - what the disk costs versus what we cost.
    durable_p50 = p("durable_floor", "p50_us")
    ratios["durable_floor_p50_vs_floor"] = _ratio(durable_p50, p("floor", "p50_us"))
    ratios["p50_vs_durable_floor"] = _ratio(p("sqlite", "p50_us"), durable_p50)
    ratios["durable_floor_p99_vs_floor"] = _ratio(
        p("durable_floor", "p99_us"), p("floor", "p99_us")
    )
    ratios["p99_vs_durable_floor"] = _ratio(p("sqlite", "p99_us"), p("durable_floor", "p99_us"))
    ratios["throughput32_vs_durable_floor"] = _ratio(tp("sqlite"), tp("durable_floor"))
    # Nor these: the floor on pipvault's event loop (uvloop) against the floor.
    ratios["floor_uvloop_p50_vs_floor"] = _ratio(p("floor_uvloop", "p50_us"), p("floor", "p50_us"))
    ratios["floor_uvloop_throughput32_vs_floor"] = _ratio(tp("floor_uvloop"), tp("floor"))
    ratios["openbao_p50_vs_floor"] = _ratio(p("openbao", "p50_us"), p("floor", "p50_us"))
    ratios["openbao_throughput32_vs_floor"] = _ratio(tp("openbao"), tp("floor"))
    return ratios


def scale_figures(scale: dict[str, Any] | None) -> dict[str, float | None]:
    local = (scale or {}).get("local")
    if not local:
        return {}
    rewrap = local["rewrap"]
    rewrap_s = rewrap["duration_s"] if rewrap["finished"] else rewrap["projected_duration_s"]
    return {
        "scale_p50_100k_vs_10": local["p50_large_vs_small"],
        "scale_rewrap_local_s": rewrap_s,
        "scale_rewrap_failed_signatures": float(rewrap["signatures_failed"]),
        "scale_rss_mb": max(local["server_rss_mb"]["large"], rewrap["server_rss_peak_mb"]),
    }  # fmt: skip


def fanout_ratios(fanout: dict[str, Any] | None) -> dict[str, float | None]:
    """The fan-out figures: the batch's p50 ms and its signatures/s against the single path's
    (same orders, 64 in flight), OpenBao's batch and the durable floor's batch; the server CPU
    per item of the batch and of the durable floor's; opening the routing contexts (setup) one
    by one and in one BatchBeginRouting alongside."""
    m = (fanout or {}).get("measurements")
    if not m:
        return {}
    setup = fanout.get("setup", {}) if fanout else {}

    def rate(label: str) -> float | None:
        return m[label]["signatures_per_s"] if label in m else None

    def cpu_per_item(label: str) -> float | None:
        return m[label].get("server_cpu_us_per_item") if label in m else None

    out: dict[str, float | None] = {}
    for suffix, ms_key, store in _FANOUT_STORES:
        batch = f"{store}_batch"
        out[ms_key] = m[batch]["p50_ms"] if batch in m else None
        out[f"fanout1000_vs_single_path{suffix}"] = _ratio(rate(batch), rate(f"{store}_single"))
        out[f"fanout1000_vs_openbao_batch{suffix}"] = _ratio(rate(batch), rate("openbao_batch"))
        out[f"fanout1000_vs_durable_floor_batch{suffix}"] = _ratio(
            rate(batch), rate("durable_floor_batch")
        )
        out[f"fanout1000_server_cpu_us_per_item{suffix}"] = cpu_per_item(batch)
        begun = (setup.get(store) or {}).get("begin_routing")
        in_batch = (setup.get(store) or {}).get("batch_begin_routing")
        out[f"fanout_begin_routing_1000_ms{suffix}"] = begun["ms"] if begun else None
        out[f"fanout_batch_begin_routing_1000_ms{suffix}"] = in_batch["ms"] if in_batch else None
        out[f"fanout_batch_begin_routing_speedup{suffix}"] = _ratio(
            begun["ms"] if begun else None, in_batch["ms"] if in_batch else None
        )
    out["fanout1000_durable_floor_server_cpu_us_per_item"] = cpu_per_item("durable_floor_batch")
    # Not targets: the batch against the floor's 1,000 bare calls, 64 in flight.
    out["fanout1000_vs_floor"] = _ratio(rate("sqlite_batch"), rate("floor"))
    out["fanout1000_vs_floor_pg"] = _ratio(rate("postgres_batch"), rate("floor"))
    return out


def fanout_failed(fanout: dict[str, Any] | None) -> set[str]:
    """Fan-out figures whose measurements had an error (an item not signed, a failed call):
    their targets are missed whatever the time says."""
    m = (fanout or {}).get("measurements") or {}

    def bad(label: str) -> bool:
        return label in m and bool(m[label]["errors"] or m[label]["first_errors"])

    failed: set[str] = set()
    for suffix, ms_key, store in _FANOUT_STORES:
        single, bao = f"fanout1000_vs_single_path{suffix}", f"fanout1000_vs_openbao_batch{suffix}"
        if bad(f"{store}_batch"):
            failed |= {ms_key, single, bao}
        if bad(f"{store}_single"):
            failed.add(single)
        if bad("openbao_batch"):
            failed.add(bao)
    return failed


def compute_bounds(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What this same run says bounds each headline target (SQLite): not targets, evidence.

    Latency: the durable floor (the floor plus one group-committed, fsynced row) is the least any
    signature whose audit event is durable before the response can cost on this disk; a target
    below it (``under_durable_floor``) cannot be met by any implementation here.

    Throughput: one server interpreter runs its Python under one GIL, so its calls/s are at most
    the cores it manages to use (measured, ``cores_used``) divided by its CPU per call. The target
    rate fixes a CPU budget per call; ``under_durable_floor`` says the durable floor alone already
    spends more than that budget (thread CPU windows of the full run; absent from ``--quick``).

    Fan-out: :func:`fanout_bounds`.
    """
    ratios = report.get("ratios") or {}
    systems = report.get("systems") or {}
    out: dict[str, dict[str, Any]] = {}
    for key, durable_key in (
        ("p50_vs_floor", "durable_floor_p50_vs_floor"),
        ("p99_vs_floor", "durable_floor_p99_vs_floor"),
    ):
        durable = ratios.get(durable_key)
        if durable is not None:
            target = _TARGET_BOUNDS[key]
            out[key] = {
                "target": target,
                "durable_floor": durable,
                "under_durable_floor": durable > target,
            }

    cpu = report.get("thread_cpu") or {}
    ours = (cpu.get("sqlite") or {}).get("callers_32")
    durable_cpu = (cpu.get("durable_floor") or {}).get("callers_32")
    cores = float(ours["load"]["server_cpu_frac"]) if ours and durable_cpu else 0.0
    for key, reference in (
        ("throughput32_vs_floor", "floor"),
        ("throughput32_vs_openbao", "openbao"),
    ):
        rate = _throughput(systems, reference)
        if rate is None or cores <= 0 or not ours or not durable_cpu:
            continue
        required = _TARGET_BOUNDS[key] * rate
        budget = cores * 1e6 / required
        out[key] = {
            "target": _TARGET_BOUNDS[key],
            "required_calls_per_s": round(required, 1),
            "cores_used": cores,
            "cpu_budget_us_per_call": round(budget, 1),
            "durable_floor_cpu_us_per_call": durable_cpu["cpu_us_per_call"],
            "pipvault_cpu_us_per_call": ours["cpu_us_per_call"],
            "under_durable_floor": durable_cpu["cpu_us_per_call"] > budget,
        }
    out.update(fanout_bounds(report.get("fanout")))
    return out


def fanout_bounds(fanout: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """What bounds each fan-out target, from the same run: not targets, evidence.

    Each target fixes the longest the batch of ``orders`` may take (``max_batch_ms``: the target
    itself, or the time at which the batch's signatures/s reach the target multiple of the
    reference measured in this run). One server interpreter runs its Python on about one core, so
    that is at most ``max_batch_ms`` of server CPU, ``cpu_budget_us_per_item`` per item. The
    durable floor's batch (one HMAC-SHA256 per item, every row in one fsynced SQLite transaction)
    is the least a durable batch costs here: ``under_durable_floor`` says its wall time or its
    CPU per item already exceeds what the target allows. pipvault's CPU per item and the cores
    its batch used (server CPU over wall time) alongside; on PostgreSQL the database backend's
    CPU is not in pipvault's figure.
    """
    m = (fanout or {}).get("measurements") or {}
    floor = m.get("durable_floor_batch")
    if not fanout or not floor or floor.get("server_cpu_us_per_item") is None:
        return {}
    orders = int(fanout["orders"])
    out: dict[str, dict[str, Any]] = {}
    for suffix, ms_key, store in _FANOUT_STORES:
        batch = m.get(f"{store}_batch")
        if not batch or batch.get("server_cpu_us_per_item") is None:
            continue
        limits = {ms_key: _TARGET_BOUNDS[ms_key]}
        for key, reference in (
            (f"fanout1000_vs_single_path{suffix}", f"{store}_single"),
            (f"fanout1000_vs_openbao_batch{suffix}", "openbao_batch"),
        ):
            rate = (m.get(reference) or {}).get("signatures_per_s")
            if rate:
                limits[key] = orders * 1e3 / (_TARGET_BOUNDS[key] * rate)
        for key, max_ms in limits.items():
            budget = max_ms * 1e3 / orders
            out[key] = {
                "target": _TARGET_BOUNDS[key],
                "items": orders,
                "max_batch_ms": round(max_ms, 1),
                "cpu_budget_us_per_item": round(budget, 1),
                "durable_floor_batch_ms": floor["p50_ms"],
                "durable_floor_cpu_us_per_item": floor["server_cpu_us_per_item"],
                "pipvault_batch_ms": batch["p50_ms"],
                "pipvault_cpu_us_per_item": batch["server_cpu_us_per_item"],
                "pipvault_cores_used": _ratio(batch["server_cpu_ms_threads_p50"], batch["p50_ms"]),
                "under_durable_floor": floor["p50_ms"] > max_ms
                or floor["server_cpu_us_per_item"] > budget,
            }
    return out


def check_targets(
    figures: dict[str, float | None], failed: set[str] | frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Each measured figure against its target; a figure in ``failed`` (its measurement had
    errors) misses its target whatever its value."""
    out = []
    for key, op, bound in TARGETS:
        value = figures.get(key)
        if value is None:
            continue
        met = value <= bound if op == "<=" else value >= bound if op == ">=" else value < bound
        verdict = {"figure": key, "target": f"{op} {bound:g}", "measured": value, "met": met}
        if key in failed:
            verdict.update(met=False, errors=True)
        out.append(verdict)
    return out


def finish(report: dict[str, Any]) -> dict[str, Any]:
    """Fill in ratios and target checks from the measured sections of ``report``."""
    fanout = report.get("fanout")
    report["ratios"] = {**compute_ratios(report.get("systems") or {}), **fanout_ratios(fanout)}
    report["scale_figures"] = scale_figures(report.get("scale"))
    report["targets"] = check_targets(
        {**report["ratios"], **report["scale_figures"]}, fanout_failed(fanout)
    )
    report["bounds"] = compute_bounds(report)
    return report


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f}"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """Markdown tables: systems, ratios/targets, scale (also printed on stdout)."""
    lines = [
        "| system | p50 ms | p99 ms | p99.9 ms | max ms | calls/s @1 | @8 | @32 | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in report.get("systems", {}).items():
        seq, tp = s["sequential"], s["throughput"]
        errors = seq["errors"] + sum(tp[str(c)]["errors"] for c in LEVELS if str(c) in tp)
        rates = [_fmt(tp[str(c)]["calls_per_s"], 0) if str(c) in tp else "-" for c in LEVELS]
        lines.append(
            f"| {name}: {s['description']} | {seq['p50_us'] / 1000:.2f} | "
            f"{seq['p99_us'] / 1000:.2f} | {_ms(seq.get('p999_us'))} | {_ms(seq.get('max_us'))} | "
            f"{' | '.join(rates)} | {errors} |"
        )
    if report.get("targets"):
        lines += ["", "| figure | target | measured | met |", "|---|---|---|---|"]
        for t in report["targets"]:
            met = "yes" if t["met"] else "**no** (errors)" if t.get("errors") else "**no**"
            lines.append(f"| {t['figure']} | {t['target']} | {_fmt(t['measured'], 3)} | {met} |")
    lines += _bound_rows(report.get("bounds"))
    local = (report.get("scale") or {}).get("local")
    if local:
        n = local["credentials"]
        rw = local["rewrap"]
        lines += [
            "",
            "| scale (SQLite, local keyring) | value |",
            "|---|---|",
            f"| p50 with {local['credentials_small']} credentials | "
            f"{local['p50_us']['small'] / 1000:.2f} ms |",
            f"| p50 with {n:,} credentials in {local['workspaces']:,} workspaces | "
            f"{local['p50_us']['large'] / 1000:.2f} ms |",
            f"| server RSS at {n:,} credentials (after signing / peak during rewrap) | "
            f"{local['server_rss_mb']['large']} MB / {rw['server_rss_peak_mb']} MB |",
            *_rewrap_rows("local", rw),
        ]
        transit = (report.get("scale") or {}).get("transit")
        if transit:
            lines += _rewrap_rows("transit", transit["rewrap"])
    lines += _fanout_rows(report.get("fanout"))
    lines += _fleet_rows(report.get("fleet"))
    lines += _profile_rows(report.get("profile"))
    lines += _thread_cpu_rows(report.get("thread_cpu"))
    return "\n".join(lines)


def _fanout_rows(fanout: dict[str, Any] | None) -> list[str]:
    """The fan-out section: each way of getting the same signatures, then each setup."""
    if fanout and "error" in fanout:
        return ["", f"Fan-out: **failed**: {fanout['error']}"]
    if not fanout or "measurements" not in fanout:
        return []
    n = fanout["orders"]
    out = [
        "",
        f"Fan-out{f' ({when})' if (when := fanout.get('when')) else ''}: "
        f"{fanout['description']} (median of {fanout['rounds']} interleaved rounds; "
        "first round apart; server CPU: its threads, `schedstat`; `bench/fanout.py`)",
        "",
        f"| {n:,} signatures by | p50 ms | min ms | max ms | signatures/s | server CPU ms | "
        "first round ms (server CPU) | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, m in fanout["measurements"].items():
        errors = m["errors"] + m["first_errors"]
        codes = ", ".join(f"{c} {k}" for c, k in m["error_codes"].items())
        out.append(
            f"| {label}: {m['description']} | {m['p50_ms']:,.1f} | {m['min_ms']:,.1f} | "
            f"{m['max_ms']:,.1f} | {_fmt(m['signatures_per_s'], 0)} | {_fmt(_cpu_ms(m), 1)} | "
            f"{m['first_ms']:,.1f}{_first_cpu(m)} | "
            f"{errors}{f' ({codes})' if codes else ''} |"
        )
    out += [
        "",
        f"| fan-out setup (one system at a time) | workspaces s | credentials s | "
        f"BeginRouting x {n:,} ms ({fanout['in_flight']} in flight) | its server CPU ms | "
        f"BatchBeginRouting of {n:,} ms | its server CPU ms | one by one / batch | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if fanout.get("begin_rounds", 1) > 1:
        out[-2] = out[-2].replace(
            "| fan-out setup (one system at a time) |",
            f"| fan-out setup (one system at a time; contexts opened each way "
            f"{fanout['begin_rounds']} times in ABBA order, the median, the runs in brackets) |",
        )
    for store, s in fanout.get("setup", {}).items():
        begun, in_batch = s["begin_routing"], s.get("batch_begin_routing")
        batch_cells = (
            f"{_runs_cell(in_batch)} | {_fmt(_cpu_ms(in_batch), 0)} | "
            f"{_fmt(begun['ms'] / in_batch['ms'] if in_batch['ms'] else None)}x"
            if in_batch
            else "- | - | -"
        )
        errors = begun["errors"] + (in_batch["errors"] if in_batch else 0)
        codes = ", ".join(
            f"{way} {code} {k}"
            for way, m in (("one by one", begun), ("batch", in_batch or {}))
            for code, k in (m.get("error_codes") or {}).items()
        )
        out.append(
            f"| {store}: {s['workspaces']} workspaces, {s['credentials']:,} credentials "
            f"({s['threads']} threads) | {s['workspaces_s']:.2f} | {s['credentials_s']:.2f} | "
            f"{_runs_cell(begun)} | {_fmt(_cpu_ms(begun), 0)} | {batch_cells} | "
            f"{errors}{f' ({codes})' if codes else ''} |"
        )
    return out


def _cpu_ms(m: dict[str, Any]) -> float | None:
    """The server CPU of a piece of work: the threads' precise figure when there is one."""
    precise = m.get("server_cpu_ms_threads_p50", m.get("server_cpu_ms_threads"))
    return precise if precise is not None else m.get("server_cpu_ms_p50", m.get("server_cpu_ms"))


def _first_cpu(m: dict[str, Any]) -> str:
    first = m.get("first_server_cpu_ms_threads")
    return f" ({first:,.1f})" if first is not None else ""


def _runs_cell(setup: dict[str, Any]) -> str:
    """A setup figure, and its runs when there were several (ABBA order)."""
    runs = setup.get("runs_ms") or []
    each = f" ({', '.join(f'{ms:,.0f}' for ms in runs)})" if len(runs) > 1 else ""
    return f"{setup['ms']:,.0f}{each}"


def _fleet_rows(fleet: dict[str, Any] | None) -> list[str]:
    if not fleet or "ratio" not in fleet:
        return []
    met = fleet["ratio"] is not None and fleet["ratio"] >= fleet["target_ratio"]
    errors = fleet["errors"]
    return [
        "",
        f"| fleet: {fleet['description']} | value |",
        "|---|---|",
        f"| one replica | {_fmt(fleet['one_replica_calls_per_s'], 0)} calls/s, "
        f"{errors['one']} errors |",
        f"| two replicas | {_fmt(fleet['two_replicas_calls_per_s'], 0)} calls/s, "
        f"{errors['fleet']} errors |",
        f"| ratio two / one (target >= {fleet['target_ratio']}) | {_fmt(fleet['ratio'], 3)} "
        f"({'met' if met else '**missed**'}) |",
    ]


def _bound_rows(bounds: dict[str, dict[str, Any]] | None) -> list[str]:
    if not bounds:
        return []
    out = ["", "| what bounds a headline target (same run) | target | bound | under it? |",
           "|---|---|---|---|"]  # fmt: skip
    for key, b in bounds.items():
        under = "**yes**: below what the durable floor costs" if b["under_durable_floor"] else "no"
        if "max_batch_ms" in b:
            bound = (
                f"≤ {b['max_batch_ms']:,.1f} ms for {b['items']:,} items = ≤ "
                f"{b['cpu_budget_us_per_item']:,.1f} µs server CPU per item (one interpreter, "
                f"one core); durable floor batch {b['durable_floor_batch_ms']:,.1f} ms, "
                f"{b['durable_floor_cpu_us_per_item']:,.1f} µs per item; pipvault "
                f"{b['pipvault_batch_ms']:,.1f} ms, {b['pipvault_cpu_us_per_item']:,.1f} µs per "
                f"item ({_fmt(b['pipvault_cores_used'])} cores)"
            )
        elif "cpu_budget_us_per_call" in b:
            bound = (
                f"{b['required_calls_per_s']:,.0f} calls/s on {b['cores_used']:g} cores = "
                f"{b['cpu_budget_us_per_call']:,.0f} µs CPU per call; durable floor uses "
                f"{b['durable_floor_cpu_us_per_call']:,.0f}, pipvault "
                f"{b['pipvault_cpu_us_per_call']:,.0f}"
            )
        else:
            bound = f"durable floor {b['durable_floor']:.2f}x the floor"
        out.append(f"| {key} | {b['target']:g} | {bound} | {under} |")
    return out


def _thread_cpu_rows(cpu: dict[str, Any] | None) -> list[str]:
    if not cpu or "error" in cpu:
        return []
    out = [
        "",
        "CPU per call by server thread (`/proc`, user + system; `bench/thread_cpu.py`)",
        "",
        "| server | callers | calls/s | CPU µs per call | by thread (µs per call) |",
        "|---|---|---|---|---|",
    ]
    for name, levels in cpu.items():
        for key, m in levels.items():
            threads = ", ".join(f"{t} {us:,.0f}" for t, us in m["threads"].items())
            out.append(
                f"| {name} | {key.split('_')[1]} | {_fmt(m['load']['calls_per_s'], 0)} | "
                f"{_fmt(m['cpu_us_per_call'], 0)} | {threads} |"
            )
    return out


def _profile_rows(prof: dict[str, Any] | None) -> list[str]:
    out: list[str] = []
    for key in ("callers_1", "callers_32"):
        p = (prof or {}).get(key)
        if not p:
            continue
        callers = key.split("_")[1]
        out += [
            "",
            f"py-spy, SQLite server, {callers} caller(s), {p['load']['calls_per_s']} calls/s, "
            f"{p['busy_share']:.0%} of {p['samples']} samples in vault code "
            f"(shares below are of those); raw stacks: `{p['raw_stacks']}`",
            "",
            "| inclusive (vault frames) | share | own time (any frame) | share |",
            "|---|---|---|---|",
        ]
        inc, own = p["inclusive_vault_server"], p["self"]
        for i in range(max(len(inc), len(own))):
            a = inc[i] if i < len(inc) else {"frame": "", "share": None}
            b = own[i] if i < len(own) else {"frame": "", "share": None}
            out.append(
                f"| `{a['frame']}` | {_fmt(a['share'], 3)} | `{b['frame']}` | "
                f"{_fmt(b['share'], 3)} |"
            )
    return out


def _rewrap_rows(label: str, rw: dict[str, Any]) -> list[str]:
    done = (
        f"{rw['duration_s']} s"
        if rw["finished"]
        else f"not finished in the {rw['budget_s']:g} s budget: {rw['rewrapped']:,} done "
        f"({rw['rewrapped_per_s']}/s), projected {_fmt(rw['projected_duration_s'], 0)} s"
    )
    return [
        f"| rewrap of {rw['data_keys']:,} data keys on `{label}` (KEK rotation) | {done} |",
        f"| signatures during that rewrap: ok / failed (p50) | {rw['signatures_ok']} / "
        f"{rw['signatures_failed']} ({_fmt((rw['signing_p50_us_during'] or 0) / 1000)} ms) |",
    ]


def chart(report: dict[str, Any], path: Path) -> None:
    """Latency (p50, p99) and throughput per concurrency level, per system, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = report.get("systems", {})
    names = list(systems)
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = range(len(names))
    p50 = [systems[n]["sequential"]["p50_us"] / 1000 for n in names]
    p99 = [systems[n]["sequential"]["p99_us"] / 1000 for n in names]
    lat.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
    lat.bar([x + 0.2 for x in xs], p99, width=0.4, label="p99")
    lat.set_xticks(list(xs), names, rotation=20, ha="right")
    lat.set_ylabel("sequential latency, ms")
    lat.set_yscale("log")
    lat.legend()
    lat.set_title("latency (lower is better)")
    for n in names:
        tp = systems[n]["throughput"]
        levels = [c for c in LEVELS if str(c) in tp]
        thr.plot(levels, [tp[str(c)]["calls_per_s"] for c in levels], marker="o", label=n)
    thr.set_xscale("log", base=2)
    thr.set_xticks(list(LEVELS), [str(c) for c in LEVELS])
    thr.set_yscale("log")
    thr.set_xlabel("concurrent callers")
    thr.set_ylabel("calls/s")
    thr.legend()
    thr.set_title("throughput (higher is better)")
    fig.suptitle(f"pipvault bench, {report.get('when', '')}, {report['machine']['cpus']} cores")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
