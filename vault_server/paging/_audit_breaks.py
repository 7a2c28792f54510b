"""Pages the on-call when the audit log fails verification (issue 19 §4; DESIGN.md §1.4, §6, §7).

Whoever finds a break reports the ``VerifyResult`` here: the periodic verifier
(``ScheduledVerification``), ``VerifyAuditLog``, and ``pipvault audit verify`` when it can write to
the database it verifies. A chain that disagrees with its signed checkpoint is a finding like any
other. Each break (a chain's first bad event, or a bad checkpoints line) becomes one page in the
outbox, delivered by the pager sender like every page (a crash loses none).

The dedup key names the break itself (chain id, seq, problem) and no time bucket, so the same
break found again, by the same or another verifier, in this replica or another, pages nobody
while its page is live; a new break (another chain, or an earlier event of the same chain) pages
again. A page carries identifiers and the verifier's fixed texts only (chain, event name, seq,
problem), never an event's content, a hash key or other secret material.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from vault_server.audit import (
    ChainStore,
    CheckpointLog,
    Finding,
    HeadRegression,
    VerifyResult,
    verify_chains,
)
from vault_server.observability.logging import get_logger
from vault_server.paging._outbox import Pager
from vault_server.storage.database import Database

_log = get_logger(__name__)
_T = TypeVar("_T")

PERIODIC = "periodic"
RPC = "VerifyAuditLog"
CLI = "pipvault audit verify"
CHECKPOINT = "checkpoint"


def dedup_key(finding: Finding) -> str:
    """``pipvault:audit-integrity:{chain id}:{seq}:{problem}`` (a checkpoints line: a digest
    of the file and line instead of the chain), at most 255 characters."""
    if finding.chain_id:
        where = f"{finding.chain_id}:{finding.seq}"
    else:
        where = "checkpoints:" + hashlib.sha256(finding.event.encode()).hexdigest()[:32]
    return f"pipvault:audit-integrity:{where}:{finding.problem}"[:255]


class AuditIntegrityPager:
    """One page per audit-log break, whichever verifier finds it, however often."""

    def __init__(self, db: Database, pager: Pager) -> None:
        self._db = db
        self._pager = pager

    def report(self, result: VerifyResult, found_by: str) -> int:
        """Queue a page for each break of ``result`` not paged yet (one transaction); returns
        how many pages were queued. Raises what the database raises (the caller decides)."""
        return self.report_findings(result.findings, found_by)

    def report_regressions(self, regressions: list[HeadRegression]) -> int:
        """The checkpointer's ``on_regression``: a chain head went back from (or differs at)
        the last signed checkpoint. Named like the verifier names it, so either finding the
        same break pages once."""
        findings = []
        for r in regressions:
            name = r.signed.workspace or "system"
            if r.now is not None and r.now.seq == r.signed.seq:
                seq, problem, why = (
                    r.signed.seq,
                    "hash_mismatch",
                    "differs from the signed checkpoint",
                )
            else:
                seq = (r.now.seq if r.now is not None else 0) + 1
                problem, why = "truncated", f"the signed checkpoint reaches {r.signed.seq}"
            findings.append(Finding(f"{name}/auditEvents/{seq}", problem, why, r.chain_id, seq))
        return self.report_findings(findings, CHECKPOINT)

    def report_findings(self, findings: list[Finding], found_by: str) -> int:
        if not findings:
            return 0
        queued = 0
        with self._db.transaction() as session:
            for f in findings:
                chain = f.event.rsplit("/auditEvents/", 1)[0] if f.chain_id else "checkpoints"
                page = self._pager.page_audit_integrity(
                    session,
                    dedup_key=dedup_key(f),
                    chain=chain,
                    event=f.event,
                    seq=f.seq,
                    problem=f.problem,
                    detail=f.detail,
                    found_by=found_by,
                )
                queued += page is not None
        if queued:
            first = findings[0]
            _log.error(
                "audit.integrity_paged", first_bad_event=first.event, problem=first.problem,
                pages=queued, found_by=found_by,
            )  # fmt: skip
        return queued

    def reporter(self, found_by: str) -> Callable[[VerifyResult], None]:
        """For ``AuditVerifier``: ``report``, logging (never raising) when the page cannot be
        written: the caller still gets its verification result."""
        return _quietly(lambda result: self.report(result, found_by))

    def regression_reporter(self) -> Callable[[list[HeadRegression]], None]:
        """For ``AuditCheckpointer``: ``report_regressions``, never raising (the checkpoint,
        which keeps the signed heads, is written all the same)."""
        return _quietly(self.report_regressions)


def _quietly(report: Callable[[_T], int]) -> Callable[[_T], None]:
    def run(arg: _T) -> None:
        try:
            report(arg)
        except Exception as exc:
            _log.error("audit.integrity_page_failed", error=type(exc).__name__)

    return run


class ScheduledVerification:
    """The periodic verifier: every chain (and the latest signed checkpoint), paging breaks."""

    def __init__(
        self,
        store: ChainStore,
        chain_key: bytes,
        alarm: AuditIntegrityPager,
        *,
        checkpoints: Callable[[], CheckpointLog | None] | None = None,
        batch_size: int = 1000,
    ) -> None:
        self._store = store
        self._key = chain_key
        self._alarm = alarm
        self._checkpoints = checkpoints
        self._batch = batch_size

    def verify_audit_log(self) -> VerifyResult:
        log = self._checkpoints() if self._checkpoints is not None else None
        chains = self._store.chains(None, discover=True)
        result = verify_chains(self._store, self._key, chains, log, batch_size=self._batch)
        if not result.intact:
            self._alarm.report(result, PERIODIC)
        return result
