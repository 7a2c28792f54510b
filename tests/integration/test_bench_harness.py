"""The benchmark harness in a tiny configuration, so it cannot silently rot.

Real processes throughout: the floor server, a ``pipvault serve`` (SQLite) and an OpenBao raft
server with its file audit device, each in its own process, driven by real load-generator
processes. Asserts structure and consistency (sample
counts, every call succeeded, ratios computed from the measured numbers, files written), never
speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from bench import driver, fanout, profile, report, scale, systems, thread_cpu


def test_floor_pipvault_and_openbao_measured_and_reported(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(3) as pool:
        starting = [
            pool.submit(systems.start_floor, tmp_path),
            pool.submit(systems.start_pipvault, "sqlite", tmp_path, "sqlite"),
            pool.submit(systems.start_openbao, tmp_path),
        ]
        for future in starting:  # every started system is stopped, even if another failed
            with contextlib.suppress(Exception):
                server = future.result()
                stack.callback(server.drop if hasattr(server, "drop") else server.stop)
        floor, pv, bao = (future.result() for future in starting)
        targets = [floor.target, pv.make_target(), systems.openbao_target(bao)]
        for t in targets:
            t.start_workers(1)
        audit_before = systems.audit_lines(bao)
        seq = driver.sequential(targets, rounds=2, per_round=5, warmup=2)
        tp = driver.throughput(targets, [1, 32], rounds=1, duration=0.3, procs=1)
        audited = systems.audit_lines(bao) - audit_before
        server_pids = {t.server_pid for t in targets}

    names = ("floor", "sqlite", "openbao")
    assert len(server_pids) == 3  # three server processes, none of them this one
    assert os.getpid() not in server_pids
    # OpenBao's file audit device saw every HMAC call (a request and a response line each)
    assert audited >= 2 * (12 + sum(tp["openbao"][lv][0]["calls"] for lv in ("1", "32")))
    assert seq["errors"] == dict.fromkeys(names, 0)
    for name in names:
        assert len(seq["samples"][name]) == 10
        assert all(s > 0 for s in seq["samples"][name])
        for level in ("1", "32"):
            (window,) = tp[name][level]
            assert window["errors"] == 0
            assert window["calls"] > 0
            assert window["calls_per_s"] == round(window["calls"] / 0.3, 1)
            assert window["load_procs"] == 1

    result = {
        "machine": {"cpus": 2},
        "when": "test",
        "systems": {
            name: {
                "description": name,
                "sequential": report.latency_stats(seq["samples"][name], 0),
                "throughput": report.throughput_stats(tp[name]),
            }
            for name in names
        },
    }
    report.finish(result)
    floor_s, sqlite_s = result["systems"]["floor"], result["systems"]["sqlite"]
    ratios = result["ratios"]
    assert ratios["p50_vs_floor"] == round(
        sqlite_s["sequential"]["p50_us"] / floor_s["sequential"]["p50_us"], 3
    )
    assert ratios["p99_vs_floor"] == round(
        sqlite_s["sequential"]["p99_us"] / floor_s["sequential"]["p99_us"], 3
    )
    assert ratios["throughput32_vs_floor"] == round(
        sqlite_s["throughput"]["32"]["calls_per_s"] / floor_s["throughput"]["32"]["calls_per_s"], 3
    )
    bao_s = result["systems"]["openbao"]
    assert ratios["throughput32_vs_openbao"] == round(
        sqlite_s["throughput"]["32"]["calls_per_s"] / bao_s["throughput"]["32"]["calls_per_s"], 3
    )
    # systems that were not measured give no ratio (and no target verdict), never a made-up one
    assert ratios["pg_p50_vs_sqlite_p50"] is None
    assert ratios["pg_p50_vs_floor"] is None
    verdicts = {t["figure"]: t for t in result["targets"]}
    assert set(verdicts) == {
        "p50_vs_floor",
        "p99_vs_floor",
        "throughput32_vs_floor",
        "throughput32_vs_openbao",
    }
    assert verdicts["p50_vs_floor"]["met"] == (ratios["p50_vs_floor"] <= 1.5)

    report.write_json(result, tmp_path / "out" / "latest.json")
    assert json.loads((tmp_path / "out" / "latest.json").read_text())["ratios"] == ratios
    text = report.table(result)
    assert "| floor: floor |" in text
    assert "p50_vs_floor" in text
    report.chart(result, tmp_path / "out" / "latest.png")
    assert (tmp_path / "out" / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_percentile_is_nearest_rank() -> None:
    samples = [float(x) for x in range(100, 0, -1)]
    assert report.percentile(samples, 50) == 50.0
    assert report.percentile(samples, 99) == 99.0
    assert report.percentile([7.0], 99) == 7.0
    stats = report.latency_stats([float(x) for x in range(1, 2001)], 0)
    assert (stats["p99_us"], stats["p999_us"], stats["max_us"]) == (1980.0, 1998.0, 2000.0)
    with pytest.raises(ValueError, match="no successful calls"):
        report.latency_stats([], 3)


def test_scale_run_seeds_real_envelopes_and_rewraps_them_all(tmp_path: Path) -> None:
    """The scale pipeline at 30 credentials in 3 workspaces: every seeded data key is a real
    envelope the server can rewrap, and signing keeps working during the rewrap."""
    result = scale.run_local(
        tmp_path, credentials=30, workspaces=3, rounds=1, per_round=5, budget_s=120,
        small_credentials=1,
    )  # fmt: skip
    assert result["seeded"]["credentials"] == 30
    assert result["seeded"]["workspaces"] == 3
    assert result["seeded"]["seeded"] == 29
    assert result["errors"] == {"small": 0, "large": 0}
    assert result["samples"] == {"small": 5, "large": 5}
    assert result["p50_large_vs_small"] == round(
        result["p50_us"]["large"] / result["p50_us"]["small"], 3
    )
    rewrap = result["rewrap"]
    assert rewrap["finished"] is True
    assert rewrap["data_keys"] == 30
    assert rewrap["rewrapped"] == 30
    assert rewrap["signatures_ok"] > 0
    assert rewrap["signatures_failed"] == 0
    assert rewrap["server_rss_peak_mb"] > 0


def test_profile_frames_are_shares_of_busy_samples(tmp_path: Path) -> None:
    raw = tmp_path / "stacks.txt"
    raw.write_text(
        "run (/x/lib/python3.11/threading.py:10);sign (/w/vault_server/services/signing.py:5) 3\n"
        "run (/x/lib/python3.11/threading.py:10);sign (/w/vault_server/services/signing.py:5);"
        "commit (/v/site-packages/sqlalchemy/orm.py:9) 1\n"
        "_worker (/x/lib/python3.11/concurrent/futures/thread.py:81) 4\n"
        "main (/w/vault_server/cli/main.py:3);select (/x/lib/python3.11/selectors.py:4) 2\n"
    )
    top = profile.top_frames(raw)
    assert top["samples"] == 10
    assert top["busy_samples"] == 4
    assert top["busy_share"] == 0.4
    own = {f["frame"]: f["share"] for f in top["self"]}
    assert own == {
        "sign (vault_server/services/signing.py)": 0.75,
        "commit (sqlalchemy/orm.py)": 0.25,
    }
    ours = top["inclusive_vault_server"]
    assert ours == [{"frame": "sign (vault_server/services/signing.py)", "share": 1.0}]


def test_durable_floor_answers_only_after_its_row_is_committed(tmp_path: Path) -> None:
    """The durable floor's process commits a row per call before answering: after the calls
    the database holds exactly the calls made (warm-up included), each with its digest. The
    floor on uvloop answers too, and both get their ratios against the floor."""
    import sqlite3

    with contextlib.ExitStack() as stack:
        floor = systems.start_floor(tmp_path)
        stack.callback(floor.stop)
        durable = systems.start_floor(tmp_path, durable=True)
        stack.callback(durable.stop)
        on_uvloop = systems.start_floor(tmp_path, uvloop=True)
        stack.callback(on_uvloop.stop)
        targets = [floor.target, durable.target, on_uvloop.target]
        for t in targets:
            t.start_workers(1)
        seq = driver.sequential(targets, rounds=2, per_round=5, warmup=2)
        db = tmp_path / "durable_floor.db"
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute("SELECT body, digest FROM signed").fetchall()
        assert len(rows) == 2 + 2 * 5  # every call, none before its commit returned
        assert all(len(digest) == 64 and body for body, digest in rows)
        (window,) = driver.throughput([durable.target], [8], 1, 0.3, 1)["durable_floor"]["8"]
        with contextlib.closing(sqlite3.connect(db)) as conn:
            (count,) = conn.execute("SELECT count(*) FROM signed").fetchone()
        assert window["errors"] == 0 and window["calls"] > 0
        assert count >= 12 + window["calls"]
        assert not (tmp_path / "floor.db").exists()  # the floor itself stores nothing
        assert seq["errors"] == {"floor": 0, "durable_floor": 0, "floor_uvloop": 0}
        assert len(seq["samples"]["floor_uvloop"]) == 10

    result = {
        "systems": {
            t.name: {
                "sequential": report.latency_stats(seq["samples"][t.name], 0),
                "throughput": {},
            }
            for t in targets
        }
    }
    ratios = report.finish(result)["ratios"]
    p50 = {name: s["sequential"]["p50_us"] for name, s in result["systems"].items()}
    assert ratios["durable_floor_p50_vs_floor"] == round(p50["durable_floor"] / p50["floor"], 3)
    assert ratios["floor_uvloop_p50_vs_floor"] == round(p50["floor_uvloop"] / p50["floor"], 3)
    assert ratios["p50_vs_durable_floor"] is None  # pipvault was not measured here


def test_thread_cpu_per_call_sums_each_named_thread() -> None:
    before = {"1": ("python", 1.0), "2": ("python", 0.5), "3": ("event_engine", 0.0)}
    after = {
        "1": ("python", 1.4), "2": ("python", 0.6), "3": ("event_engine", 0.1),
        "4": ("python", 0.1),  # started during the window: all of its CPU counts
        "5": ("python", 0.0000001),  # idle: left out
    }  # fmt: skip
    names = {"1": "MainThread", "2": "pool_0", "4": "pool_1", "5": "idle"}
    got = thread_cpu.per_call_us(before, after, names, calls=1000)
    assert got == {"MainThread": 400.0, "pool": 200.0, "event_engine": 100.0}
    assert list(got) == ["MainThread", "pool", "event_engine"]  # largest first
    assert thread_cpu.per_call_us(before, after, names, calls=0) == {}


def test_thread_cpu_measures_a_live_server_window(tmp_path: Path) -> None:
    """Real floor process, real window: the CPU read around the window is attributed to named
    threads and adds up to the per-call total."""
    with contextlib.ExitStack() as stack:
        floor = systems.start_floor(tmp_path)
        stack.callback(floor.stop)
        stack.callback(floor.target.close)
        floor.target.start_workers(2)
        assert "MainThread" in thread_cpu.python_names(floor.target.server_pid).values()
        m = thread_cpu.measure(floor.target, 8, 0.5)
    assert m["load"]["calls"] > 0 and m["load"]["errors"] == 0
    assert "probe" not in m["load"]
    assert m["threads"]["MainThread"] > 0
    assert m["cpu_us_per_call"] == round(sum(m["threads"].values()), 1)
    # the server did the work: its CPU per call is at least what the process-wide reading says
    process_us = m["load"]["server_cpu_frac"] * 0.5 / m["load"]["calls"] * 1e6
    assert m["cpu_us_per_call"] >= 0.5 * process_us


def _bounds_report(floor_tp: float, durable_cpu: float, cores: float) -> dict[str, object]:
    def system(p50: float, p99: float, tp32: float) -> dict[str, object]:
        return {
            "sequential": {"p50_us": p50, "p99_us": p99},
            "throughput": {"32": {"calls_per_s": tp32}},
        }

    def cpu(per_call: float, server_cpu_frac: float) -> dict[str, object]:
        load = {"server_cpu_frac": server_cpu_frac}
        return {"callers_32": {"load": load, "cpu_us_per_call": per_call}}

    return {
        "systems": {
            "floor": system(500.0, 1000.0, floor_tp),
            "durable_floor": system(800.0, 2600.0, 2400.0),
            "sqlite": system(1400.0, 2700.0, 1000.0),
            "openbao": system(1000.0, 2000.0, 800.0),
        },
        "thread_cpu": {"durable_floor": cpu(durable_cpu, 1.0), "sqlite": cpu(900.0, cores)},
    }


def test_bounds_say_which_targets_sit_below_the_durable_floor() -> None:
    result = report.finish(_bounds_report(floor_tp=3000.0, durable_cpu=450.0, cores=1.05))
    bounds = result["bounds"]
    # latency: durable floor 1.6x at p50 (> 1.5: unreachable), 2.6x at p99 (> 2.5: unreachable)
    assert bounds["p50_vs_floor"] == {
        "target": 1.5,
        "durable_floor": 1.6,
        "under_durable_floor": True,
    }
    assert bounds["p99_vs_floor"]["durable_floor"] == 2.6
    assert bounds["p99_vs_floor"]["under_durable_floor"] is True
    # throughput vs floor: 0.7 * 3000 = 2100 calls/s on 1.05 cores -> 500 us per call > 450
    tp = bounds["throughput32_vs_floor"]
    assert tp["required_calls_per_s"] == 2100.0
    assert tp["cpu_budget_us_per_call"] == 500.0
    assert tp["under_durable_floor"] is False
    assert tp["pipvault_cpu_us_per_call"] == 900.0
    # throughput vs OpenBao: 3 * 800 = 2400 calls/s -> 437.5 us per call < 450
    ob = bounds["throughput32_vs_openbao"]
    assert ob["cpu_budget_us_per_call"] == 437.5
    assert ob["under_durable_floor"] is True
    rows = "\n".join(report._bound_rows(bounds))
    assert "| throughput32_vs_floor | 0.7 | 2,100 calls/s on 1.05 cores = 500 µs" in rows
    assert rows.count("**yes**") == 3


def test_bounds_without_thread_cpu_cover_latency_only() -> None:
    quick = _bounds_report(floor_tp=3000.0, durable_cpu=450.0, cores=1.0)
    quick.pop("thread_cpu")  # --quick runs no thread CPU windows
    bounds = report.finish(quick)["bounds"]
    assert set(bounds) == {"p50_vs_floor", "p99_vs_floor"}


@pytest.mark.postgres
def test_fleet_case_measures_two_replicas_against_one(tmp_path: Path) -> None:
    """The fleet case runs two real replicas on one fresh PostgreSQL database, signs in every
    workspace from both, and reports the ratio and the errors of each side."""
    from bench import fleet

    result = fleet.run_fleet(tmp_path, rounds=1, duration=0.5, callers=4, procs=1)
    assert result["errors"] == {"one": 0, "fleet": 0}, result
    assert result["one_replica_calls_per_s"] > 0 and result["two_replicas_calls_per_s"] > 0
    assert result["ratio"] == round(
        result["two_replicas_calls_per_s"] / result["one_replica_calls_per_s"], 3
    )
    rows = "\n".join(report._fleet_rows(result))
    assert "two replicas" in rows and ("(met)" in rows) == (result["ratio"] >= 0.7)
    missed = {**result, "ratio": 0.5}
    assert "**missed**" in "\n".join(report._fleet_rows(missed))


def test_fanout_signs_every_order_and_reports_each_way(tmp_path: Path) -> None:
    """The fan-out case at 6 orders (2 workspaces x 3 credentials) on SQLite, real processes:
    every way of getting the signatures measured each round without an error, the batch's
    figures computed from the measured medians, its targets judged and its section written;
    the routing contexts opened both ways (ABBA), the durable floor's batch committed whole."""
    import sqlite3

    result = fanout.run_fanout(tmp_path, 2, False, workspaces=2, per_workspace=3, in_flight=4)
    m = result["measurements"]
    assert list(m) == [
        "sqlite_batch", "durable_floor_batch", "openbao_batch", "openbao_batch_sequential",
        "floor", "sqlite_single",
    ]  # fmt: skip
    for label, got in m.items():
        assert got["errors"] == 0 and got["first_errors"] == 0, (label, got["error_codes"])
        assert got["rounds"] == 2 and len(got["runs_ms"]) == 2
        assert got["min_ms"] <= got["p50_ms"] <= got["max_ms"]
        assert got["signatures_per_s"] == round(6e3 / statistics.median(got["runs_ms"]), 1)
        assert got["server_cpu_ms_threads_p50"] > 0, label  # ns-precise: never a 0-tick reading
        assert got["server_cpu_us_per_item"] == round(got["server_cpu_ms_threads_p50"] * 1e3 / 6, 1)
    # the durable floor holds exactly one row per item of every batch (3 rounds: first + 2)
    with contextlib.closing(sqlite3.connect(tmp_path / "fanout" / "durable_floor.db")) as conn:
        rows = conn.execute("SELECT body, digest FROM signed ORDER BY id").fetchall()
    assert len(rows) == 3 * 6
    assert all(b"newClientOrderId=" in body and len(digest) == 64 for body, digest in rows)
    assert len({digest for _, digest in rows}) == 18
    setup = result["setup"]["sqlite"]
    assert setup["credentials"] == 6
    assert setup["order"] == [
        "batch_begin_routing", "begin_routing", "begin_routing", "batch_begin_routing",
    ]  # fmt: skip
    for way in ("begin_routing", "batch_begin_routing"):
        assert setup[way]["contexts"] == 6 and setup[way]["errors"] == 0
        assert len(setup[way]["runs"]) == 2
        assert setup[way]["ms"] == round(statistics.median(setup[way]["runs_ms"]), 2)
        assert all(r["calls"] == 6 and r["server_cpu_ms_threads"] > 0 for r in setup[way]["runs"])
    assert result["openbao_largest_batch"] == 6  # the probe stops at what the run needs
    assert m["openbao_batch"]["requests"] == 1
    assert m["sqlite_batch"]["response_bytes"] > m["sqlite_batch"]["request_bytes"] > 0

    ratios = report.fanout_ratios(result)
    assert ratios["fanout1000_ms"] == m["sqlite_batch"]["p50_ms"]
    assert ratios["fanout1000_vs_single_path"] == round(
        m["sqlite_batch"]["signatures_per_s"] / m["sqlite_single"]["signatures_per_s"], 3
    )
    assert ratios["fanout1000_vs_openbao_batch"] == round(
        m["sqlite_batch"]["signatures_per_s"] / m["openbao_batch"]["signatures_per_s"], 3
    )
    assert ratios["fanout1000_pg_ms"] is None  # PostgreSQL was not measured
    assert ratios["fanout_begin_routing_1000_ms"] == setup["begin_routing"]["ms"]
    assert ratios["fanout_batch_begin_routing_1000_ms"] == setup["batch_begin_routing"]["ms"]
    assert ratios["fanout_batch_begin_routing_speedup"] == round(
        setup["begin_routing"]["ms"] / setup["batch_begin_routing"]["ms"], 3
    )
    assert ratios["fanout1000_vs_durable_floor_batch"] == round(
        m["sqlite_batch"]["signatures_per_s"] / m["durable_floor_batch"]["signatures_per_s"], 3
    )
    assert (
        ratios["fanout1000_server_cpu_us_per_item"] == m["sqlite_batch"]["server_cpu_us_per_item"]
    )
    assert (
        ratios["fanout1000_durable_floor_server_cpu_us_per_item"]
        == m["durable_floor_batch"]["server_cpu_us_per_item"]
    )
    assert ratios["fanout_batch_begin_routing_speedup_pg"] is None
    done = report.finish({"fanout": result})
    bound = done["bounds"]["fanout1000_ms"]
    assert (bound["max_batch_ms"], bound["cpu_budget_us_per_item"]) == (100.0, round(1e5 / 6, 1))
    assert bound["durable_floor_batch_ms"] == m["durable_floor_batch"]["p50_ms"]
    assert set(done["bounds"]) == {
        "fanout1000_ms", "fanout1000_vs_single_path", "fanout1000_vs_openbao_batch",
    }  # fmt: skip
    verdicts = {t["figure"]: t for t in done["targets"]}
    assert set(verdicts) == {
        "fanout1000_ms", "fanout1000_vs_single_path", "fanout1000_vs_openbao_batch",
    }  # fmt: skip
    assert verdicts["fanout1000_ms"]["met"] == (m["sqlite_batch"]["p50_ms"] <= 100)
    text = report.table(done)
    assert "| sqlite_batch: pipvault BatchSignOrders, one call (SQLite) |" in text
    assert "BeginRouting x 6 ms (4 in flight)" in text
    assert "| durable_floor_batch: the durable floor: one HmacBatch call" in text
    assert "BatchBeginRouting of 6 ms" in text and "ABBA" in text

    # an error in the batch fails its figures, whatever the time says
    m["sqlite_batch"].update(errors=1, error_codes={"FAILED_PRECONDITION": 1})
    failed = {t["figure"]: t for t in report.finish({"fanout": result})["targets"]}
    assert all(not failed[k]["met"] and failed[k]["errors"] for k in verdicts)
    assert "**no** (errors)" in report.table({"fanout": result, "targets": list(failed.values())})


