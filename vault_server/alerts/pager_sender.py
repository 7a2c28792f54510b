"""Delivers pages from the outbox: claim due rows, send, record the outcome.

All state lives in the outbox table, so a restarted (or ``kill -9``-ed) process simply resumes:
a claimed row carries a lease (its next attempt time is pushed out while it is being sent); if
the sender dies mid-send the lease expires and the row is sent again. Retries back off
exponentially with jitter on 429, 5xx and network errors (honouring ``Retry-After``); any other
4xx gives up and records why. Duplicate rows of one ``dedup_key`` are never sent twice: the store
hands out only the oldest live row of a key and retires the others once it is delivered.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from vault_server.alerts.notifiers import Notifier, Verdict
from vault_server.core.clock import Random
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics

_log = get_logger("pipvault.pager")


@dataclass(frozen=True)
class OutboxItem:
    id: int
    dedup_key: str
    payload: dict[str, Any]
    attempts: int  # including the attempt being made


class OutboxStore(Protocol):
    def claim(self, limit: int, lease_s: float) -> list[OutboxItem]: ...

    def delivered(self, item_id: int) -> None: ...

    def retry(self, item_id: int, delay_s: float, error: str) -> None: ...

    def give_up(self, item_id: int, error: str) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": ``d = min(cap, base * 2^(n-1))``, then a delay
    uniform in ``[d/2, d)`` so retries from many sidecars spread out but never collapse to 0."""

    base_s: float = 1.0
    cap_s: float = 300.0

    def delay(self, attempts: int, jitter: float) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0 ** max(attempts - 1, 0))
        return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    gave_up: int = 0

    @property
    def handled(self) -> int:
        return self.delivered + self.retried + self.gave_up


class PagerSender:
    def __init__(
        self,
        outbox: OutboxStore,
        notifier: Notifier,
        random: Random,
        *,
        backoff: Backoff | None = None,
        batch_size: int = 20,
        lease_s: float = 60.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._outbox = outbox
        self._notifier = notifier
        self._random = random
        self._backoff = backoff or Backoff()
        self._batch = batch_size
        self._lease = lease_s

    def deliver_due(self) -> DeliveryReport:
        """Send every page due now (one claimed batch); blocking, run it off the event loop."""
        delivered = retried = gave_up = 0
        for item in self._outbox.claim(self._batch, self._lease):
            result = self._notifier.send(item.dedup_key, item.payload)
            if result.verdict is Verdict.DELIVERED:
                self._outbox.delivered(item.id)
                delivered += 1
                if self._metrics is not None:
                    self._metrics.pages_delivered.inc()
                _log.info("pager.delivered", outbox_id=item.id, dedup_key=item.dedup_key)
            elif result.verdict is Verdict.RETRY:
                delay = self._backoff.delay(item.attempts, self._jitter())
                if result.retry_after_s is not None:
                    delay = max(delay, result.retry_after_s)
                self._outbox.retry(item.id, delay, result.detail)
                retried += 1
                if self._metrics is not None:
                    self._metrics.pager_delivery_failures.inc()
                _log.warning(
                    "pager.retry",
                    outbox_id=item.id,
                    attempts=item.attempts,
                    detail=result.detail,
                    delay_s=round(delay, 3),
                )
            else:
                self._outbox.give_up(item.id, result.detail)
                gave_up += 1
                if self._metrics is not None:
                    self._metrics.pager_delivery_failures.inc()
                _log.error("pager.gave_up", outbox_id=item.id, detail=result.detail)
        return DeliveryReport(delivered, retried, gave_up)

    def _jitter(self) -> float:
        return int.from_bytes(self._random.bytes(4), "big") / 2**32

    def drain(self, timeout_s: float = 5.0) -> DeliveryReport:
        """Graceful shutdown: deliver what is due now, for at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        total = DeliveryReport()
        while time.monotonic() < deadline:
            report = self.deliver_due()
            total = DeliveryReport(
                total.delivered + report.delivered,
                total.retried + report.retried,
                total.gave_up + report.gave_up,
            )
            if report.handled < self._batch:
                break
        return total

    def close(self) -> None:
        self._notifier.close()

    async def run_forever(self, interval_s: float = 1.0) -> None:
        """Deliver in a worker thread until cancelled; failures are logged and retried."""
        while True:
            try:
                report = await asyncio.to_thread(self.deliver_due)
            except Exception:
                _log.exception("pager.sender_failed")
                report = DeliveryReport()
            if report.handled < self._batch:
                await asyncio.sleep(interval_s)

    def run_until(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """The same loop for a plain thread (or a process that has no event loop)."""
        while not stop.is_set():
            try:
                report = self.deliver_due()
            except Exception:
                _log.exception("pager.sender_failed")
                report = DeliveryReport()
            if report.handled < self._batch:
                stop.wait(interval_s)
