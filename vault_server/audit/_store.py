"""The audit chains as stored: which chains a transaction may see, their heads, and bounded
fetches of their events inside one read-only snapshot (see ``_reader`` for the ordering rules the
readers and streams build on)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from vault_server.audit._log import SYSTEM_CHAIN
from vault_server.audit._query import AuditQuery
from vault_server.core.errors import NotFound
from vault_server.domain import workspace_name
from vault_server.storage.database import Database
from vault_server.storage.models import AuditChainHead, AuditEvent
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace, scope_connection

READ_TIMEOUT_S = 10.0


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