def test_fanout_batch_counts_each_refused_item(tmp_path: Path) -> None:
    """The load process checks every result of the batch: after one routing context is ended,
    the next batch signs the others and counts that one item as an error, by code."""
    from pipsync.vault.v1 import signing_service_pb2, signing_service_pb2_grpc

    ws = fanout.workspace_ids(2)
    with contextlib.ExitStack() as stack:
        pv = systems.start_pipvault("fo", tmp_path, "sqlite", None, ["bench", *ws])
        stack.callback(pv.drop)
        credentials, setup = fanout.seed(pv, ws, 2, threads=2)
        assert setup["credentials"] == 4 and len(set(credentials)) == 4
        target = pv.make_target()
        target.start_workers(1)
        worker = target.workers[0]
        begun = worker.request(
            {"op": "fanout_begin", "credentials": credentials, "conc": 4, "ttl_s": 600}
        )
        assert begun["errors"] == 0 and len(begun["contexts"]) == 4
        first = worker.request({"op": "fanout_batch"})
        assert (first["signed"], first["errors"]) == (4, 0)
        with grpc.insecure_channel(f"unix:{pv.socket}") as data:
            signing_service_pb2_grpc.SigningServiceStub(data).EndRouting(
                signing_service_pb2.EndRoutingRequest(name=begun["contexts"][1], reason="test"),
                metadata=pv.md("bench-router"), timeout=30,
            )  # fmt: skip
        second = worker.request({"op": "fanout_batch"})
        burst = worker.request({"op": "fanout_burst", "conc": 4})
        # BatchBeginRouting: each item checked alone; the opened ones replace the contexts
        missing = credentials[0].rsplit("/", 1)[0] + "/nope"
        reopened = worker.request(
            {"op": "fanout_batch_begin", "credentials": [*credentials[:3], missing], "ttl_s": 600}
        )
        third = worker.request({"op": "fanout_batch"})
    assert (second["signed"], second["errors"]) == (3, 1), second
    assert sum(second["error_codes"].values()) == 1
    assert (burst["calls"], burst["errors"]) == (3, 1), burst
    assert (reopened["calls"], reopened["errors"]) == (3, 1), reopened
    assert len(reopened["contexts"]) == 3 and set(reopened["contexts"]).isdisjoint(
        begun["contexts"]
    )
    assert (third["signed"], third["errors"]) == (3, 0), third


