"""The vault's periodic system jobs (expiry, attestation, checkpoints, verification, pruning,
paging, the SIEM sink, identity reloads) and the loop that runs each one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from vault_server.custody import ScheduledAttestation
from vault_server.observability.logging import get_logger
from vault_server.rpc.runner import BlockingRunner

if TYPE_CHECKING:
    from vault_server.app._vault import VaultApp

_log = get_logger("pipvault.app")


async def every(
    run: BlockingRunner, seconds: float, job: Callable[[], object], *, delay: bool = False
) -> None:
    """Run a system job periodically (``delay``: the first run one period after start);
    failures are retried next period. The first failure is logged with its traceback,
    rendered off the event loop (a long traceback must not stall health checks during an
    outage); repeats are one line until the job recovers."""
    name = getattr(job, "__name__", "job")
    failing = False
    if delay:
        await asyncio.sleep(seconds)
    while True:
        try:
            await run(job)
            if failing:
                failing = False
                _log.info("job.recovered", job=name)
        except Exception as exc:
            if failing:
                _log.warning("job.still_failing", job=name, error=type(exc).__name__)
            else:
                failing = True
                await asyncio.to_thread(_log.error, "job.failed", job=name, exc_info=exc)
        await asyncio.sleep(seconds)


def system_jobs(app: VaultApp) -> list[Coroutine[Any, Any, None]]:
    """Every periodic job the settings turn on, as coroutines to run as tasks."""
    settings, run = app.settings, app.run
    audit_cfg, paging_cfg = settings.audit, settings.paging
    jobs = [
        app.readiness_watch.loop(),
        every(run, 60.0, app.lifecycle.destroy_expired),
        every(run, audit_cfg.checkpoint_interval_s, app.checkpointer.tick),
        every(run, 3600.0, lambda: app.outbox.prune(paging_cfg.outbox_retention_s)),
    ]
    if settings.signing.attestation_interval_s > 0:
        scheduled = ScheduledAttestation(
            app.db, app.attestor, coinbase_strict=settings.signing.coinbase_strict
        )
        jobs.append(every(run, settings.signing.attestation_interval_s, scheduled.run))
    if audit_cfg.verify_interval_s > 0:  # the first run one interval after start
        verify = app.scheduled_verification.verify_audit_log
        jobs.append(every(run, audit_cfg.verify_interval_s, verify, delay=True))
    if app.pager_sender is not None:
        jobs.append(app.pager_sender.run_forever(paging_cfg.sender_interval_s))
    if app.event_sink is not None:
        jobs.append(every(run, audit_cfg.event_sink_interval_s, app.event_sink.tick))
    if settings.identity.reload_interval_s > 0:
        jobs.append(every(run, settings.identity.reload_interval_s, app.reload_identity))
    return jobs
