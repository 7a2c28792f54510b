"""What the sync and async clients share: settings, metadata, deadlines and the retry plan."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, TypedDict

import grpc  # type: ignore[import-untyped]

from pipvault_client._channel import (
    Endpoint,
    parse_address,
    require_secure_or_local,
)
from pipvault_client._config import RetryPolicy, TlsConfig, check_timeout
from pipvault_client._errors import VaultClientError
from pipvault_client._rpc import RpcSpec

logger = logging.getLogger("pipvault_client")

Metadata = tuple[tuple[str, str], ...]

AUTHORIZATION_KEY = "authorization"
REASON_KEY = "x-pipvault-reason"
REQUEST_ID_KEY = "x-request-id"
ON_BEHALF_OF_KEY = "x-pipvault-on-behalf-of"

_MAX_REQUEST_ID = 128
_MAX_REASON_METADATA = 1024
_CONCURRENCY_LIMITED = "CONCURRENCY_LIMITED"


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


class CallContext:
    """One logical call: its request id, metadata, deadline and retry plan.

    The deadline is fixed when the call starts; retries only spend what is left of it.
    """

    __slots__ = (
        "_attempt",
        "_clock",
        "_deadline",
        "_policy",
        "_rng",
        "metadata",
        "request_id",
        "spec",
        "timeout",
    )

    def __init__(
        self,
        spec: RpcSpec[Any, Any],
        *,
        metadata: Metadata,
        request_id: str,
        timeout: float,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.spec = spec
        self.metadata = metadata
        self.request_id = request_id
        self.timeout = timeout
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._deadline = clock() + timeout
        self._attempt = 0

    def attempt_timeout(self) -> float:
        """The deadline for the next attempt: all that is left of the call's deadline."""
        self._attempt += 1
        if self._attempt == 1:
            return self.timeout
        return max(self._deadline - self._clock(), 0.001)

    def retry_delay(self, error: VaultClientError) -> float | None:
        """Seconds to sleep before retrying, or ``None`` when the error must be raised."""
        if not self.spec.read_only or not is_retryable(error):
            return None
        if self._attempt >= self._policy.max_attempts:
            return None
        delay = self._rng.uniform(0, self._policy.backoff_bound(self._attempt))
        remaining = self._deadline - self._clock()
        if delay + self._policy.min_attempt_time >= remaining:
            return None
        logger.debug(
            "retrying %s after %s in %.3fs (attempt %d, request id %s)",
            self.spec.name,
            error.code_name,
            delay,
            self._attempt + 1,
            self.request_id,
        )
        return delay


def is_retryable(error: VaultClientError) -> bool:
    """UNAVAILABLE, or RESOURCE_EXHAUSTED because the server is at its concurrency cap."""
    if error.code == grpc.StatusCode.UNAVAILABLE:
        return True
    return error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason == _CONCURRENCY_LIMITED


class ClientCore:
    """Settings and per-call preparation shared by :class:`VaultClient` and the async client."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None,
        tls: TlsConfig | None,
        timeout: float,
        retry: RetryPolicy | None,
        on_behalf_of: str | None,
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
