"""Verifies the audit hash chains, chain by chain, in bounded batches; names the first bad event.

Per chain (rows in ``(seq, id)`` order):

- ``sequence_gap``: a seq is missing (a deleted row); the missing event is named.
- ``reordered``: rows sit out of insertion order (``id`` does not grow with ``seq``), or a row's
  content verifies only at another position of the chain.
- ``hash_mismatch``: the keyed hash does not match the row (a modified field), or a row differs
  from the signed checkpoint.
- ``inserted``: a row that is not in the chain: the next row verifies as if it were absent, it
  lies beyond the chain head, or it repeats a sequence number.
- ``broken_link``: ``prev_hash`` does not name the previous row's hash.
- ``truncated``: the chain ends before its head row or the latest signed checkpoint says it does.
- ``head_mismatch``: the head row disagrees with the last event.

An attacker without the chain key cannot forge a row; truncation (and a rewrite by someone with
the key) needs the checkpoints exported outside the database (``audit_checkpoints``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import inspect

from vault_server.audit._checkpoints import CheckpointHead, CheckpointLog
from vault_server.audit._log import GENESIS, SYSTEM_CHAIN, chain_hash
from vault_server.audit._reader import AuditReader
from vault_server.audit._store import SYSTEM, Chain, ChainStore, Head
from vault_server.domain import CallContext, parse_workspace, workspace_of_name
from vault_server.storage.models import AuditEvent

_COLUMNS = tuple(a.key for a in inspect(AuditEvent).column_attrs)


@dataclass(frozen=True)
class Finding:
    event: str  # resource name of the first bad event (or `{checkpoints file}:{line}`)
    problem: str
    detail: str = ""
    chain_id: str = ""  # the chain's id ("" for a checkpoints line)
    seq: int = 0  # the first bad event's sequence number (the line number for a checkpoint)


@dataclass(frozen=True)
class ChainReport:
    chain: Chain
    events: int
    last_seq: int
    finding: Finding | None


@dataclass(frozen=True)
class VerifyResult:
    chains: list[ChainReport]
    checkpoints: CheckpointLog | None = None
    checkpoint_findings: list[Finding] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        found = [r.finding for r in self.chains if r.finding is not None]
        return found + self.checkpoint_findings

    @property
    def intact(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        found = self.findings
        return found[0] if found else None

    @property
    def events_checked(self) -> int:
        return sum(r.events for r in self.chains)


def _at_seq(row: AuditEvent, seq: int) -> AuditEvent:
    copy = AuditEvent(**{k: getattr(row, k) for k in _COLUMNS})
    copy.seq = seq
    return copy


class ChainVerifier:
    """Pure: fed one chain's rows in ``(seq, id)`` order, stops at the first bad event."""

    def __init__(
        self, key: bytes, chain: Chain, *, checkpoint: CheckpointHead | None = None,
        window: int = 64,
    ) -> None:  # fmt: skip
        self._key, self.chain, self._cp, self._window = key, chain, checkpoint, window
        self.next_seq, self.prev_hash, self._last_id, self.events = 1, GENESIS, 0, 0
        self._suspect: AuditEvent | None = None  # failed its hash; judged by the next row
        self.finding: Finding | None = None

    def _fail(self, seq: int, problem: str, detail: str = "") -> None:
        self.finding = Finding(self.chain.event(seq), problem, detail, self.chain.id, seq)

    def _verifies(self, row: AuditEvent, seq: int | None = None) -> bool:
        probe = row if seq is None or seq == row.seq else _at_seq(row, seq)
        return chain_hash(self._key, probe) == row.hash

    def feed(self, row: AuditEvent) -> bool:
        """False once the chain has a finding (later rows change nothing)."""
        if self.finding is not None:
            return False
        if self._suspect is not None:
            self._judge(self._suspect, row, None)
            return False
        self.events += 1
        if row.seq < self.next_seq:
            self._fail(row.seq, "inserted", "a second event claims this sequence number")
        elif row.seq > self.next_seq:
            self._fail(self.next_seq, "sequence_gap", f"the next event present is {row.seq}")
        elif row.id <= self._last_id:
            self._fail(row.seq, "reordered", "stored before the event that precedes it")
        elif not self._verifies(row):
            moved = self._moved(row)
            if moved is not None:
                self._fail(row.seq, "reordered", f"its content belongs at sequence {moved}")
            else:
                self._suspect = row
                return True
        elif row.prev_hash != self.prev_hash:
            self._fail(row.seq, "broken_link", "prev_hash does not name the previous event")
        elif self._cp is not None and row.seq == self._cp.seq and row.hash != self._cp.hash:
            self._fail(row.seq, "hash_mismatch", "differs from the signed checkpoint")
        else:
            self.next_seq, self.prev_hash, self._last_id = row.seq + 1, row.hash, row.id
        return self.finding is None

    def _moved(self, row: AuditEvent) -> int | None:
        for d in range(1, self._window + 1):
            for seq in (row.seq + d, row.seq - d):
                if seq >= 1 and self._verifies(row, seq):
                    return seq
        return None

    def _judge(self, bad: AuditEvent, nxt: AuditEvent | None, head: Head | None) -> None:
        """``bad`` failed its hash: an extra row, or a modified one?"""
        skipped = (
            nxt is not None
            and nxt.seq == bad.seq + 1
            and nxt.prev_hash == bad.prev_hash
            and self._verifies(nxt, bad.seq)
        )
        if skipped or (nxt is None and head is not None and bad.seq > head.seq):
            self._fail(bad.seq, "inserted", "not an event of this chain (forged)")
        else:
            self._fail(bad.seq, "hash_mismatch", "the keyed hash does not match the event")

    def finish(self, head: Head | None) -> ChainReport:
        """Close the chain against its head row (read after the last row) and the checkpoint."""
        if self.finding is None and self._suspect is not None:
            self._judge(self._suspect, None, head)
        last = self.next_seq - 1
        if self.finding is None:
            cp = self._cp
            if cp is not None and cp.seq > last:
                self._fail(last + 1, "truncated", f"the signed checkpoint reaches {cp.seq}")
            elif head is None and last > 0:
                self._fail(last, "head_mismatch", "the chain has no head row")
            elif head is not None and head.seq > last:
                self._fail(last + 1, "truncated", f"the chain head says {head.seq}")
            elif head is not None and head.seq < last:
                self._fail(head.seq + 1, "head_mismatch", f"the chain head says {head.seq}")
            elif head is not None and head.hash != self.prev_hash:
                self._fail(last, "head_mismatch", "the chain head hash differs")
        return ChainReport(self.chain, self.events, last, self.finding)


