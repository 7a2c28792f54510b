"""The load-generator side of the fan-out runs (``fanout_*`` ops of ``python -m bench.loadgen``).

Kept apart from :mod:`bench.loadgen` because these are not "one call, again and again" but one
*piece of work* - 1,000 signatures - done a given way and timed as a whole, wall clock, in this
process (never in the server's):

- ``fanout_begin``: open one routing context per credential, ``conc`` ``BeginRouting`` calls in
  flight; the names (also answered) stay in this process for the two ops below;
- ``fanout_batch_begin``: the same with one ``BatchBeginRouting`` call of every credential (the
  request built and the channel connected before the clock starts); every result must be an
  opened routing context; the names replace the previous ones;
- ``fanout_batch``: one ``BatchSignOrders`` call, one item per routing context, each with a new
  client order id; the request is built before the clock starts; every result must be a signed
  response (anything else is counted as an error, by code);
- ``fanout_burst``: the same orders one by one, ``SignOrder`` with ``conc`` in flight (pipvault),
  or ``n`` bare HMAC calls with ``conc`` in flight (the floor);
- ``fanout_floor_batch``: ``n`` orders' bytes in one ``HmacBatch`` call to a floor server (the
  durable floor: one HMAC each, all ``n`` rows committed in one transaction before it answers);
  every item must come back with a digest;
- ``fanout_bao_largest``: the largest transit ``batch_input`` OpenBao's default request limits
  accept (its JSON parser counts strings: each input is two);
- ``fanout_bao_batch``: ``n`` HMAC inputs through transit ``batch_input`` in chunks of at most
  ``chunk``, ``in_flight`` requests at a time (one thread and one HTTP session each).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import resource
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from bench.floor_server import BATCH_METHOD, METHOD, SEPARATOR

CALL_TIMEOUT_S = 120.0
REASON = "bench fan-out"
_CODE_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _code(err: BaseException) -> str:
    code_fn = getattr(err, "code", None)
    code = code_fn() if callable(code_fn) else None
    return code.name if isinstance(code, grpc.StatusCode) else type(err).__name__


def _detail(err: BaseException) -> str:
    """``CODE: message`` of a failed call (the first few are kept for the record)."""
    details_fn = getattr(err, "details", None)
    details = details_fn() if callable(details_fn) else str(err)
    return f"{_code(err)}: {details}"[:300]


class FanOutCaller:
    """One system's fan-out work, for one load-generator process."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.contexts: list[str] = []
        self._ids = itertools.count()
        self._prefix = f"f{secrets.token_hex(4)}"

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "fanout_begin":
            return asyncio.run(
                self._begin(list(cmd["credentials"]), int(cmd["conc"]), float(cmd["ttl_s"]))
            )
        if op == "fanout_batch_begin":
            return self._batch_begin(list(cmd["credentials"]), float(cmd["ttl_s"]))
        if op == "fanout_batch":
            return self._batch()
        if op == "fanout_floor_batch":
            return self._floor_batch(int(cmd["n"]))
        if op == "fanout_burst":
            return asyncio.run(self._burst(int(cmd.get("n", 0)), int(cmd["conc"])))
        if op == "fanout_bao_largest":
            return {"largest": self._bao_largest(int(cmd["max"]))}
        if op == "fanout_bao_batch":
            return self._bao_batch(int(cmd["n"]), int(cmd["chunk"]), int(cmd["in_flight"]))
        return {"error": f"unknown op {op}"}

    # -- pipvault -----------------------------------------------------------------------------
    def _md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.spec['token']}"),)

    def _order_request(self, routing_context: str) -> Any:
        from pipsync.vault.v1 import signing_service_pb2, trading_pb2

        order = trading_pb2.Order(
            operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="LTCBTC",
            side=trading_pb2.ORDER_SIDE_BUY, type=trading_pb2.ORDER_TYPE_LIMIT,
            time_in_force=trading_pb2.TIME_IN_FORCE_GTC, quantity="1", price="0.1",
            client_order_id=f"{self._prefix}-{next(self._ids)}",
        )  # fmt: skip
        return signing_service_pb2.SignOrderRequest(
            routing_context=routing_context, order=order, reason=REASON
        )

    @staticmethod
    def _begin_requests(credentials: list[str], ttl_s: float) -> list[Any]:
        from google.protobuf import duration_pb2
        from pipsync.vault.v1 import signing_service_pb2

        return [
            signing_service_pb2.BeginRoutingRequest(
                credential=c,
                strategy_id="bench-fanout",
                reason="bench fan-out routing",
                ttl=duration_pb2.Duration(seconds=int(ttl_s)),
            )
            for c in credentials
        ]

    async def _begin(self, credentials: list[str], conc: int, ttl_s: float) -> dict[str, Any]:
        from pipsync.vault.v1 import signing_service_pb2_grpc

        requests = self._begin_requests(credentials, ttl_s)
        names: list[str] = [""] * len(requests)
        async with grpc.aio.insecure_channel(self.spec["target"]) as channel:
            stub = signing_service_pb2_grpc.SigningServiceStub(channel)
            md = self._md()

            async def one(i: int) -> None:
                reply = await stub.BeginRouting(requests[i], metadata=md, timeout=CALL_TIMEOUT_S)
                names[i] = reply.routing_context.name

            await channel.channel_ready()
            out = await _in_flight(len(requests), conc, one)
        self.contexts = [n for n in names if n]
        return {**out, "contexts": self.contexts}

    def _batch_begin(self, credentials: list[str], ttl_s: float) -> dict[str, Any]:
        from pipsync.vault.v1 import signing_service_pb2, signing_service_pb2_grpc

        request = signing_service_pb2.BatchBeginRoutingRequest(
            requests=self._begin_requests(credentials, ttl_s)
        )
        with grpc.insecure_channel(self.spec["target"]) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = signing_service_pb2_grpc.SigningServiceStub(channel)
            cpu0 = _cpu_s()
            started = time.perf_counter()
            try:
                reply = stub.BatchBeginRouting(request, metadata=self._md(), timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as err:
                ms = (time.perf_counter() - started) * 1e3
                return {"ms": round(ms, 2), "calls": 0, "errors": len(credentials),
                        "error_codes": {f"call:{_code(err)}": 1},
                        "error_samples": [_detail(err)], "contexts": []}  # fmt: skip
            ms = (time.perf_counter() - started) * 1e3
            cpu = _cpu_s() - cpu0
        codes: Counter[str] = Counter()
        samples: list[str] = []
        names: list[str] = []
        for result in reply.results:
            kind = result.WhichOneof("result")
            if kind == "routing_context" and result.routing_context.name:
                names.append(result.routing_context.name)
            elif kind == "error":
                code = _CODE_NAMES.get(result.error.code, str(result.error.code))
                codes[code] += 1
                if len(samples) < 3:
                    samples.append(f"{code}: {result.error.message}"[:300])
            else:
                codes["EMPTY"] += 1
        if len(credentials) > len(reply.results):
            codes["MISSING"] += len(credentials) - len(reply.results)
        self.contexts = names
        return {
            "ms": round(ms, 2),
            "calls": len(names),
            "errors": sum(codes.values()),
            "error_codes": dict(codes),
            **({"error_samples": samples} if samples else {}),
            "request_bytes": request.ByteSize(),
            "response_bytes": reply.ByteSize(),
            "client_cpu_s": round(cpu, 4),
            "contexts": names,
        }

    def _batch(self) -> dict[str, Any]:
        from pipsync.vault.v1 import signing_service_pb2, signing_service_pb2_grpc

        request = signing_service_pb2.BatchSignOrdersRequest(
            requests=[self._order_request(rc) for rc in self.contexts]
        )
        with grpc.insecure_channel(self.spec["target"]) as channel:  # default 4 MiB answers
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = signing_service_pb2_grpc.SigningServiceStub(channel)
            cpu0 = _cpu_s()
            started = time.perf_counter()
            try:
                reply = stub.BatchSignOrders(request, metadata=self._md(), timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as err:
                ms = (time.perf_counter() - started) * 1e3
                return {"ms": round(ms, 2), "signed": 0, "errors": len(self.contexts),
                        "error_codes": {f"call:{_code(err)}": 1},
                        "error_samples": [_detail(err)]}  # fmt: skip
            ms = (time.perf_counter() - started) * 1e3
            cpu = _cpu_s() - cpu0
        codes: Counter[str] = Counter()
        samples: list[str] = []
        signed = 0
        for result in reply.results:
            if result.WhichOneof("result") == "response" and _is_signed(result.response):
                signed += 1
            elif result.WhichOneof("result") == "error":
                code = _CODE_NAMES.get(result.error.code, str(result.error.code))
                codes[code] += 1
                if len(samples) < 3:
                    samples.append(f"{code}: {result.error.message}"[:300])
            else:
                codes["EMPTY"] += 1
        missing = len(self.contexts) - len(reply.results)
        if missing:
            codes["MISSING"] += missing
        return {
            "ms": round(ms, 2),
            "signed": signed,
            "errors": sum(codes.values()),
            "error_codes": dict(codes),
            **({"error_samples": samples} if samples else {}),
            "request_bytes": request.ByteSize(),
            "response_bytes": reply.ByteSize(),
            "client_cpu_s": round(cpu, 4),
        }

    def _floor_batch(self, n: int) -> dict[str, Any]:
        request = SEPARATOR.join(_payload(f"{self._prefix}-{next(self._ids)}") for _ in range(n))
        with grpc.insecure_channel(self.spec["target"]) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            method = channel.unary_unary(BATCH_METHOD)
            cpu0 = _cpu_s()
            started = time.perf_counter()
            try:
                reply: bytes = method(request, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as err:
                ms = (time.perf_counter() - started) * 1e3
                return {"ms": round(ms, 2), "signed": 0, "errors": n,
                        "error_codes": {f"call:{_code(err)}": 1},
                        "error_samples": [_detail(err)]}  # fmt: skip
            ms = (time.perf_counter() - started) * 1e3
            cpu = _cpu_s() - cpu0
        digests = reply.split(SEPARATOR) if reply else []
        signed = sum(1 for d in digests if len(d) == 64)
        codes = Counter({"bad_digest": len(digests) - signed, "MISSING": max(0, n - len(digests))})
        return {
            "ms": round(ms, 2),
            "signed": signed,
            "errors": sum(codes.values()),
            "error_codes": {k: v for k, v in codes.items() if v},
            "request_bytes": len(request),
            "response_bytes": len(reply),
            "client_cpu_s": round(cpu, 4),
        }

    async def _burst(self, n: int, conc: int) -> dict[str, Any]:
        async with grpc.aio.insecure_channel(self.spec["target"]) as channel:
            await channel.channel_ready()
            if self.spec["kind"] == "floor":
                method = channel.unary_unary(METHOD)
                payloads = [_payload(f"{self._prefix}-{next(self._ids)}") for _ in range(n)]

                async def one(i: int) -> None:
                    await method(payloads[i], timeout=CALL_TIMEOUT_S)

                return await _in_flight(n, conc, one)
            from pipsync.vault.v1 import signing_service_pb2_grpc

            stub = signing_service_pb2_grpc.SigningServiceStub(channel)
            requests = [self._order_request(rc) for rc in self.contexts]
            md = self._md()

            async def sign(i: int) -> None:
                reply = await stub.SignOrder(requests[i], metadata=md, timeout=CALL_TIMEOUT_S)
                if not _is_signed(reply):
                    raise ValueError("no signed request in the response")

            return await _in_flight(len(requests), conc, sign)

    # -- OpenBao ------------------------------------------------------------------------------
    def _bao(self) -> Any:
        import hvac

        return hvac.Client(url=self.spec["address"], token=self.spec["token"], timeout=60)

    def _bao_post(self, client: Any, inputs: list[dict[str, str]]) -> list[dict[str, Any]]:
        reply = client.adapter.post(
            f"/v1/transit/hmac/{self.spec['key']}", json={"batch_input": inputs}
        )
        return list(reply["data"]["batch_results"])

    def _bao_inputs(self, n: int) -> list[dict[str, str]]:
        return [
            {"input": base64.b64encode(_payload(f"{self._prefix}-{next(self._ids)}")).decode()}
            for _ in range(n)
        ]

    def _bao_largest(self, most: int) -> int:
        """Binary search for the largest ``batch_input`` accepted (0: not even one)."""
        client = self._bao()
        lo, hi = 0, most + 1  # lo accepted (or 0), hi refused (or beyond what we need)
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            try:
                ok = len(self._bao_post(client, self._bao_inputs(mid))) == mid
            except Exception:
                ok = False
            lo, hi = (mid, hi) if ok else (lo, mid)
        return lo

    def _bao_batch(self, n: int, chunk: int, in_flight: int) -> dict[str, Any]:
        count = -(-n // chunk)
        sizes = [n // count + (1 if i < n % count else 0) for i in range(count)]  # even chunks
        bodies = [self._bao_inputs(size) for size in sizes]
        clients = [self._bao() for _ in range(min(in_flight, count))]
        for client in clients:  # connect (and warm the session) before the clock starts
            client.sys.read_health_status(method="GET")
        results: list[list[dict[str, Any]] | BaseException] = [[] for _ in bodies]
        turn = itertools.count()
        lock = threading.Lock()

        def worker(client: Any) -> None:
            while True:
                with lock:
                    i = next(turn)
                if i >= len(bodies):
                    return
                try:
                    results[i] = self._bao_post(client, bodies[i])
                except Exception as err:
                    results[i] = err

        threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
        cpu0 = _cpu_s()
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ms = (time.perf_counter() - started) * 1e3
        cpu = _cpu_s() - cpu0
        codes: Counter[str] = Counter()
        signed = 0
        for size, got in zip(sizes, results, strict=True):
            if isinstance(got, BaseException):
                codes[type(got).__name__] += size
                continue
            ok = sum(1 for r in got if str(r.get("hmac", "")).startswith("vault:"))
            signed += ok
            if size - ok:
                codes["item_error"] += size - ok
        return {
            "ms": round(ms, 2),
            "signed": signed,
            "errors": sum(codes.values()),
            "error_codes": dict(codes),
            "requests": count,
            "chunk": max(sizes),
            "in_flight": len(clients),
            "client_cpu_s": round(cpu, 4),
        }


def _payload(client_order_id: str) -> bytes:
    """Binance Spot's documented example order with its own client order id and timestamp."""
    return (
        f"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        f"&newClientOrderId={client_order_id}&recvWindow=5000&timestamp={int(time.time() * 1000)}"
    ).encode()


def _is_signed(response: Any) -> bool:
    return bool(response.signed_request.url and response.audit_event)


async def _in_flight(n: int, conc: int, one: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """Run ``one(0..n-1)`` with ``conc`` in flight; wall time, errors by code, client CPU."""
    turn = iter(range(n))
    codes: Counter[str] = Counter()
    samples: list[str] = []

    async def caller() -> None:
        for i in turn:
            try:
                await one(i)
            except Exception as err:
                codes[_code(err)] += 1
                if len(samples) < 3:
                    samples.append(_detail(err))

    cpu0 = _cpu_s()
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(min(conc, n))))
    ms = (time.perf_counter() - started) * 1e3
    return {
        "ms": round(ms, 2),
        "calls": n - sum(codes.values()),
        "errors": sum(codes.values()),
        "error_codes": dict(codes),
        **({"error_samples": samples} if samples else {}),
        "client_cpu_s": round(_cpu_s() - cpu0, 4),
    }
