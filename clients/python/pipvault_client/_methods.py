"""Each public method is written once and serves both clients.

A method of the shared mixins (``_admin``, ``_credentials``, ``_signing``) takes the call's
arguments and returns its plan (``_calls``). The decorators here make it a descriptor that, read
from a :class:`VaultClient`, runs the plan on the sync transport and, read from an
:class:`AsyncVaultClient`, is a coroutine function (unary RPCs) or returns an async iterator
(streams and lists; their arguments are still checked at once, before anything is sent).

Why a descriptor: one definition per method means one signature and one docstring for both
clients, and the overloads of ``__get__`` still give mypy and IDEs each client's exact signature
and result type. At runtime the function handed out carries the method's name, docstring and
signature with the client's result type (``inspect.signature``, ``typing.get_type_hints``,
``help``).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pipvault_client._aio_transport import AsyncTransport
from pipvault_client._calls import Pages, Stream, Unary
from pipvault_client._sync_transport import SyncTransport

P = ParamSpec("P")
T = TypeVar("T")
Plan = TypeVar("Plan")


class _Method(Generic[P, Plan]):
    """What the two method kinds share: the definition, and one function per client kind."""

    def __init__(self, define: Callable[Concatenate[Any, P], Plan]) -> None:
        self._define = define
        self._functions: dict[bool, Callable[..., Any]] = {}
        self.__doc__ = define.__doc__

    def _make(self, asynchronous: bool) -> Callable[..., Any]:
        raise NotImplementedError

    def _result_type(self, item: Any, asynchronous: bool) -> Any:
        raise NotImplementedError

    def _function(self, owner: type) -> Callable[..., Any]:
        asynchronous = issubclass(owner, AsyncTransport)
        found = self._functions.get(asynchronous)
        if found is None:
            found = self._make(asynchronous)
            functools.update_wrapper(found, self._define)
            # The definition returns a plan; the client's method returns what the plan reads.
            (item,) = typing.get_args(typing.get_type_hints(self._define)["return"])
            result = self._result_type(item, asynchronous)
            found.__annotations__ = {**self._define.__annotations__, "return": result}
            signature = inspect.signature(self._define).replace(return_annotation=result)
            found.__signature__ = signature  # type: ignore[attr-defined]
            self._functions[asynchronous] = found
        return found

    def _get(self, obj: object, owner: type | None) -> Any:
        cls = owner if owner is not None else type(obj)
        if not issubclass(cls, SyncTransport | AsyncTransport):
            return self  # read from a mixin class itself: not a client method
        function = self._function(cls)
        return function if obj is None else types.MethodType(function, obj)


class UnaryMethod(_Method[P, Unary[T]]):
    """A unary RPC method: returns the result on a sync client, a coroutine on an async one."""

    @overload
    def __get__(
        self, obj: None, owner: type[AsyncTransport]
    ) -> Callable[Concatenate[AsyncTransport, P], Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(
        self, obj: None, owner: type[SyncTransport]
    ) -> Callable[Concatenate[SyncTransport, P], T]: ...
    @overload
    def __get__(
        self, obj: AsyncTransport, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, obj: SyncTransport, owner: type | None = None) -> Callable[P, T]: ...
    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return self._get(obj, owner)

    def _make(self, asynchronous: bool) -> Callable[..., Any]:
        define = self._define
        if asynchronous:

            async def run_async(self: AsyncTransport, *args: Any, **kwargs: Any) -> Any:
                return await self._unary(define(self, *args, **kwargs))

            return run_async

        def run(self: SyncTransport, *args: Any, **kwargs: Any) -> Any:
            return self._unary(define(self, *args, **kwargs))

        return run

    def _result_type(self, item: Any, asynchronous: bool) -> Any:
        return item


class IteratorMethod(_Method[P, Stream[T] | Pages[T]]):
    """A streaming or list RPC method: returns an iterator on a sync client, an async iterator
    on an async one."""

    @overload
    def __get__(
        self, obj: None, owner: type[AsyncTransport]
    ) -> Callable[Concatenate[AsyncTransport, P], AsyncIterator[T]]: ...
    @overload
    def __get__(
        self, obj: None, owner: type[SyncTransport]
    ) -> Callable[Concatenate[SyncTransport, P], Iterator[T]]: ...
    @overload
    def __get__(
        self, obj: AsyncTransport, owner: type | None = None
    ) -> Callable[P, AsyncIterator[T]]: ...
    @overload
    def __get__(
        self, obj: SyncTransport, owner: type | None = None
    ) -> Callable[P, Iterator[T]]: ...
    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return self._get(obj, owner)

    def _make(self, asynchronous: bool) -> Callable[..., Any]:
        define = self._define

        def run(self: SyncTransport | AsyncTransport, *args: Any, **kwargs: Any) -> Any:
            plan = define(self, *args, **kwargs)
            if isinstance(plan, Pages):
                return self._pages(plan)
            return self._stream(plan)

        return run

    def _result_type(self, item: Any, asynchronous: bool) -> Any:
        return AsyncIterator[item] if asynchronous else Iterator[item]


def unary_rpc(define: Callable[Concatenate[Any, P], Unary[T]]) -> UnaryMethod[P, T]:
    """Decorates the one definition of a unary RPC method."""
    return UnaryMethod(define)


def stream_rpc(define: Callable[Concatenate[Any, P], Stream[T]]) -> IteratorMethod[P, T]:
    """Decorates the one definition of a server-streaming RPC method."""
    return IteratorMethod(define)


def list_rpc(define: Callable[Concatenate[Any, P], Pages[T]]) -> IteratorMethod[P, T]:
    """Decorates the one definition of a paginated list RPC method."""
    return IteratorMethod(define)
