"""Injected time and randomness, so domain code is deterministic under test."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time source (UTC)."""

    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A settable clock for tests."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start
        self._mono = 0.0

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)
        self._mono += seconds


class Random(Protocol):
    """Source of cryptographically strong random bytes."""

    def bytes(self, n: int) -> bytes: ...


class SystemRandom:
    """``os.urandom``: the only randomness used for keys and nonces in production."""

    def bytes(self, n: int) -> bytes:
        return os.urandom(n)


def to_millis(moment: dt.datetime) -> int:
    """Milliseconds since the Unix epoch for an aware datetime."""
    return int(moment.timestamp() * 1000)
