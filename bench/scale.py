"""Scale runs: signing p50 at 10 vs 100,000 credentials, rewrap under signing, RSS.

On SQLite with a ``local`` keyring: p50 with 10 credentials (created through the API), then the
server is stopped, the database grown to N credentials across W workspaces (:mod:`bench.seed`),
the server restarted and p50 measured again; its RSS is read from ``/proc``. Then
``KeyService.RotateKeyEncryptionKey`` rotates the KEK and rewraps every data key while a load
process keeps signing; the rewrap's duration and the signatures that failed meanwhile are
reported. The same on a ``vault-transit`` provider (OpenBao) with a smaller count.
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from bench import driver, seed, systems
from bench.driver import proc_rss_mb


def _census(pv: systems.Pipvault, provider_id: str) -> dict[int, int]:
    """Data keys per KEK version of a provider, from ``KeyService.GetKeyStatus``."""
    from pipsync.vault.v1 import key_service_pb2, key_service_pb2_grpc

    with pv.admin_channel() as admin:
        status = key_service_pb2_grpc.KeyServiceStub(admin).GetKeyStatus(
            key_service_pb2.GetKeyStatusRequest(), metadata=pv.md("bench-security"), timeout=120
        )
    for provider in status.providers:
        if provider.provider_id == provider_id:
            return {int(v.version): int(v.ciphertext_count) for v in provider.versions}
    raise RuntimeError(f"provider {provider_id} not in GetKeyStatus")


def _rewrap(pv: systems.Pipvault, provider_id: str, budget_s: float) -> dict[str, Any]:
    """Rotate the KEK (which rewraps every data key) while a load process keeps signing.

    The RPC's deadline is the budget; a rewrap that outlasts it is reported with the count done
    by then (from the key census) and the duration projected at that rate."""
    from pipsync.vault.v1 import key_service_pb2, key_service_pb2_grpc

    assert pv.target is not None
    assert pv.proc is not None
    total = sum(_census(pv, provider_id).values())
    worker = pv.target.workers[0]
    worker.request({"op": "bg_start"})
    time.sleep(0.5)
    started = time.perf_counter()
    finished, new_version = True, 0
    try:
        with pv.admin_channel() as admin:
            reply = key_service_pb2_grpc.KeyServiceStub(admin).RotateKeyEncryptionKey(
                key_service_pb2.RotateKeyEncryptionKeyRequest(
                    provider_id=provider_id, reason="bench: rewrap under load"
                ),
                metadata=pv.md("bench-security"), timeout=budget_s,
            )  # fmt: skip
            new_version = int(reply.new_version)
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        finished = False
    duration = time.perf_counter() - started
    census = _census(pv, provider_id)
    new_version = new_version or max(census)
    done = census.get(new_version, 0)
    time.sleep(0.5)
    signing = worker.request({"op": "bg_stop"})
    rate = done / duration if duration else 0.0
    return {
        "provider": provider_id,
        "data_keys": total,
        "finished": finished,
        "budget_s": budget_s,
        "duration_s": round(duration, 1),
        "rewrapped": done,
        "rewrapped_per_s": round(rate, 1),
        "projected_duration_s": round(total / rate, 1) if rate else None,
        "signatures_ok": signing["ok"],
        "signatures_failed": signing["failed"],
        "failed_by_code": signing.get("failed_by_code", {}),
        "signing_p50_us_during": signing.get("p50_us"),
        "signing_max_us_during": signing.get("max_us"),
        "server_rss_peak_mb": proc_rss_mb(pv.proc.pid, "VmHWM"),
    }


def _grow(pv: systems.Pipvault, workspaces: int, credentials: int) -> dict[str, Any]:
    pv.stop()
    started = time.perf_counter()
    grown = seed.seed(
        pv.config,
        template_workspace="bench",
        template_credential="binance-1",
        workspaces=workspaces,
        credentials=credentials,
    )
    grown["seed_s"] = round(time.perf_counter() - started, 1)
    pv.start()
    return grown


def run_local(
    workdir: Path, *, credentials: int, workspaces: int, rounds: int, per_round: int,
    budget_s: float, small_credentials: int = 10,
) -> dict[str, Any]:  # fmt: skip
    """Two servers side by side (10 credentials, N credentials), interleaved rounds."""
    with ThreadPoolExecutor(2) as pool:  # both set up at once: start-up is mostly imports
        futures = [
            pool.submit(systems.start_pipvault, name, workdir, "sqlite")
            for name in ("scale-small", "scale-large")
        ]
    servers = [f.result() for f in futures if f.exception() is None]
    if len(servers) < 2:
        for pv in servers:
            pv.drop()
        for f in futures:
            f.result()
    small, large = servers
    try:
        with small.admin_channel() as admin:
            for i in range(2, small_credentials + 1):
                systems.create_credential(small, admin, "bench", f"binance-{i}")
        grown = _grow(large, workspaces, credentials)
        targets = [small.make_target(), large.make_target()]
        targets[0].name, targets[1].name = "small", "large"
        for t in targets:
            t.start_workers(1)
        seq = driver.sequential(targets, rounds, per_round, warmup=50)
        p50 = {name: round(statistics.median(v), 1) for name, v in seq["samples"].items()}
        assert small.proc is not None
        assert large.proc is not None
        rss = {"small": proc_rss_mb(small.proc.pid), "large": proc_rss_mb(large.proc.pid)}
        small.stop()
        rewrap = _rewrap(large, "local", budget_s)
    finally:
        small.drop()
        large.drop()
    return {
        "storage": "sqlite",
        "credentials": credentials,
        "credentials_small": small_credentials,
        "workspaces": grown["workspaces"],
        "seeded": grown,
        "p50_us": p50,
        "samples": {name: len(v) for name, v in seq["samples"].items()},
        "errors": seq["errors"],
        "p50_large_vs_small": round(p50["large"] / p50["small"], 3),
        "server_rss_mb": rss,
        "rewrap": rewrap,
    }


def run_transit(
    workdir: Path, bao: systems.OpenBaoServer, *, credentials: int, workspaces: int,
    budget_s: float,
) -> dict[str, Any]:  # fmt: skip
    root = bao.client()
    root.sys.enable_secrets_engine("transit", path="kek")
    root.secrets.transit.create_key(
        "bench-kek", key_type="aes256-gcm96", derived=True, mount_point="kek"
    )
    policy = "\n".join(
        f'path "kek/{p}" {{ capabilities = ["{c}"] }}'
        for p, c in [
            ("encrypt/bench-kek", "update"), ("decrypt/bench-kek", "update"),
            ("rewrap/bench-kek", "update"), ("keys/bench-kek", "read"),
            ("keys/bench-kek/rotate", "update"), ("keys/bench-kek/config", "update"),
        ]
    )  # fmt: skip
    root.sys.create_or_update_policy(name="bench-kek", policy=policy)
    token = root.auth.token.create(policies=["bench-kek"], ttl="2h")["auth"]["client_token"]
    extra = {
        "keys": {
            "providers": {"transit": "vault-transit://kek/keys/bench-kek"},
            "primary": "transit",
            "transit_address": bao.address,
            "transit_token_env": "PIPVAULT_BENCH_TRANSIT_TOKEN",
        }
    }
    os.environ["PIPVAULT_BENCH_TRANSIT_TOKEN"] = token  # inherited by server and seeder
    pv = systems.start_pipvault("scale-transit", workdir, "sqlite", extra)
    try:
        grown = _grow(pv, workspaces, credentials)
        pv.make_target().start_workers(1)
        rewrap = _rewrap(pv, "transit", budget_s)
    finally:
        pv.drop()
        os.environ.pop("PIPVAULT_BENCH_TRANSIT_TOKEN", None)
    return {"storage": "sqlite", "seeded": grown, "rewrap": rewrap}
