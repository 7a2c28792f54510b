"""The floor: a bare ``grpc.aio`` unary handler computing one HMAC-SHA256, on a Unix socket.

Run as its own process: ``python -m bench.floor_server SOCKET``. The request body is the bytes
to sign, the response the hex digest under a key generated at start-up. No proto, no
interceptors, no storage: the cheapest possible "sign this" round trip on this machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import signal
import sys

import grpc

METHOD = "/bench.Floor/Hmac"


def _identity(data: bytes) -> bytes:
    return data


async def serve(socket_path: str) -> None:
    key = secrets.token_bytes(32)

    async def sign(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return hmac.new(key, request, hashlib.sha256).hexdigest().encode()

    handler = grpc.method_handlers_generic_handler(
        "bench.Floor",
        {
            "Hmac": grpc.unary_unary_rpc_method_handler(
                sign, request_deserializer=_identity, response_serializer=_identity
            )
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
    asyncio.run(serve(sys.argv[1]))
