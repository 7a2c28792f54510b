"""The synchronous transport: the client core plus blocking I/O (``grpc``, ``time.sleep``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import grpc  # type: ignore[import-untyped]
from google.protobuf import message as _message

from pipvault_client._base import ClientCore
from pipvault_client._calls import Pages, PageWalk, Stream, Unary
from pipvault_client._retry import CallContext

T = TypeVar("T")


class SyncTransport(ClientCore):
    """Owns a ``grpc.Channel``; runs plans with deadlines, metadata and safe retries."""

    _grpc_api: ClassVar[Any] = grpc
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def close(self) -> None:
        """Closes the channel; in-flight calls are cancelled."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _unary(self, plan: Unary[T]) -> T:
        call = self._start(plan.spec, plan.reason, plan.options)
        return plan.read(self._invoke(call, plan.request))

    def _stream(self, plan: Stream[T]) -> Iterator[T]:
        # Checked here, before the generator exists: nothing is sent on bad input.
        return self._stream_items(self._start(plan.spec, plan.reason, plan.options), plan)

    def _pages(self, plan: Pages[T]) -> Iterator[T]:
        walk = PageWalk(plan, self._start)

        def items() -> Iterator[T]:
            while walk.more():
                yield from walk.read(self._invoke(walk.call, walk.request))

        return items()

    def _invoke(self, call: CallContext, request: _message.Message) -> Any:
        method = self._callable(call.spec)
        while True:
            with call.attempt() as attempt:
                return method(request, timeout=attempt.timeout, metadata=call.metadata)
            self._sleep(attempt.delay)

    def _stream_items(self, call: CallContext, plan: Stream[T]) -> Iterator[T]:
        while True:
            with self._stream_attempt(call, plan.request) as (attempt, responses):
                for response in responses:
                    attempt.delivered()
                    yield plan.read(response)
                return
            self._sleep(attempt.delay)
