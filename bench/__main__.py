"""Signing latency against its floor, measured in one run.

Three numbers, same machine, same moment:
- floor: a ``grpc.health.v1`` Check round trip on the vault's own data-plane Unix socket (the
  cheapest possible local gRPC call: DESIGN.md promise 7 says a signature costs about this);
- peer: signing the same Binance order in-process with the key in hand (what a router holding
  the secret itself would pay; no network, no audit);
- pipvault: ``SignOrder`` over the Unix socket: routing-context check, policy, replay claim,
  decrypt, sign and a committed, hash-chained audit event.

Reported as p50/p99 and ratios to the floor; figures go to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import hmac
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pipsync.vault.v1 import signing_service_pb2, signing_service_pb2_grpc, trading_pb2

RESULTS = Path(__file__).parent / "results"


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
        "mean_us": round(statistics.fmean(ordered) * 1e6, 1),
        "n": len(ordered),
    }


def _time(fn: Any, n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def run(n: int) -> dict[str, Any]:
    from vault_server.app import VaultApp
    from vault_server.cli.demo import DOC_API_KEY, DOC_SECRET, run_flow
    from vault_server.cli.dev import ensure_dev_policy
    from vault_server.config import load_settings
    from vault_server.observability.logging import configure_logging

    configure_logging("ERROR", "json")
    with tempfile.TemporaryDirectory(prefix="pipvault-bench-") as tmp:
        home = Path(tmp)
        policy, tokens = ensure_dev_policy(home)
        listen = {
            "data_socket": str(home / "bench.sock"),
            "data_address": None,
            "admin_address": "127.0.0.1:0",
            "health_address": None,
            "metrics_address": None,
        }
        settings = load_settings(
            None,
            mode="dev",
            home=str(home),
            policy_file=str(policy),
            log_level="ERROR",
            listen=listen,
            signing={"routing_ttl_default_s": 3600.0},
        )
        app = VaultApp(settings)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            bound = asyncio.run_coroutine_threadsafe(app.start(), loop).result(60)
            with (
                grpc.insecure_channel(f"127.0.0.1:{bound.admin_port}") as admin,
                grpc.insecure_channel(f"unix:{bound.data_socket}") as data,
            ):
                flow = run_flow(admin, data, tokens, lambda _line: None)
                health = health_pb2_grpc.HealthStub(data)
                signing = signing_service_pb2_grpc.SigningServiceStub(data)
                md = (("authorization", f"Bearer {tokens['dev-router']}"),)
                counter = iter(range(10**9))

                def floor() -> None:
                    health.Check(health_pb2.HealthCheckRequest(), timeout=5)

                def sign() -> None:
                    order = trading_pb2.Order(
                        operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="LTCBTC",
                        side=trading_pb2.ORDER_SIDE_BUY, type=trading_pb2.ORDER_TYPE_LIMIT,
                        time_in_force=trading_pb2.TIME_IN_FORCE_GTC, quantity="1", price="0.1",
                        client_order_id=f"bench-{next(counter)}",
                    )  # fmt: skip
                    signing.SignOrder(
                        signing_service_pb2.SignOrderRequest(
                            routing_context=flow["routing_context"], order=order, reason="bench"
                        ),
                        metadata=md, timeout=5,
                    )  # fmt: skip

                secret = DOC_SECRET.encode()
                payload = (
                    b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
                    b"&recvWindow=5000&timestamp=1499827319559"
                )

                def peer() -> None:
                    hmac.new(secret, payload, hashlib.sha256).hexdigest()

                results = {
                    "floor_health_check": _percentiles(_time(floor, n)),
                    "peer_inprocess_hmac": _percentiles(_time(peer, n)),
                    "pipvault_sign_order": _percentiles(_time(sign, n)),
                }
                del DOC_API_KEY
        finally:
            asyncio.run_coroutine_threadsafe(app.stop(), loop).result(60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
    floor_p50 = results["floor_health_check"]["p50_us"]
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "storage": "sqlite (WAL, synchronous=FULL)",
        "results": results,
        "ratios_to_floor_p50": {
            name: round(r["p50_us"] / floor_p50, 2) for name, r in results.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="samples per measurement")
    args = parser.parse_args()
    report = run(args.n)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'measurement':<24}{'p50 us':>10}{'p99 us':>10}{'x floor':>10}")
    for name, r in report["results"].items():
        print(
            f"{name:<24}{r['p50_us']:>10}{r['p99_us']:>10}{report['ratios_to_floor_p50'][name]:>10}"
        )
    print(f"written to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
