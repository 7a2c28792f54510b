"""The floors: bare ``grpc.aio`` unary handlers on a Unix socket, each in its own process.

``python -m bench.floor_server SOCKET``: the floor of issue 9. The request body is the bytes to
sign, the response the hex digest under a key generated at start-up. No proto, no interceptors,
no storage: the cheapest possible "sign this" round trip on this machine.

``--loop uvloop`` runs the floor on uvloop, the event loop ``pipvault serve`` uses by default
(the floor of the issue stays on asyncio's own loop; this one shows how much of pipvault's
distance from it the loop alone closes).

``python -m bench.floor_server SOCKET --durable DB``: the durable floor. The same handler, and
before it answers, one row (the request and its digest) is appended to a SQLite database in WAL
mode with ``synchronous=FULL`` by a group committer: one writer thread, every row queued so far
in one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (one fsync), each caller released once its row is
durable - what pipvault's SQLite signing path must do at the least, with nothing else around
it. Its distance from the floor is what the disk's fsync and one thread hand-off cost here.

Both also answer ``/bench.Floor/HmacBatch``, the fan-out form: the request is N items joined by
``\n`` (each the bytes to sign; none contains a newline), the response their N hex digests
joined by ``\n``, in order. One HMAC-SHA256 per item; on the durable floor the N rows (each item
and its digest) go into the database in ONE transaction, committed (one fsync) before the
answer - the least a durable 1,000-signature batch costs here (pipvault's ``BatchSignOrders``
also commits its whole batch at once).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import queue
import secrets
import signal
import sqlite3
import threading
from typing import Any

import grpc

METHOD = "/bench.Floor/Hmac"
BATCH_METHOD = "/bench.Floor/HmacBatch"
SEPARATOR = b"\n"
MAX_BATCH = 256  # queued callers (not rows) per transaction


def _identity(data: bytes) -> bytes:
    return data


class GroupCommitter:
    """One writer thread; every row queued so far shares one transaction and one fsync (a batch
    call queues its rows as one entry: they are always in the same transaction)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS signed (id INTEGER PRIMARY KEY, body BLOB, digest TEXT)"
        )
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="floor-commit", daemon=True).start()

    async def append(self, rows: list[tuple[bytes, str]]) -> None:
        """Until ``rows`` (each item and its digest) are committed."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((rows, loop, done))
        await done

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            error: BaseException | None = None
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO signed (body, digest) VALUES (?, ?)",
                    [row for rows, _, _ in batch for row in rows],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                error = exc
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            waiters: dict[Any, list[Any]] = {}
            for _, loop, done in batch:
                waiters.setdefault(loop, []).append(done)
            for loop, futures in waiters.items():
                loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


async def serve(socket_path: str, durable: str | None = None) -> None:
    key = secrets.token_bytes(32)
    committer = GroupCommitter(durable) if durable else None

    async def sign(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        digest = hmac.new(key, request, hashlib.sha256).hexdigest()
        if committer is not None:
            await committer.append([(request, digest)])
        return digest.encode()

    async def sign_batch(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        items = request.split(SEPARATOR)
        digests = [hmac.new(key, item, hashlib.sha256).hexdigest() for item in items]
        if committer is not None:
            await committer.append(list(zip(items, digests, strict=True)))
        return "\n".join(digests).encode()

    handler = grpc.method_handlers_generic_handler(
        "bench.Floor",
        {
            "Hmac": grpc.unary_unary_rpc_method_handler(
                sign, request_deserializer=_identity, response_serializer=_identity
            ),
            "HmacBatch": grpc.unary_unary_rpc_method_handler(
                sign_batch, request_deserializer=_identity, response_serializer=_identity
            ),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"unix:{socket_path}")
    await server.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server")
    parser.add_argument("socket")
    parser.add_argument(
        "--durable", metavar="DB", help="group-commit each call (each batch's rows) to this file"
    )
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop"
    )
    args = parser.parse_args()
    factory = asyncio.new_event_loop
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.socket, args.durable))
