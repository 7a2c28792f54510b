"""Readiness as the running vault applies it (the decision itself is ``vault_server.health``):
the periodic check, an immediate re-check when audit writes cross
``audit.failures_before_not_serving``, health and metrics updated, one log line per transition;
and the group committer's accounting that feeds it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from vault_server.audit import AuditLog, AuditRecord
from vault_server.config import Settings
from vault_server.core.errors import VaultError
from vault_server.domain import system_context
from vault_server.health import COMPONENTS, ReadinessCheck, ReadinessReport
from vault_server.keys import KeyManager
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics
from vault_server.paging import SqlOutbox
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.server import VaultServers
from vault_server.storage.database import Database
from vault_server.storage.group_commit import BatchReport

_log = get_logger("pipvault.app")


class ReadinessWatch:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database,
        keys: KeyManager,
        audit: AuditLog,
        metrics: Metrics,
        run: BlockingRunner,
        outbox: SqlOutbox,
        cache_signs_without_kms: bool,
        servers: Callable[[], VaultServers | None],
    ) -> None:
        self._settings = settings
        self._db = db
        self._audit = audit
        self._metrics = metrics
        self._run = run
        self._outbox = outbox
        self._servers = servers
        self.ready = False
        self._last = ReadinessReport(False, frozenset(), ())
        self._tasks: set[asyncio.Task[None]] = set()
        self.check = ReadinessCheck(
            db,
            keys,
            audit_failures=lambda: audit.consecutive_failures,
            audit_failures_before_not_serving=settings.audit.failures_before_not_serving,
            cache_signs_without_kms=cache_signs_without_kms,
            audit_probe=self._probe_audit,
        )

    def _probe_audit(self) -> None:
        """While audit writes are failing: one system-chain event, ``audit.write_recovered``,
        in its own transaction. It commits only when writes work again (and then says, in the
        audit itself, how many writes had failed); if it fails it counts as one more."""
        failed = self._audit.consecutive_failures
        ctx = system_context("audit writes were failing: probing", method="readiness")
        record = AuditRecord("audit.write_recovered", details={"failed_writes": str(failed)})
        try:
            with self._db.transaction(timeout_s=2.0) as session:
                self._audit.append(session, ctx, record)
        except VaultError:
            _log.warning("audit.probe_failed", failed_writes=failed)

    def batch_done(self, report: BatchReport) -> None:
        """Group-commit accounting: metrics, and audit health for readiness."""
        self._metrics.audit_batch_size.observe(report.size)
        for wait in report.waits:
            self._metrics.audit_write_seconds.observe(wait)
        if report.attempts > 1:
            self._metrics.audit_batch_retries.inc(report.attempts - 1)
        if report.ok:
            self._audit.write_durable()
        else:
            self._audit.write_failed()
            self._metrics.audit_failures.inc()
            _log.warning("audit.batch_failed", size=report.size)

    def _report(self) -> ReadinessReport:
        report = self.check.check()
        try:
            self._metrics.pager_backlog.set(self._outbox.pending())
        except Exception:
            _log.warning("pager.backlog_unknown")
        return report

    async def check_now(self) -> None:
        report = await self._run(self._report)
        self._log_transitions(self._last, report)
        self._last = report
        servers = self._servers()
        if report.ready != self.ready and servers is not None:
            await servers.set_serving(report.ready)
            self._metrics.ready.set(1 if report.ready else 0)
            if report.ready:
                _log.info("vault.readiness", serving=True)
            else:
                _log.warning("vault.readiness", serving=False)
        self.ready = report.ready

    def _log_transitions(self, old: ReadinessReport, new: ReadinessReport) -> None:
        """One log line per change, never one per check."""
        for component in COMPONENTS:
            was, now = component in old.degraded, component in new.degraded
            self._metrics.degraded.labels(component).set(1 if now else 0)
            if now and not was:
                _log.warning("vault.degraded", component=component, serving=new.ready)
            elif was and not now:
                _log.info("vault.recovered", component=component)
        for problem in new.problems:
            if problem not in old.problems:
                _log.error("vault.not_ready", problem=problem)

    def watch_audit_health(self, loop: asyncio.AbstractEventLoop) -> None:
        """Re-check readiness the moment audit writes start failing past
        ``audit.failures_before_not_serving`` (or recover), not at the next periodic check:
        a replica that cannot make audit events durable leaves the load balancer at once."""

        def recheck() -> None:
            task = loop.create_task(self.check_now())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        def alarm() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
                loop.call_soon_threadsafe(recheck)

        self._audit.alarm_at = self._settings.audit.failures_before_not_serving
        self._audit.alarm = alarm

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.readiness_interval_s)
            try:
                await self.check_now()
            except Exception as exc:
                await asyncio.to_thread(_log.error, "vault.readiness_check_failed", exc_info=exc)

    def stop(self) -> None:
        self.ready = False
        self._audit.alarm = None
        for task in list(self._tasks):
            task.cancel()
