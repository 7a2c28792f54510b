"""Per-principal token buckets with an injected clock."""

from __future__ import annotations

import pytest

from vault_server.auth.rate_limit import RateLimiter
from vault_server.core.errors import ErrorKind, RateLimited


class Mono:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def admitted(limiter: RateLimiter, who: str, rate: float | None, n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            limiter.check(who, rate)
            ok += 1
        except RateLimited:
            pass
    return ok


def test_a_burst_beyond_the_bucket_is_refused() -> None:
    clock = Mono()
    limiter = RateLimiter(monotonic=clock)
    assert admitted(limiter, "router", 5, 10) == 10  # burst = 2 x 5
    with pytest.raises(RateLimited) as info:
        limiter.check("router", 5)
    err = info.value
    assert err.kind is ErrorKind.RESOURCE_EXHAUSTED and err.reason == "RATE_LIMITED"
    assert err.metadata["retryAfterMs"] == "200"


def test_the_bucket_refills_at_the_rate() -> None:
    clock = Mono()
    limiter = RateLimiter(monotonic=clock)
    assert admitted(limiter, "router", 5, 20) == 10
    clock.t += 0.2  # one token
    assert admitted(limiter, "router", 5, 5) == 1
    clock.t += 1.0  # five tokens
    assert admitted(limiter, "router", 5, 10) == 5
    clock.t += 3600  # refill stops at the burst size
    assert admitted(limiter, "router", 5, 50) == 10


def test_principals_have_independent_buckets() -> None:
    clock = Mono()
    limiter = RateLimiter(monotonic=clock)
    assert admitted(limiter, "a", 1, 5) == 2
    assert admitted(limiter, "b", 1, 5) == 2
    assert admitted(limiter, "c", 10, 30) == 20


def test_slow_rates_get_a_burst_of_one_and_no_rate_means_unlimited() -> None:
    clock = Mono()
    limiter = RateLimiter(monotonic=clock)
    assert admitted(limiter, "slow", 0.1, 5) == 1
    clock.t += 9.9
    assert admitted(limiter, "slow", 0.1, 1) == 0
    clock.t += 0.1
    assert admitted(limiter, "slow", 0.1, 1) == 1
    assert admitted(limiter, "free", None, 10_000) == 10_000
    assert len(limiter) == 1  # unlimited principals take no memory


def test_burst_factor_is_configurable_and_rate_changes_apply() -> None:
    clock = Mono()
    limiter = RateLimiter(burst_factor=1.0, monotonic=clock)
    assert admitted(limiter, "r", 4, 10) == 4
    clock.t += 10
    assert admitted(limiter, "r", 1, 10) == 1  # lowered by a policy reload: capped at once


def test_memory_is_bounded_by_an_lru() -> None:
    clock = Mono()
    limiter = RateLimiter(max_principals=3, monotonic=clock)
    for who in ("a", "b", "c"):
        assert admitted(limiter, who, 1, 2) == 2
    assert admitted(limiter, "a", 1, 1) == 0  # a refused, but touched: b is now the oldest
    assert admitted(limiter, "d", 1, 1) == 1
    assert len(limiter) == 3
    assert admitted(limiter, "c", 1, 1) == 0  # c kept its (empty) bucket
    assert admitted(limiter, "b", 1, 2) == 2  # b was evicted and starts full


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_invalid_rates_are_programming_errors(rate: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter().check("x", rate)
