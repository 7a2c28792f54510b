"""Reading the audit log: the chains a caller may see, filtered lists with page tokens, and
streams that follow new events.

On PostgreSQL a workspace's audit rows are visible only while the transaction is bound to it
(RLS), so a fetch binds each chain's workspace in turn, all inside one read-only snapshot
(REPEATABLE READ; on SQLite one read transaction is one snapshot). No transaction is ever held
while a caller consumes rows: a stream fetches a bounded batch, returns it, and fetches again only
when asked, so a slow or stalled consumer holds no lock and cannot delay writers.

Order is the log's insertion order (``id``). Within a chain ``id`` follows ``seq`` (appends hold
the chain head lock), so per-chain ``id`` cursors never skip an event even when transactions of
different chains commit out of ``id`` order; a following stream keeps one cursor per chain. Each
poll of a following stream reads the workspace directory and every chain in the same snapshot, so
a workspace created since the last poll is followed from its first event on, merged in ``id``
order with the events read beside it: events committed one after another reach the follower in
that order, whichever chains they are on.

Reads are audited once per call (``audit.list``, ``audit.stream``), never per event returned.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select

from vault_server.audit._log import AuditLog, AuditRecord
from vault_server.audit._query import AuditQuery
from vault_server.audit._store import READ_TIMEOUT_S, SYSTEM, Chain, ChainStore
from vault_server.core.errors import InvalidArgument, InvalidPageToken, NotFound
from vault_server.domain import (
    CallContext,
    PageTokens,
    workspace_name,
)
from vault_server.storage.database import Database
from vault_server.storage.models import AuditEvent

MAX_RESUME = 1000


@dataclass
class _Merge:
    """K-way merge of per-chain, id-ordered fetches into one id-ordered sequence."""

    store: ChainStore
    query: AuditQuery
    chunk: int
    ctx: CallContext
    cursor: dict[str, int] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    buf: dict[str, deque[AuditEvent]] = field(default_factory=dict)
    more: dict[str, bool] = field(default_factory=dict)

    #: Following every chain the caller's grant covers (no workspace filter): each poll also
    #: looks for workspaces created since, in the snapshot it reads the chains in.
    grant: frozenset[str] | None = None
    rediscover: bool = False
    _poll_pending: bool = field(default=False, init=False)

    def add(self, chain: Chain, after: int) -> None:
        if chain.id not in self.chains:
            self.chains[chain.id] = chain
            self.cursor[chain.id], self.buf[chain.id], self.more[chain.id] = after, deque(), True

    def rearm(self) -> None:
        """Caught up: every chain, and any workspace created since, may have new rows by the
        next poll."""
        self.more = dict.fromkeys(self.more, True)
        self._poll_pending = self.rediscover

    def take(self, n: int) -> list[AuditEvent]:
        out: list[AuditEvent] = []
        while len(out) < n:
            self._refill()
            live = [k for k, b in self.buf.items() if b]
            if not live:
                break
            k = min(live, key=lambda key: self.buf[key][0].id)
            out.append(self.buf[k].popleft())
        return out

    def _refill(self) -> None:
        need = [self.chains[k] for k, b in self.buf.items() if not b and self.more[k]]
        poll, self._poll_pending = self._poll_pending, False
        if not need and not poll:
            return
        left = self.ctx.remaining()
        timeout = READ_TIMEOUT_S if left is None else max(0.05, min(left, READ_TIMEOUT_S))
        got = self.store.fetch(
            need, self.cursor, self.query, self.chunk, timeout,
            discover=poll, grant=self.grant, known=frozenset(self.chains),
        )  # fmt: skip
        for c in got.found:  # a workspace created since: all of its chain is new
            self.add(c, 0)
        for c in (*need, *got.found):
            rows = got.rows[c.id]
            self.buf[c.id].extend(rows)
            self.more[c.id] = len(rows) == self.chunk
            if rows:
                self.cursor[c.id] = rows[-1].id


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_page_token: str


class AuditStream:
    """Backlog, then (``follow``) new events, one bounded batch per ``next_batch()`` call."""

    def __init__(
        self, reader: AuditReader, ctx: CallContext, merge: _Merge, *, follow: bool,
        rediscover: bool,
    ) -> None:  # fmt: skip
        self._reader, self._ctx, self._merge = reader, ctx, merge
        self.follow = follow
        self.poll_interval_s = reader.poll_interval_s
        merge.grant, merge.rediscover = ctx.workspaces, follow and rediscover
        if merge.rediscover:
            merge.rearm()  # the first fetch looks for workspaces created since the chains were read

    def next_batch(self) -> list[AuditEvent]:
        """Up to one batch in insertion order; ``[]`` when caught up (then poll again later:
        the next call reads every chain, and looks for new workspaces, in one snapshot)."""
        rows = self._merge.take(self._reader.batch_size)
        if len(rows) < self._reader.batch_size and self.follow:
            self._merge.rearm()
        return rows


class AuditReader:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        pages: PageTokens,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.store = ChainStore(db)
        self._audit = audit
        self._pages = pages
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s

    def list_events(
        self, ctx: CallContext, query: AuditQuery, page_size: int, token: str
    ) -> AuditPage:
        size = self._pages.page_size(page_size)
        ws = query.workspace_id()
        params = {"rpc": "ListAuditEvents", "scope": sorted(ctx.workspaces or ["*"])}
        params.update(query.params())
        after = self._pages.resume(token, params)
        if after is not None and (type(after) is not int or after < 0):
            raise InvalidPageToken("page_token is not valid for this request")
        chains = self.visible(ctx, ws)
        self.record(ctx, "audit.list", chains if ws else [], query.params())
        merge = _Merge(self.store, query, min(size + 1, self.batch_size), ctx)
        for chain in chains:
            merge.add(chain, after or 0)
        rows = merge.take(size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return AuditPage(rows, self._pages.issue(rows[-1].id, params) if more else "")

    def open_stream(
        self,
        ctx: CallContext,
        query: AuditQuery,
        follow: bool,
        resume_after: Sequence[str] = (),
    ) -> AuditStream:
        ws = query.workspace_id()
        chains = self.visible(ctx, ws)
        cursors = self.resume_cursors(chains, resume_after)
        details = {**query.params(), "follow": "true" if follow else "false"}
        if resume_after:
            details["resumed_chains"] = str(len(cursors))
        self.record(ctx, "audit.stream", chains if ws else [], details)
        merge = _Merge(self.store, query, self.batch_size, ctx)
        for chain in chains:
            merge.add(chain, cursors.get(chain.id, 0))
        return AuditStream(self, ctx, merge, follow=follow, rediscover=ws is None)

    def resume_cursors(self, chains: Sequence[Chain], names: Sequence[str]) -> dict[str, int]:
        """Per-chain ``id`` cursors just after each named event (``resume_after``)."""
        if len(names) > MAX_RESUME:
            raise InvalidArgument("resume_after", f"at most {MAX_RESUME} event names")
        by_name = {c.name: c for c in chains}
        cursors: dict[str, int] = {}
        for name in names:
            prefix, sep, seq = name.rpartition("/auditEvents/")
            if not sep or not seq.isdigit() or int(seq) < 1 or len(name) > 300:
                raise InvalidArgument("resume_after", "an audit event name, .../auditEvents/{n}")
            chain = by_name.get(prefix)
            if chain is None:
                raise NotFound(name)
            if chain.id in cursors:
                raise InvalidArgument("resume_after", "at most one event per chain")
            with self.store.txn(chain) as s:
                row_id = s.scalar(
                    select(func.min(AuditEvent.id)).where(
                        AuditEvent.chain_id == chain.id, AuditEvent.seq == int(seq)
                    )
                )
            if row_id is None:
                raise NotFound(name)
            cursors[chain.id] = int(row_id)
        return cursors

    def visible(self, ctx: CallContext, ws: str | None) -> list[Chain]:
        if ws is not None and not ctx.may_see(ws):
            raise NotFound(workspace_name(ws))
        return self.store.chains(ctx.workspaces, only=ws)

    def record(
        self, ctx: CallContext, action: str, chains: list[Chain], details: dict[str, str]
    ) -> None:
        """One event per read call: in the workspace's chain when the call names exactly one
        workspace, else in the system chain. It commits before any row is returned."""
        chain = chains[0] if len(chains) == 1 and chains[0].workspace_id else SYSTEM
        with self.store.txn(chain, ctx.remaining(), read_only=False) as s:
            record = AuditRecord(
                action=action,
                workspace_id=chain.workspace_id,
                workspace=chain.name if chain.workspace_id else "",
                details=details,
            )
            self._audit.append(s, ctx, record)