def _fanout_result(floor_ms: float, floor_cpu_ms: float) -> dict[str, object]:
    def m(p50: float, cpu_ms: float | None = None) -> dict[str, object]:
        cpu = {} if cpu_ms is None else {
            "server_cpu_ms_threads_p50": cpu_ms, "server_cpu_us_per_item": cpu_ms,  # 1,000 items
        }  # fmt: skip
        return {"p50_ms": p50, "signatures_per_s": round(1e6 / p50, 1), "errors": 0,
                "first_errors": 0, **cpu}  # fmt: skip

    return {
        "orders": 1000,
        "measurements": {
            "sqlite_batch": m(160.0, 150.0),
            "durable_floor_batch": m(floor_ms, floor_cpu_ms),
            "sqlite_single": m(1000.0),  # 1,000 signatures/s: >= 6x needs <= 166.7 ms
            "openbao_batch": m(50.0),  # 20,000 signatures/s: >= 0.25x needs <= 200 ms
        },
    }


def test_fanout_bounds_translate_each_target_into_time_and_cpu_per_item() -> None:
    bounds = report.fanout_bounds(_fanout_result(floor_ms=30.0, floor_cpu_ms=20.0))
    assert set(bounds) == {
        "fanout1000_ms", "fanout1000_vs_single_path", "fanout1000_vs_openbao_batch",
    }  # fmt: skip
    ms = bounds["fanout1000_ms"]
    assert (ms["max_batch_ms"], ms["cpu_budget_us_per_item"]) == (100.0, 100.0)
    assert ms["durable_floor_cpu_us_per_item"] == 20.0 and ms["pipvault_cpu_us_per_item"] == 150.0
    assert ms["pipvault_cores_used"] == round(150 / 160, 3)
    assert ms["under_durable_floor"] is False
    assert bounds["fanout1000_vs_single_path"]["max_batch_ms"] == 166.7
    assert bounds["fanout1000_vs_openbao_batch"]["cpu_budget_us_per_item"] == 200.0
    rows = "\n".join(report._bound_rows(bounds))
    assert "| fanout1000_ms | 100 | ≤ 100.0 ms for 1,000 items = ≤ 100.0 µs server CPU" in rows
    assert "durable floor batch 30.0 ms, 20.0 µs per item; pipvault 160.0 ms, 150.0 µs" in rows
    assert "**yes**" not in rows
    # a durable floor slower than the target's time, or costlier in CPU, puts the target under it
    slow = report.fanout_bounds(_fanout_result(floor_ms=120.0, floor_cpu_ms=20.0))
    assert slow["fanout1000_ms"]["under_durable_floor"] is True
    assert slow["fanout1000_vs_single_path"]["under_durable_floor"] is False
    costly = report.fanout_bounds(_fanout_result(floor_ms=30.0, floor_cpu_ms=180.0))
    assert [k for k, b in costly.items() if b["under_durable_floor"]] == [
        "fanout1000_ms", "fanout1000_vs_single_path",
    ]  # fmt: skip
    # finish() files them with the other bounds; no durable floor batch measured, no bound
    assert "fanout1000_ms" in report.finish({"fanout": _fanout_result(30.0, 20.0)})["bounds"]
    no_floor = _fanout_result(30.0, 20.0)
    del no_floor["measurements"]["durable_floor_batch"]
    assert report.fanout_bounds(no_floor) == {}


