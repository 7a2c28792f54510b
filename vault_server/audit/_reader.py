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

import contextlib
import datetime as dt
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from vault_server.audit._log import SYSTEM_CHAIN, AuditLog, AuditRecord, Outcome
from vault_server.core.errors import InvalidArgument, InvalidPageToken, NotFound
from vault_server.domain import (
    CallContext,
    PageTokens,
    parse_credential,
    parse_workspace,
    workspace_name,
)
from vault_server.storage.database import Database
from vault_server.storage.models import AuditChainHead, AuditEvent
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace, scope_connection

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?$")
OUTCOMES = frozenset({Outcome.SUCCESS, Outcome.DENIED, Outcome.FAILED})
READ_TIMEOUT_S = 10.0
MAX_RESUME = 1000


@dataclass(frozen=True)
class Chain:
    """One hash chain: a workspace's (``id`` = its UUID) or the ``system`` chain."""

    id: str
    workspace_id: str | None
    name: str  # `workspaces/{ws}` or `system`

    def event(self, seq: int) -> str:
        return f"{self.name}/auditEvents/{seq}"


SYSTEM = Chain(SYSTEM_CHAIN, None, "system")


@dataclass(frozen=True)
class Fetched:
    """One snapshot's rows per chain, and the chains it found that the reader did not know."""

    rows: dict[str, list[AuditEvent]]
    found: list[Chain]


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class AuditQuery:
    """Filters shared by list and stream (empty fields do not filter)."""

    workspace: str = ""
    credential: str = ""
    actor: str = ""
    action: str = ""  # exact, or a prefix ending in `.`
    outcome: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    def workspace_id(self) -> str | None:
        """The one workspace the filters pin down, validated; None for all visible ones."""
        ws = parse_workspace("filter.workspace", self.workspace) if self.workspace else None
        if self.credential:
            cred_ws = parse_credential("filter.credential", self.credential).workspace
            if ws is not None and cred_ws != ws:
                raise InvalidArgument("filter.credential", "must be in filter.workspace")
            ws = cred_ws
        if self.action and (len(self.action) > 64 or not _ACTION.match(self.action)):
            raise InvalidArgument("filter.action", "an action like credential.use or credential.")
        if len(self.actor) > 255:
            raise InvalidArgument("filter.actor", "at most 255 characters")
        if self.outcome and self.outcome not in OUTCOMES:
            raise InvalidArgument("filter.outcome", "unknown outcome")
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise InvalidArgument("filter.end_time", "must be after filter.start_time")
        return ws

    def params(self) -> dict[str, str]:
        """The non-empty filters (page-token binding, audit details)."""
        out: dict[str, str | dt.datetime | None] = {"start": self.start_time, "end": self.end_time}
        out |= {k: getattr(self, k) for k in ("workspace", "credential", "actor", "action")}
        out["outcome"] = self.outcome
        return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in out.items() if v}

    def conditions(self) -> list[ColumnElement[bool]]:
        e, out = AuditEvent, []
        for column, value in ((e.credential, self.credential), (e.actor_id, self.actor),
                              (e.outcome, self.outcome)):  # fmt: skip
            if value:
                out.append(column == value)
        if self.action:
            prefix = self.action.endswith(".")
            out.append(e.action.startswith(self.action, autoescape=True) if prefix
                       else e.action == self.action)  # fmt: skip
        if self.start_time is not None:
            out.append(e.event_time >= self.start_time)
        if self.end_time is not None:
            out.append(e.event_time < self.end_time)
        return out


