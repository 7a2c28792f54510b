"""The fleet case (issue 19 §2): two ``pipvault serve`` replicas on one PostgreSQL database,
signing for the same workspaces at once, against one replica on the same workload.

Setup: a fresh PostgreSQL database, four workspaces with one Binance Spot HMAC credential and
one routing context each, replica ``b`` sharing ``a``'s database and key material (as the prod
overlay's replicas do). Workload: ``callers`` concurrent callers, every call the next workspace
in turn (so batches on the two replicas hold the same workspaces in every order - the case that
deadlocked before the global lock order). ``one``: all callers on replica ``a``; ``fleet``: half
on each replica, both windows opened at the same instant. Interleaved rounds; the figure is the
ratio fleet / one (target >= 0.7) and the errors of each (target: none).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from bench import driver, systems

WORKSPACES = ("fleet-a", "fleet-b", "fleet-c", "fleet-d")
SHARED_FILES = ("policy.yaml", "server.key", "keyring.json", "audit-checkpoint.key")


def _replica_of(first: systems.Pipvault, name: str, workdir: Path) -> systems.Pipvault:
    """A second server on the first one's database, keys and policy (its own socket, port)."""
    home = workdir / name
    home.mkdir(parents=True, mode=0o700)
    for f in SHARED_FILES:
        shutil.copy2(first.home / f, home / f)
    config = yaml.safe_load(first.config.read_text())
    port = systems.free_port()
    config["home"] = str(home)
    config["policy_file"] = str(home / "policy.yaml")
    config["server_key_file"] = str(home / "server.key")
    config["keys"]["providers"]["local"] = f"local://{home / 'keyring.json'}"
    config["listen"].update(data_socket=str(home / "data.sock"), admin_address=f"127.0.0.1:{port}")
    config["audit"].update(
        checkpoint_key_file=str(home / "audit-checkpoint.key"),
        checkpoint_file=str(home / "audit-checkpoints.jsonl"),
    )
    (home / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return systems.Pipvault(
        name, home, home / "config.yaml", first.database_url, first.tokens, port
    )


def _router_everywhere(pv: systems.Pipvault) -> None:
    """The bench router may route in every workspace of the fleet run."""
    policy = yaml.safe_load((pv.home / "policy.yaml").read_text())
    for principal in policy["principals"]:
        if principal["id"] == "bench-router":
            principal["workspaces"] = ["*"]
        principal["token_sha256"] = hashlib.sha256(pv.tokens[principal["id"]].encode()).hexdigest()
    (pv.home / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


def _target(pv: systems.Pipvault, contexts: list[str], procs: int) -> driver.Target:
    assert pv.proc is not None
    spec = {
        "kind": "pipvault",
        "target": f"unix:{pv.socket}",
        "token": pv.tokens["bench-router"],
        "routing_contexts": contexts,
    }
    target = driver.Target(pv.name, spec, pv.proc.pid)
    target.start_workers(procs)
    return target


def _window(parts: list[tuple[driver.Target, int]], duration: float) -> dict[str, Any]:
    """One measurement window over several targets at once: (target, callers) each, the
    callers of a target split over its load processes; all open at the same instant."""
    start_at = time.time() + 0.5
    used: list[driver.Worker] = []
    for target, callers in parts:
        workers = target.workers[: max(1, min(len(target.workers), callers))]
        split = [
            callers // len(workers) + (1 if i < callers % len(workers) else 0)
            for i in range(len(workers))
        ]
        for w, c in zip(workers, split, strict=True):
            w.send({"op": "tp", "conc": c, "start_at": start_at, "duration": duration})
        used.extend(workers)
    replies = [w.receive() for w in used]
    calls = sum(r["calls"] for r in replies)
    return {
        "calls": calls,
        "errors": sum(r["errors"] for r in replies),
        "calls_per_s": round(calls / duration, 1),
    }


def run_fleet(
    workdir: Path, *, rounds: int = 3, duration: float = 3.0, callers: int = 8, procs: int = 2
) -> dict[str, Any]:
    a = systems.prepare_pipvault("fleet-a", workdir, "postgres")
    _router_everywhere(a)
    b = _replica_of(a, "fleet-b", workdir)
    with contextlib.ExitStack() as stack:
        stack.callback(a.drop)  # drops the database after both stopped
        stack.callback(b.stop)
        a.start()
        b.start()
        contexts: dict[str, list[str]] = {"fleet-a": [], "fleet-b": []}
        with a.admin_channel() as admin:
            for ws in WORKSPACES:
                systems.create_workspace(a, admin, ws)
                credential = systems.create_credential(a, admin, ws, "binance-1")
                contexts["fleet-a"].append(systems.begin_routing(a, credential))
                contexts["fleet-b"].append(systems.begin_routing(b, credential))
        ta = _target(a, contexts["fleet-a"], procs)
        tb = _target(b, contexts["fleet-b"], procs)
        stack.callback(ta.close)
        stack.callback(tb.close)
        windows: dict[str, list[dict[str, Any]]] = {"one": [], "fleet": []}
        _window([(ta, callers)], 1.0)  # warm both replicas' caches
        _window([(tb, callers)], 1.0)
        for _ in range(rounds):
            windows["one"].append(_window([(ta, callers)], duration))
            windows["fleet"].append(_window([(ta, callers // 2), (tb, callers - callers // 2)],
                                            duration))  # fmt: skip
    one = statistics.median(w["calls_per_s"] for w in windows["one"])
    fleet = statistics.median(w["calls_per_s"] for w in windows["fleet"])
    return {
        "description": (
            f"SignOrder on PostgreSQL, {len(WORKSPACES)} workspaces, {callers} callers each "
            "alternating over them: one replica vs two replicas on one database"
        ),
        "workspaces": len(WORKSPACES),
        "callers": callers,
        "rounds": rounds,
        "window_s": duration,
        "windows": windows,
        "one_replica_calls_per_s": one,
        "two_replicas_calls_per_s": fleet,
        "ratio": round(fleet / one, 3) if one else None,
        "target_ratio": 0.7,
        "errors": {k: sum(w["errors"] for w in v) for k, v in windows.items()},
    }