class _CannedWorker:
    """A load process that answers the setup's ops from a script (no server)."""

    def __init__(self, replies: list[dict[str, object]]) -> None:
        self.replies = replies
        self.ops: list[str] = []

    def request(self, cmd: dict[str, object]) -> dict[str, object]:
        self.ops.append(str(cmd["op"]))
        return dict(self.replies[len(self.ops) - 1])


def test_fanout_setup_records_a_failed_begin_and_needs_only_the_last_run_whole() -> None:
    ok = {"ms": 10.0, "calls": 2, "errors": 0, "error_codes": {}, "contexts": ["a", "b"]}
    busy = {"ms": 30.0, "calls": 1, "errors": 1, "error_codes": {"UNAVAILABLE": 1},
            "error_samples": ["UNAVAILABLE: the database failed or timed out"],
            "contexts": ["a"]}  # fmt: skip
    worker = _CannedWorker([{**ok, "ms": 4.0}, busy, ok, {**ok, "ms": 6.0}])
    target = driver.Target("sqlite", {}, os.getpid(), [worker])  # type: ignore[list-item]
    setup = fanout._open_contexts(target, ["c1", "c2"], 4, 2)
    assert worker.ops == ["fanout_batch_begin", "fanout_begin", "fanout_begin",
                          "fanout_batch_begin"]  # fmt: skip
    one = setup["begin_routing"]
    assert (one["errors"], one["error_codes"], one["runs_ms"]) == (1, {"UNAVAILABLE": 1}, [30, 10])
    assert one["ms"] == 20.0 and one["error_samples"][0].startswith("UNAVAILABLE")
    assert setup["batch_begin_routing"]["ms"] == 5.0
    assert setup["batch_begin_routing"]["errors"] == 0
    fanout_result = {"orders": 2, "in_flight": 4, "begin_rounds": 2, "description": "d",
                     "rounds": 1, "measurements": {},
                     "setup": {"sqlite": {"workspaces": 1, "credentials": 2, "threads": 1,
                                          "workspaces_s": 0.1, "credentials_s": 0.1, **setup}}}  # fmt: skip
    rows = "\n".join(report._fanout_rows(fanout_result))
    assert "| 20 (30, 10) |" in rows and "| 1 (one by one UNAVAILABLE 1) |" in rows
    # the run whose contexts the measurements use must open them all
    worker = _CannedWorker([ok, ok, ok, busy])
    target = driver.Target("sqlite", {}, os.getpid(), [worker])  # type: ignore[list-item]
    with pytest.raises(RuntimeError, match="batch_begin_routing failed"):
        fanout._open_contexts(target, ["c1", "c2"], 4, 2)
