"""The retry plan of one call, defined once for both transports.

A transport runs each attempt inside ``with call.attempt() as attempt:``; the attempt turns a
``grpc.RpcError`` into the client's error and decides, from the RPC's safety class, the policy
and what is left of the deadline, whether to raise it or to swallow it and leave the backoff in
``attempt.delay``. All the transport adds is the call itself and the sleep (``time.sleep`` or
``asyncio.sleep``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, Self

import grpc  # type: ignore[import-untyped]

from pipvault_client._config import RetryPolicy
from pipvault_client._errors import VaultClientError, error_from_rpc_error
from pipvault_client._rpc import RpcSpec

logger = logging.getLogger("pipvault_client")

Metadata = tuple[tuple[str, str], ...]

_CONCURRENCY_LIMITED = "CONCURRENCY_LIMITED"


def is_retryable(error: VaultClientError) -> bool:
    """UNAVAILABLE, or RESOURCE_EXHAUSTED because the server is at its concurrency cap."""
    if error.code == grpc.StatusCode.UNAVAILABLE:
        return True
    return error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason == _CONCURRENCY_LIMITED


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

    def attempt(self) -> Attempt:
        """The next attempt, with all that is left of the call's deadline."""
        return Attempt(self, self.attempt_timeout())

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


class Attempt:
    """One attempt of a call; as a context manager, what a failure of it means.

    Leaving the ``with`` block on a ``grpc.RpcError`` either raises the matching
    :class:`~pipvault_client.VaultClientError` (from the gRPC error) or, when the call may be
    retried, swallows it and sets :attr:`delay`. Any other exception passes through.
    """

    __slots__ = ("_call", "_delivered", "delay", "timeout")

    def __init__(self, call: CallContext, timeout: float) -> None:
        self._call = call
        self._delivered = False
        self.timeout = timeout
        self.delay = 0.0

    def delivered(self) -> None:
        """A streamed item reached the caller: a retry would replay it, so none is made."""
        self._delivered = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if not isinstance(exc, grpc.RpcError):
            return False
        call = self._call
        error = error_from_rpc_error(exc, request_id=call.request_id, method=call.spec.path)
        delay = None if self._delivered else call.retry_delay(error)
        if delay is None:
            raise error from exc
        self.delay = delay
        return True
