"""Transport of the synchronous client: channel, deadlines, retries, streams and pages."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc  # type: ignore[import-untyped]
from google.protobuf import message as _message

from pipvault_client._base import CallContext, CallOptions, ClientCore
from pipvault_client._channel import channel_options, ssl_credentials
from pipvault_client._config import DEFAULT_TIMEOUT, RetryPolicy, TlsConfig
from pipvault_client._errors import InternalError, error_from_rpc_error
from pipvault_client._rpc import ReqT, RespT, RpcSpec

T = TypeVar("T")


class SyncTransport(ClientCore):
    """Owns the ``grpc.Channel`` and runs calls with deadlines, metadata and safe retries."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls: TlsConfig | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        on_behalf_of: str | None = None,
    ) -> None:
        super().__init__(
            address, token=token, tls=tls, timeout=timeout, retry=retry, on_behalf_of=on_behalf_of
        )
        options = channel_options(tls)
        if tls is None:
            self._channel: Any = grpc.insecure_channel(self.address, options=options)
        else:
            self._channel = grpc.secure_channel(self.address, ssl_credentials(tls), options)
        self._callables: dict[str, Any] = {}
        self._sleep: Callable[[float], None] = time.sleep

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

    def _callable(self, spec: RpcSpec[Any, Any]) -> Any:
        found = self._callables.get(spec.path)
        if found is None:
            channel = self._channel
            factory = channel.unary_stream if spec.server_streaming else channel.unary_unary
            found = factory(
                spec.path,
                request_serializer=spec.request_type.SerializeToString,
                response_deserializer=spec.response_type.FromString,
            )
            self._callables[spec.path] = found
        return found

    def _unary(
        self,
        spec: RpcSpec[ReqT, RespT],
        request: ReqT,
        options: CallOptions,
        reason: str | None = None,
    ) -> RespT:
        call = self._start(spec, reason, options)
        response: RespT = self._invoke(call, request)
        return response

    def _invoke(self, call: CallContext, request: _message.Message) -> Any:
        method = self._callable(call.spec)
        while True:
            try:
                return method(request, timeout=call.attempt_timeout(), metadata=call.metadata)
            except grpc.RpcError as exc:
                error = error_from_rpc_error(exc, request_id=call.request_id, method=call.spec.path)
                delay = call.retry_delay(error)
                if delay is None:
                    raise error from exc
            self._sleep(delay)

    def _stream(
        self,
        spec: RpcSpec[ReqT, RespT],
        request: ReqT,
        options: CallOptions,
        reason: str | None = None,
    ) -> Iterator[RespT]:
        # Validated here, before the generator exists: nothing is sent on bad input.
        call = self._start(spec, reason, options)
        return self._stream_gen(call, request)

    def _stream_gen(self, call: CallContext, request: _message.Message) -> Iterator[Any]:
        method = self._callable(call.spec)
        while True:
            received = False
            stream = method(request, timeout=call.attempt_timeout(), metadata=call.metadata)
            try:
                for item in stream:
                    received = True
                    yield item
                return
            except grpc.RpcError as exc:
                error = error_from_rpc_error(exc, request_id=call.request_id, method=call.spec.path)
                # Once an item arrived a retry would replay it: only the opening is retried.
                delay = None if received else call.retry_delay(error)
                if delay is None:
                    raise error from exc
            finally:
                stream.cancel()
            self._sleep(delay)

    def _paginate(
        self,
        spec: RpcSpec[ReqT, RespT],
        make_request: Callable[[str], ReqT],
        page: Callable[[RespT], tuple[Sequence[T], str]],
        options: CallOptions,
    ) -> Iterator[T]:
        first_call = self._start(spec, None, options)
        first_request = make_request("")

        def pages() -> Iterator[T]:
            call, request = first_call, first_request
            seen: set[str] = set()
            while True:
                items, token = page(self._invoke(call, request))
                yield from items
                if not token:
                    return
                if token in seen:
                    raise InternalError(
                        grpc.StatusCode.INTERNAL,
                        "the server repeated a page token",
                        request_id=call.request_id,
                        method=spec.path,
                    )
                seen.add(token)
                call, request = self._start(spec, None, options), make_request(token)

        return pages()