def verify_chain(
    store: ChainStore, key: bytes, chain: Chain, checkpoint: CheckpointHead | None = None,
    *, batch_size: int = 1000,
) -> ChainReport:  # fmt: skip
    """Stream one chain. The head is read after the rows; rows appended meanwhile are picked up
    (a few rounds), so verifying a live log does not report its newest events as extra."""
    v = ChainVerifier(key, chain, checkpoint=checkpoint)
    after, head = (0, 0), None
    for _ in range(3):
        while v.finding is None:
            rows = store.by_seq(chain, after, batch_size)
            for row in rows:
                after = (row.seq, row.id)
                if not v.feed(row):
                    break
            if len(rows) < batch_size:
                break
        head = store.head(chain)
        if v.finding is not None or head is None or head.seq <= after[0]:
            break
    return v.finish(head)


def verify_chains(
    store: ChainStore, key: bytes, chains: list[Chain], checkpoints: CheckpointLog | None = None,
    *, visible: Callable[[Chain], bool] = lambda _c: True, batch_size: int = 1000,
) -> VerifyResult:  # fmt: skip
    """Every chain in ``chains`` plus any chain the latest checkpoint knows and ``visible``
    allows (a chain deleted outright is then reported as truncated from event 1)."""
    heads: Mapping[str, CheckpointHead] = (
        checkpoints.latest.heads if checkpoints and checkpoints.latest else {}
    )
    todo = list(chains)
    known = {c.id for c in chains}
    for cid, h in sorted(heads.items()):
        name = h.workspace or f"workspaces/{cid}"
        chain = SYSTEM if cid == SYSTEM_CHAIN else Chain(cid, cid, name)
        if cid not in known and visible(chain):
            todo.append(chain)
    reports = [verify_chain(store, key, c, heads.get(c.id), batch_size=batch_size) for c in todo]
    bad_lines = (
        [
            Finding(f"{checkpoints.source}:{n}", "checkpoint_invalid", why, seq=n)
            for n, why in checkpoints.invalid
        ]
        if checkpoints is not None
        else []
    )
    return VerifyResult(reports, checkpoints, bad_lines)


class AuditVerifier:
    """VerifyAuditLog: the same verifier over the chains the caller may see, audited once; a
    break is handed to ``on_broken`` (the composition root pages: ``audit_integrity``)."""

    def __init__(
        self,
        reader: AuditReader,
        chain_key: bytes,
        *,
        checkpoints: Callable[[], CheckpointLog | None] | None = None,
        on_broken: Callable[[VerifyResult], object] | None = None,
        batch_size: int = 1000,
    ) -> None:
        self._reader = reader
        self._key = chain_key
        self._checkpoints = checkpoints
        self._on_broken = on_broken
        self._batch = batch_size

    def verify(self, ctx: CallContext, workspace: str) -> VerifyResult:
        ws = parse_workspace("workspace", workspace) if workspace else None
        chains = self._reader.visible(ctx, ws)
        log = self._checkpoints() if self._checkpoints is not None else None

        def visible(chain: Chain) -> bool:
            if ws is not None:
                return False
            if ctx.workspaces is None:
                return True
            return (workspace_of_name(chain.name) or "") in ctx.workspaces

        result = verify_chains(
            self._reader.store, self._key, chains, log, visible=visible, batch_size=self._batch
        )
        if not result.intact and self._on_broken is not None:
            self._on_broken(result)
        first = result.first
        details = {
            "intact": "true" if result.intact else "false",
            "chainsChecked": str(len(result.chains)),
            "eventsChecked": str(result.events_checked),
        }
        if first is not None:
            details.update(firstBadEvent=first.event, problem=first.problem)
        self._reader.record(ctx, "audit.verify", chains if ws else [], details)
        return result
