"""The one client core: settings, channel, stubs and the preparation of each call.

Both transports (``_sync_transport``, ``_aio_transport``) are this core plus I/O.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypedDict

from pipvault_client._channel import (
    Endpoint,
    open_channel,
    parse_address,
    require_secure_or_local,
)
from pipvault_client._config import DEFAULT_TIMEOUT, RetryPolicy, TlsConfig, check_timeout
from pipvault_client._retry import Attempt, CallContext
from pipvault_client._rpc import RpcSpec

AUTHORIZATION_KEY = "authorization"
REASON_KEY = "x-pipvault-reason"
REQUEST_ID_KEY = "x-request-id"
ON_BEHALF_OF_KEY = "x-pipvault-on-behalf-of"

_MAX_REQUEST_ID = 128
_MAX_REASON_METADATA = 1024


class CallOptions(TypedDict, total=False):
    """Per-call options every client method accepts as keyword arguments.

    Attributes:
        timeout: deadline of this call in seconds (default: the client's ``timeout``). List
            methods apply it to each page.
        request_id: the ``x-request-id`` to send (default: a random UUID4); kept on errors.
        on_behalf_of: the user this call acts for (``x-pipvault-on-behalf-of``).
    """

    timeout: float | None
    request_id: str | None
    on_behalf_of: str | None


_OPTION_KEYS = frozenset(CallOptions.__annotations__)


def _printable_ascii(value: str) -> bool:
    return all(" " <= ch <= "~" for ch in value)


def check_reason(spec: RpcSpec[Any, Any], reason: str | None) -> str:
    """A mutating or credential-touching RPC needs a non-empty reason; raises before sending."""
    if spec.reason_required and (not isinstance(reason, str) or not reason.strip()):
        raise ValueError(f"{spec.name} requires a non-empty reason")
    return reason.strip() if isinstance(reason, str) else ""


def new_request_id() -> str:
    """A random request id (UUID4)."""
    return str(uuid.uuid4())


class ClientCore:
    """Settings, channel and per-call preparation shared by :class:`VaultClient` and
    :class:`AsyncVaultClient`; a transport subclass names its gRPC API and adds the I/O."""

    _grpc_api: ClassVar[Any]
    """``grpc`` or ``grpc.aio``: both have the same channel factories and multi-callables."""

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
        self._endpoint: Endpoint = parse_address(address)
        require_secure_or_local(self._endpoint, tls)
        self._tls = tls
        if token is not None and (not token or not _printable_ascii(token) or " " in token):
            raise ValueError("the bearer token must be non-empty printable ASCII without spaces")
        self.__token = token
        self._timeout = check_timeout(timeout)
        self._retry = retry if retry is not None else RetryPolicy()
        self._on_behalf_of = _check_on_behalf_of(on_behalf_of)
        self._clock: Callable[[], float] = time.monotonic
        self._rng = random.Random()
        self._channel: Any = open_channel(self._grpc_api, self.address, tls)
        self._callables: dict[str, Any] = {}

    @property
    def address(self) -> str:
        """The gRPC target the client connects to."""
        return str(self._endpoint.target)

    @property
    def timeout(self) -> float:
        """Default deadline of each call, in seconds."""
        return self._timeout

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(address={self.address!r}, tls={self._tls is not None}, "
            f"token={'<set>' if self.__token else None}, timeout={self._timeout})"
        )

    def _callable(self, spec: RpcSpec[Any, Any]) -> Any:
        """The channel's multi-callable for ``spec`` (made once per RPC)."""
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

    @contextlib.contextmanager
    def _stream_attempt(self, call: CallContext, request: Any) -> Iterator[tuple[Attempt, Any]]:
        """One attempt of a server stream: opens it, and cancels it however the block is left.
        A gRPC failure inside means what :class:`Attempt` says (raised, or swallowed with a
        delay before the next attempt)."""
        attempt = call.attempt()
        method = self._callable(call.spec)
        responses = method(request, timeout=attempt.timeout, metadata=call.metadata)
        try:
            with attempt:
                yield attempt, responses
        finally:
            responses.cancel()

    def _start(
        self,
        spec: RpcSpec[Any, Any],
        reason: str | None,
        options: CallOptions,
    ) -> CallContext:
        reason_text = check_reason(spec, reason)
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise TypeError(f"unexpected call options: {sorted(unknown)}")
        timeout = options.get("timeout")
        effective = self._timeout if timeout is None else check_timeout(timeout)
        request_id = options.get("request_id")
        if request_id is None:
            rid = new_request_id()
        elif request_id and len(request_id) <= _MAX_REQUEST_ID and _printable_ascii(request_id):
            rid = request_id
        else:
            raise ValueError("request_id must be 1-128 printable ASCII characters")
        actor = _check_on_behalf_of(options.get("on_behalf_of")) or self._on_behalf_of
        metadata: list[tuple[str, str]] = [(REQUEST_ID_KEY, rid)]
        if self.__token is not None:
            metadata.append((AUTHORIZATION_KEY, f"Bearer {self.__token}"))
        # The request field is authoritative; the header is sent when it can carry the text.
        if (
            reason_text
            and len(reason_text) <= _MAX_REASON_METADATA
            and _printable_ascii(reason_text)
        ):
            metadata.append((REASON_KEY, reason_text))
        if actor:
            metadata.append((ON_BEHALF_OF_KEY, actor))
        return CallContext(
            spec,
            metadata=tuple(metadata),
            request_id=rid,
            timeout=effective,
            policy=self._retry,
            clock=self._clock,
            rng=self._rng,
        )


def _check_on_behalf_of(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 256 or not _printable_ascii(value):
        raise ValueError("on_behalf_of must be at most 256 printable ASCII characters")
    return value
