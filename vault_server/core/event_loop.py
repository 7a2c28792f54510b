"""The server's event loop: uvloop by default, the standard library's asyncio loop on request.

Everything a signature does on the event loop - gRPC's per-call coroutines, the interceptor,
the checks, the venue signature, waking the caller when its batch is durable - runs in one
interpreter under one GIL, so the loop's own machinery is part of every signature's cost.
uvloop runs the loop (scheduling, callbacks, futures' wake-ups) in C: on the 2-core bench
machine it cut the event-loop thread's CPU per signature by about a fifth and raised
``SignOrder`` throughput at 32 callers by about a quarter (README "Performance"). Nothing in
pipvault depends on which loop runs; ``event_loop: asyncio`` in the config selects the standard
one (a platform without uvloop, or to rule the loop out while debugging).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

EventLoopKind = Literal["uvloop", "asyncio"]
T = TypeVar("T")


class EventLoopUnavailable(RuntimeError):
    """The configured loop cannot be created here."""


def loop_factory(kind: EventLoopKind) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:  # a platform without uvloop's wheels (it does not support Windows)
        raise EventLoopUnavailable(
            "event_loop: uvloop is not installed here; install it or set event_loop: asyncio"
        ) from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def new_event_loop(kind: EventLoopKind) -> asyncio.AbstractEventLoop:
    return loop_factory(kind)()


def run(main: Coroutine[Any, Any, T], new_loop: Callable[[], asyncio.AbstractEventLoop]) -> T:
    """``asyncio.run`` on a loop from ``new_loop`` (``loop_factory`` of the configured kind)."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)


def running_loop_kind() -> str:
    """Which loop runs the calling coroutine (``uvloop`` or ``asyncio``), for the start-up log."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.split(".", 1)[0] == "uvloop" else "asyncio"
