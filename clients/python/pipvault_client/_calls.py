"""Plans: what one call of a client method is, before any I/O.

Every public method is written once (``_admin``, ``_credentials``, ``_signing``): it checks its
arguments, builds the request message and says how to read the response into what the method
returns. That plan is all a transport gets; the sync and the async transport only add the I/O.
The plans' constructors tie the request and the reader to the RPC's message types, so mypy checks
each method against its RPC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import grpc  # type: ignore[import-untyped]
from google.protobuf import message as _message

from pipvault_client._base import CallOptions
from pipvault_client._errors import InternalError
from pipvault_client._retry import CallContext
from pipvault_client._rpc import ReqT, RespT, RpcSpec

T = TypeVar("T")

Start = Callable[[RpcSpec[Any, Any], str | None, CallOptions], CallContext]
"""``ClientCore._start``: checks the reason and options and prepares one call."""


class _Single(Generic[T]):
    """One request; ``read`` turns a response message into (an item of) the result."""

    __slots__ = ("options", "read", "reason", "request", "spec")

    def __init__(
        self,
        spec: RpcSpec[ReqT, RespT],
        request: ReqT,
        read: Callable[[RespT], T],
        options: CallOptions,
        reason: str | None = None,
    ) -> None:
        self.spec: RpcSpec[Any, Any] = spec
        self.request: _message.Message = request
        self.read: Callable[[Any], T] = read
        self.options = options
        self.reason = reason


class Unary(_Single[T]):
    """The plan of a unary RPC: one response, read into the method's result."""

    __slots__ = ()


class Stream(_Single[T]):
    """The plan of a server-streaming RPC: each response is read into one item."""

    __slots__ = ()


class Pages(Generic[T]):
    """The plan of a list RPC: ``request`` makes the request for a page token, ``read`` splits a
    response into its items and the next page token. Read-only, so never a reason."""

    __slots__ = ("options", "read", "request", "spec")

    def __init__(
        self,
        spec: RpcSpec[ReqT, RespT],
        request: Callable[[str], ReqT],
        read: Callable[[RespT], tuple[Sequence[T], str]],
        options: CallOptions,
    ) -> None:
        self.spec: RpcSpec[Any, Any] = spec
        self.request: Callable[[str], _message.Message] = request
        self.read: Callable[[Any], tuple[Sequence[T], str]] = read
        self.options = options


def whole(response: RespT) -> RespT:
    """The reader of methods that return the response message itself."""
    return response


class PageWalk(Generic[T]):
    """Follows the page tokens of a :class:`Pages` plan.

    Each page is a call of its own (its own deadline, retries and request id); the first one is
    prepared at once, so bad options raise before anything is sent. A token the server already
    gave is a server bug: it raises :class:`InternalError` instead of looping forever.
    """

    __slots__ = ("_plan", "_seen", "_start", "_token", "call", "request")

    def __init__(self, plan: Pages[T], start: Start) -> None:
        self._plan = plan
        self._start = start
        self.call = start(plan.spec, None, plan.options)
        self.request = plan.request("")
        self._token: str | None = None
        self._seen: set[str] = set()

    def more(self) -> bool:
        """Whether a page is left to fetch; prepares :attr:`call` and :attr:`request` for it."""
        token = self._token
        if token is None:
            return True
        if not token:
            return False
        if token in self._seen:
            raise InternalError(
                grpc.StatusCode.INTERNAL,
                "the server repeated a page token",
                request_id=self.call.request_id,
                method=self._plan.spec.path,
            )
        self._seen.add(token)
        self.call = self._start(self._plan.spec, None, self._plan.options)
        self.request = self._plan.request(token)
        return True

    def read(self, response: Any) -> Sequence[T]:
        """The items of a fetched page; remembers its next page token."""
        items, self._token = self._plan.read(response)
        return items
