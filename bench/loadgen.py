"""A load-generator process: ``python -m bench.loadgen`` (driven by :mod:`bench.driver`).

It reads one JSON line on stdin naming the system to call (kind ``floor``, ``pipvault`` or
``openbao``, with its target and token: secrets never go on the command line), then one JSON
command per line, answering each with one JSON line on stdout:

- ``{"op": "seq", "n": N}``: N sequential calls, answered with each call's latency in µs;
- ``{"op": "tp", "conc": C, "start_at": T, "duration": D}``: C concurrent callers from wall-clock
  time T for D seconds (gRPC: ``grpc.aio`` coroutines on one channel; OpenBao: one thread and
  one HTTP session per caller), answered with the calls completed in the window, errors and
  this process's CPU seconds (so a saturated load generator shows up in the results);
- ``{"op": "bg_start"}`` / ``{"op": "bg_stop"}``: sign sequentially in the background until told
  to stop (the scale runs' "signing continues during a rewrap"), answered with ok/failed counts;
- ``fanout_*``: 1,000 signatures done one given way and timed as a whole (one
  ``BatchSignOrders``, ``SignOrder`` with 64 in flight, OpenBao's transit ``batch_input``, the
  floor): see :mod:`bench.fanout_calls`;
- ``{"op": "quit"}``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import resource
import secrets
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from bench.floor_server import METHOD

# Binance Spot's documented example order (reference broker-signing.md §1.3), as the floor and
# OpenBao sign it: the same bytes pipvault builds for this order.
PAYLOAD = (
    b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    b"&recvWindow=5000&timestamp=1499827319559"
)
CALL_TIMEOUT_S = 10.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Caller:
    """One system's call, in a blocking and (for gRPC) an asyncio flavour."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.kind: str = spec["kind"]
        self._ids = itertools.count()
        self._turn = itertools.count(secrets.randbelow(64))
        self._prefix = f"b{secrets.token_hex(4)}"
        if self.kind == "openbao":
            self._b64 = base64.b64encode(PAYLOAD).decode()
        else:
            self.channel = grpc.insecure_channel(spec["target"])
            self.call = self._grpc_call(self.channel)

    # -- request building ------------------------------------------------------------------
    def _sign_request(self) -> Any:
        from pipsync.vault.v1 import signing_service_pb2, trading_pb2

        order = trading_pb2.Order(
            operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="LTCBTC",
            side=trading_pb2.ORDER_SIDE_BUY, type=trading_pb2.ORDER_TYPE_LIMIT,
            time_in_force=trading_pb2.TIME_IN_FORCE_GTC, quantity="1", price="0.1",
            client_order_id=f"{self._prefix}-{next(self._ids)}",
        )  # fmt: skip
        # A fleet run names several routing contexts (one per workspace): each call takes the
        # next, so one caller's calls alternate over the workspaces.
        contexts = self.spec.get("routing_contexts")
        rc = (
            contexts[next(self._turn) % len(contexts)] if contexts else self.spec["routing_context"]
        )
        return signing_service_pb2.SignOrderRequest(routing_context=rc, order=order, reason="bench")

    def _grpc_call(self, channel: Any) -> Callable[[], Any]:
        if self.kind == "floor":
            method = channel.unary_unary(METHOD)
            return lambda: method(PAYLOAD, timeout=CALL_TIMEOUT_S)
        from pipsync.vault.v1 import signing_service_pb2_grpc

        stub = signing_service_pb2_grpc.SigningServiceStub(channel)
        md = (("authorization", f"Bearer {self.spec['token']}"),)
        return lambda: stub.SignOrder(self._sign_request(), metadata=md, timeout=CALL_TIMEOUT_S)

    def openbao_call(self) -> Callable[[], Any]:
        import hvac

        client = hvac.Client(url=self.spec["address"], token=self.spec["token"], timeout=10)
        key, b64 = self.spec["key"], self._b64

        def call() -> Any:
            return client.secrets.transit.generate_hmac(
                name=key, hash_input=b64, algorithm="sha2-256", mount_point="transit"
            )

        return call

    def blocking(self) -> Callable[[], Any]:
        if self.kind == "openbao":
            if not hasattr(self, "_blocking"):
                self._blocking = self.openbao_call()
            return self._blocking
        return self.call

    # -- measurements -----------------------------------------------------------------------
    def seq(self, n: int) -> dict[str, Any]:
        call = self.blocking()
        out: list[float] = []
        errors = 0
        for _ in range(n):
            start = time.perf_counter()
            try:
                call()
            except Exception:
                errors += 1
                continue
            out.append(round((time.perf_counter() - start) * 1e6, 1))
        return {"lat_us": out, "errors": errors}

    def tp(self, conc: int, start_at: float, duration: float) -> dict[str, Any]:
        if self.kind == "openbao":
            return self._tp_threads(conc, start_at, duration)
        return asyncio.run(self._tp_aio(conc, start_at, duration))

    async def _tp_aio(self, conc: int, start_at: float, duration: float) -> dict[str, Any]:
        async with grpc.aio.insecure_channel(self.spec["target"]) as channel:
            call: Callable[[], Awaitable[Any]] = self._grpc_call(channel)
            for _ in range(3):  # connect and warm up before the window opens
                await call()
            await asyncio.sleep(max(0.0, start_at - time.time()))
            end = time.time() + duration
            counts = {"calls": 0, "errors": 0}
            cpu0 = _cpu_s()

            async def caller() -> None:
                while time.time() < end:
                    try:
                        await call()
                    except grpc.aio.AioRpcError:
                        counts["errors"] += 1
                        continue
                    if time.time() <= end:
                        counts["calls"] += 1

            await asyncio.gather(*(caller() for _ in range(conc)))
            return {**counts, "cpu_s": round(_cpu_s() - cpu0, 3)}

    def _tp_threads(self, conc: int, start_at: float, duration: float) -> dict[str, Any]:
        calls = [self.openbao_call() for _ in range(conc)]
        for call in calls:
            call()
        counts = {"calls": 0, "errors": 0}
        lock = threading.Lock()
        end = start_at + duration

        def caller(call: Callable[[], Any]) -> None:
            time.sleep(max(0.0, start_at - time.time()))
            ok = bad = 0
            while time.time() < end:
                try:
                    call()
                except Exception:
                    bad += 1
                    continue
                if time.time() <= end:
                    ok += 1
            with lock:
                counts["calls"] += ok
                counts["errors"] += bad

        threads = [threading.Thread(target=caller, args=(c,)) for c in calls]
        time.sleep(max(0.0, start_at - time.time()))
        cpu0 = _cpu_s()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {**counts, "cpu_s": round(_cpu_s() - cpu0, 3)}


