"""The asyncio transport: the client core plus ``grpc.aio`` I/O and ``asyncio.sleep``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import grpc.aio  # type: ignore[import-untyped]
from google.protobuf import message as _message

from pipvault_client._base import ClientCore
from pipvault_client._calls import Pages, PageWalk, Stream, Unary
from pipvault_client._retry import CallContext

T = TypeVar("T")


class AsyncTransport(ClientCore):
    """Owns a ``grpc.aio.Channel``; runs plans with deadlines, metadata and safe retries."""

    _grpc_api: ClassVar[Any] = grpc.aio
    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    async def close(self, grace: float | None = None) -> None:
        """Closes the channel; in-flight calls are cancelled (after ``grace`` seconds)."""
        await self._channel.close(grace)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _unary(self, plan: Unary[T]) -> T:
        call = self._start(plan.spec, plan.reason, plan.options)
        return plan.read(await self._invoke(call, plan.request))

    def _stream(self, plan: Stream[T]) -> AsyncIterator[T]:
        # Checked here, before the generator exists: nothing is sent on bad input.
        return self._stream_items(self._start(plan.spec, plan.reason, plan.options), plan)

    def _pages(self, plan: Pages[T]) -> AsyncIterator[T]:
        walk = PageWalk(plan, self._start)

        async def items() -> AsyncIterator[T]:
            while walk.more():
                for item in walk.read(await self._invoke(walk.call, walk.request)):
                    yield item

        return items()

    async def _invoke(self, call: CallContext, request: _message.Message) -> Any:
        method = self._callable(call.spec)
        while True:
            with call.attempt() as attempt:
                return await method(request, timeout=attempt.timeout, metadata=call.metadata)
            await self._sleep(attempt.delay)

    async def _stream_items(self, call: CallContext, plan: Stream[T]) -> AsyncIterator[T]:
        while True:
            with self._stream_attempt(call, plan.request) as (attempt, responses):
                async for response in responses:
                    attempt.delivered()
                    yield plan.read(response)
                return
            await self._sleep(attempt.delay)
