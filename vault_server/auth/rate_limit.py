"""Per-principal request rate limits: one token bucket per principal.

A principal with ``rate_limit_per_s: r`` in the policy may make ``r`` calls a second on average
and bursts of ``burst`` calls (default ``max(1, 2 * r)``); beyond that a call is refused with
``RateLimited`` (RESOURCE_EXHAUSTED, reason RATE_LIMITED) before any work is done. A principal
without a rate is not limited here (the server's concurrency cap still applies). A policy reload
that changes a rate applies to the existing bucket at its next call.

Memory is bounded: buckets live in an LRU of at most ``max_principals`` entries (principals come
from the policy, so in practice the LRU never evicts; an evicted bucket restarts full).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from vault_server.core.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by principal id.

    Args:
        burst_factor: bucket size as a multiple of the rate (at least one call).
        max_principals: LRU bound on the number of buckets kept.
        monotonic: injected clock (seconds).
    """

    def __init__(
        self,
        *,
        burst_factor: float = 2.0,
        max_principals: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not burst_factor > 0 or max_principals < 1:
            raise ValueError("burst_factor must be > 0 and max_principals >= 1")
        self._factor = burst_factor
        self._max = max_principals
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def burst(self, rate: float) -> float:
        return max(1.0, self._factor * rate)

    def check(self, principal_id: str, rate: float | None) -> None:
        """Take one token from the principal's bucket.

        Raises:
            RateLimited: the bucket is empty; ``metadata['retryAfterMs']`` says when one more
                call would be admitted.
        """
        if rate is None:
            return
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError("rate must be a positive finite number")
        capacity = self.burst(rate)
        with self._lock:
            now = self._monotonic()
            bucket = self._buckets.get(principal_id)
            if bucket is None:
                bucket = _Bucket(capacity, now)
                self._buckets[principal_id] = bucket
                if len(self._buckets) > self._max:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(principal_id)
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
                bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait_ms = math.ceil((1.0 - bucket.tokens) / rate * 1000)
        raise RateLimited(
            "the caller exceeded its request rate",
            metadata={"retryAfterMs": str(wait_ms), "ratePerSecond": f"{rate:g}"},
        )

    def __len__(self) -> int:
        return len(self._buckets)