class Background:
    """Sequential calls on a thread until stopped (signing while a rewrap runs)."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call = call
        self._stop = threading.Event()
        self.ok = 0
        self.failed: dict[str, int] = {}
        self.lat_us: list[float] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                self._call()
                self.ok += 1
                self.lat_us.append((time.perf_counter() - start) * 1e6)
            except Exception as err:
                code_fn = getattr(err, "code", None)
                code = code_fn().name if callable(code_fn) else type(err).__name__
                self.failed[code] = self.failed.get(code, 0) + 1

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(CALL_TIMEOUT_S + 5)
        lat = sorted(self.lat_us)
        return {
            "ok": self.ok,
            "failed": sum(self.failed.values()),
            "failed_by_code": self.failed,
            "p50_us": round(lat[len(lat) // 2], 1) if lat else None,
            "max_us": round(lat[-1], 1) if lat else None,
        }


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    caller = Caller(spec)
    background: Background | None = None
    fan_out: Any = None
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "seq":
            reply = caller.seq(int(cmd["n"]))
        elif op == "tp":
            reply = caller.tp(int(cmd["conc"]), float(cmd["start_at"]), float(cmd["duration"]))
        elif op == "bg_start":
            background = Background(caller.blocking())
            reply = {"started": True}
        elif op == "bg_stop":
            reply = background.stop() if background else {"ok": 0, "failed": 0}
            background = None
        elif op.startswith("fanout_"):
            if fan_out is None:
                from bench.fanout_calls import FanOutCaller

                fan_out = FanOutCaller(spec)
            reply = fan_out.handle(cmd)
        elif op == "quit":
            break
        else:
            reply = {"error": f"unknown op {op}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