class ChainStore:
    """Chain-at-a-time access to the audit tables (shared by reader, verifier, checkpoints)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.contextmanager
    def txn(
        self,
        chain: Chain | None,
        timeout_s: float | None = READ_TIMEOUT_S,
        *,
        read_only: bool = True,
    ) -> Iterator[Session]:
        """A short transaction, bound to ``chain``'s workspace on PostgreSQL (RLS). Read-only
        unless told otherwise: on SQLite, streaming and exporting the audit log then never take
        (or wait for) the writer lock the signing path's group committer needs."""
        with self._db.transaction(timeout_s=timeout_s, read_only=read_only) as session:
            if chain is not None and chain.workspace_id and self._db.is_postgres:
                bind_workspace(session, chain.workspace_id)
            yield session

    def chains(
        self, grant: frozenset[str] | None, *, only: str | None = None, discover: bool = False
    ) -> list[Chain]:
        """Chains visible to a caller whose grant is ``grant`` (workspace ids; None: all, and
        then the system chain too). ``only`` narrows to one workspace (NOT_FOUND if invisible or
        missing); ``discover`` adds chains found only in the audit tables (offline verify)."""
        with self.txn(None) as s:
            return self._chains(s, grant, only=only, discover=discover)

    @staticmethod
    def _chains(
        s: Session, grant: frozenset[str] | None, *, only: str | None, discover: bool
    ) -> list[Chain]:
        """``chains`` inside an open transaction bound to no workspace (the directory job)."""
        rows = ws_repo.all_ids(s)
        orphans: dict[str, str] = {}
        if discover and grant is None:
            orphans = dict.fromkeys(s.scalars(select(AuditChainHead.chain_id)), "")
            names = select(AuditEvent.chain_id, func.min(AuditEvent.workspace))
            for c, n in s.execute(names.group_by(AuditEvent.chain_id)):
                orphans[c] = n or ""
        mine = (Chain(w, w, workspace_name(r)) for w, r in rows if grant is None or r in grant)
        visible = sorted(mine, key=lambda c: c.name)
        if only is not None:
            visible = [c for c in visible if c.name == workspace_name(only)]
            if not visible:
                raise NotFound(workspace_name(only))
            return visible
        if grant is None:
            known = {c.id for c in visible} | {SYSTEM_CHAIN}
            extra = [Chain(c, c, n or f"workspaces/{c}") for c, n in sorted(orphans.items())]
            visible = [SYSTEM, *visible, *(c for c in extra if c.id not in known)]
        return visible

    def head(self, chain: Chain) -> Head | None:
        with self.txn(chain) as s:
            stmt = select(AuditChainHead.seq, AuditChainHead.hash)
            row = s.execute(stmt.where(AuditChainHead.chain_id == chain.id)).first()
        return Head(int(row[0]), str(row[1])) if row is not None else None

    def by_seq(self, chain: Chain, after: tuple[int, int], limit: int) -> list[AuditEvent]:
        """Rows in ``(seq, id)`` order after ``after`` (duplicates of a seq stay visible)."""
        seq, rid = after
        later = or_(AuditEvent.seq > seq, and_(AuditEvent.seq == seq, AuditEvent.id > rid))
        stmt = select(AuditEvent).where(AuditEvent.chain_id == chain.id, later)
        with self.txn(chain) as s:
            return list(s.scalars(stmt.order_by(AuditEvent.seq, AuditEvent.id).limit(limit)))

    def by_id(
        self,
        chains: Sequence[Chain],
        after: Mapping[str, int],
        query: AuditQuery,
        limit: int,
        timeout_s: float,
    ) -> dict[str, list[AuditEvent]]:
        """Matching rows of each chain after its cursor, in ``id`` order, ``limit`` per chain,
        all read in one snapshot."""
        return self.fetch(chains, after, query, limit, timeout_s).rows

    def fetch(
        self,
        chains: Sequence[Chain],
        after: Mapping[str, int],
        query: AuditQuery,
        limit: int,
        timeout_s: float,
        *,
        discover: bool = False,
        grant: frozenset[str] | None = None,
        known: frozenset[str] = frozenset(),
    ) -> Fetched:
        """``by_id``; with ``discover`` it first reads, in the same snapshot, the chains
        ``grant`` sees (see ``chains``), and reads those not in ``known`` from their first event
        on (``Fetched.found``)."""
        conds = query.conditions()
        with self._db.transaction(timeout_s=timeout_s, read_only=True, snapshot=True) as s:
            found: list[Chain] = []
            if discover:  # first: the directory is read bound to no workspace
                visible = self._chains(s, grant, only=None, discover=False)
                found = [c for c in visible if c.id not in known]
            cursors = {**after, **{c.id: 0 for c in found}}
            out: dict[str, list[AuditEvent]] = {}
            for c in (*chains, *found):
                if self._db.is_postgres:
                    scope_connection(s.connection(), c.workspace_id)
                stmt = select(AuditEvent).where(
                    AuditEvent.chain_id == c.id, AuditEvent.id > cursors[c.id], *conds
                )
                out[c.id] = list(s.scalars(stmt.order_by(AuditEvent.id).limit(limit)))
        return Fetched(out, found)


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
