"""Online, resumable rewrapping of data keys: KEK rotation and provider migration.

Every envelope's wrapped DEK is rewrapped to the target (provider, active KEK version): the
credential versions, then the venue sessions, workspace after workspace, then the platform
applications (a small global pass). A run walks these *stretches* (one kind of one workspace
each) in that order, in batches of ``batch_size`` keys (a batch may span several small
stretches), with two short transactions per batch instead of one per key: one reads the
batch (only the columns needed, in keyset order from where the previous batch ended), the
other stores it by compare-and-set with one ``executemany`` per stretch and bumps the cache
epoch of every workspace that changed. Wraps are counted against the KEK's usage limit before they
happen, ``batch_size`` at a time (``KeyManager.reserve_wraps``, in the read transaction,
committed before any wrap; a reservation carries over to the next batch until used up); what is
left unused at the end is given back. Only the wrapped key changes: the data ciphertext and the
secret are never touched or seen. A row is replaced by compare-and-set on its old envelope, so a
concurrent rotation, revocation or session renewal (a new envelope) wins; ``kill -9`` at any
point leaves every row either fully old or fully new, and a rerun picks up exactly the rows still
to do. Signing is never blocked: each batch holds the write lock for milliseconds.

Two kinds of run, never mixed (issue 19 §3): a **rotation** of provider P moves only the keys P
already wraps, from older KEK versions to its active one, and leaves every other provider's keys
where they are; a **migration** to provider T moves the keys other providers wrap onto T (and
leaves T's own older versions to T's rotation). Only a migration changes a key's provider, and it
is audited as one (``key.migrate``: from, to, count).

"Done" for a rotation means under P at the KEK version that was active when the run started, or a
newer one: when the wrap limit rotates the KEK in the middle of a run, the keys already rewrapped
stay where they are (their version is decrypt_only, still readable) and the rest go to the new
version, so a run always ends. "Done" for a migration means under T at any version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from vault_server.audit import AuditLog, AuditRecord
from vault_server.core.errors import VaultError
from vault_server.crypto.providers.base import KeyProvider
from vault_server.domain import CallContext
from vault_server.keys._bindings import binding_of
from vault_server.keys._manager import KeyManager
from vault_server.storage import invalidation
from vault_server.storage.database import Database
from vault_server.storage.repositories import rewrap as rewrap_repo
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.repositories.rewrap import PendingKey, Replacement

#: Keys per batch for a KEK rotation: storing 500 takes a few milliseconds of the write lock.
DEFAULT_BATCH = 500
#: Stretches (one kind of one workspace) one transaction reads at most (a statement each), so a
#: batch over many tiny workspaces holds the write lock no longer than one over a few large ones.
WORKSPACES_PER_TRANSACTION = 50


@dataclass(frozen=True)
class Progress:
    total: int
    migrated: int
    done: bool

    @property
    def remaining(self) -> int:
        return self.total - self.migrated


@dataclass
class _Wraps:
    """Wraps counted in advance (``KeyManager.reserve_wraps``) and not used yet."""

    version: int = 0  # the KEK version they were counted against
    left: int = 0
    unused: dict[int, int] = field(default_factory=dict)  # per version, given back at the end

    def drop(self) -> None:
        """The provider no longer wraps with ``version``: what is left of it is unused."""
        if self.left:
            self.unused[self.version] = self.unused.get(self.version, 0) + self.left
        self.left = 0


@dataclass
class _Cursor:
    """Where the next batch starts: the ``index``-th stretch, after keyset position ``after``."""

    index: int = 0
    after: tuple[str, int] = ("", 0)


#: One stretch of a run: a kind of envelope (``rewrap_repo`` kinds) in one workspace (``GLOBAL``
#: for a global table).
_Stretch = tuple[str, str]


def _stretches(workspaces: list[str]) -> list[_Stretch]:
    """Tenant tables workspace after workspace (credential versions first), then the global
    tables once."""
    tenant = [(kind, ws) for kind in rewrap_repo.TENANT_KINDS for ws in workspaces]
    return tenant + [(kind, rewrap_repo.GLOBAL) for kind in rewrap_repo.GLOBAL_KINDS]


@dataclass(frozen=True)
class _Claim:
    """A batch read (possibly across workspaces), every key of it with a wrap reserved."""

    rows: list[tuple[int, PendingKey]]  # (stretch index, key), in cursor order
    kek_version: int  # the version the wraps were counted against
    skipped_to: _Cursor | None = None  # no rows: where to go on reading (None: nothing left)
    refused: VaultError | None = None  # the reservation failed: nothing may be wrapped


@dataclass(frozen=True)
class _Scope:
    """What a run moves: a rotation (the target's own keys under a KEK version older than
    ``version``) or a migration (every other provider's keys)."""

    target: KeyProvider
    version: int  # the target's active KEK version when the run started
    migration: bool


class Rewrapper:
    def __init__(self, db: Database, audit: AuditLog, keys: KeyManager) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys

    def _claim(
        self,
        stretches: list[_Stretch],
        cursor: _Cursor,
        scope: _Scope,
        limit: int,
        wraps: _Wraps,
    ) -> _Claim:
        """Read the next ``limit`` keys from the cursor on, stretch after stretch, and, when
        the reserved wraps are used up, reserve ``limit`` more, all in ONE short transaction. A
        batch never uses more wraps than are left (the KEK version's limit caps a reservation;
        the next one rotates first)."""
        rows: list[tuple[int, PendingKey]] = []
        reserved: tuple[int, int] | None = None
        try:
            with self._db.transaction() as session:
                conn = session.connection()
                index, after = cursor.index, cursor.after
                stop = min(len(stretches), index + WORKSPACES_PER_TRANSACTION)
                while index < stop and len(rows) < limit:
                    kind, ws = stretches[index]
                    rewrap_repo.bind(conn, ws)
                    want = limit - len(rows)
                    got = rewrap_repo.pending(
                        conn,
                        ws,
                        scope.target.provider_id,
                        scope.version,
                        migration=scope.migration,
                        after=after,
                        limit=want,
                        kind=kind,
                    )
                    rows.extend((index, key) for key in got)
                    if len(got) < want:
                        index, after = index + 1, ("", 0)
                if not rows:
                    return _Claim([], 0, _Cursor(index, after))
                if wraps.left == 0:
                    reserved = self._keys.reserve_wraps(session, scope.target, limit)
        except VaultError as exc:
            if not rows:
                raise  # reading failed: not a per-key failure
            return _Claim(rows, 0, refused=exc)  # rolled back: nothing was counted
        if reserved is not None:  # committed
            wraps.version, wraps.left = reserved
        take = min(len(rows), wraps.left)
        wraps.left -= take
        return _Claim(rows[:take], wraps.version)

    def _store_batch(self, batch: list[Replacement]) -> int:
        """Replace a batch of envelopes in ONE transaction, by compare-and-set, with one
        ``executemany`` per workspace; bumps the cache epoch of every workspace that changed
        (cached signing states hold the old envelopes; the platform's global rows have no
        workspace epoch). Returns how many rows changed."""
        if not batch:
            return 0
        with self._db.transaction() as session:
            changed = rewrap_repo.replace(session.connection(), batch)
            tenants = [ws for ws in changed if ws != rewrap_repo.GLOBAL]
            if tenants:
                invalidation.bump(session, tenants)
        return sum(changed.values())

    def _count(self, scope: _Scope) -> tuple[int, int]:
        """(live ciphertexts in scope, those already done): a rotation counts the provider's own
        keys, done at ``scope.version`` or newer; a migration counts every key, done when under
        the target at any version."""
        census = self._keys.census()
        pid = scope.target.provider_id
        if scope.migration:
            return sum(census.values()), sum(n for (p, _v), n in census.items() if p == pid)
        mine = {v: n for (p, v), n in census.items() if p == pid}
        return sum(mine.values()), sum(n for v, n in mine.items() if v >= scope.version)

    def _rewrap_batch(
        self, claim: _Claim, target: KeyProvider
    ) -> tuple[list[Replacement], int, int]:
        """Rewrap a claimed batch (one provider call per key: remote providers have no batch
        API). Returns the replacements, the failures and how many keys were handled; it stops
        early when the provider wrapped with another KEK version than the one counted (another
        replica rotated it), so the rest is counted again against the new version."""
        batch: list[Replacement] = []
        failures = 0
        handled = 0
        for _index, key in claim.rows:
            handled += 1
            try:
                sealed = self._keys.rewrap_reserved(key.envelope, binding_of(key), target)
            except VaultError:
                failures += 1
                continue
            batch.append(
                Replacement(
                    key.workspace_id,
                    key.row_id,
                    key.envelope,
                    sealed.blob,
                    sealed.provider_id,
                    sealed.kek_version,
                    key.kind,
                    key.row_no,
                )
            )
            if sealed.kek_version != claim.kek_version:
                break
        return batch, failures, handled

    def rotation(
        self, ctx: CallContext, provider_id: str = "", batch_size: int = DEFAULT_BATCH
    ) -> Iterator[Progress]:
        """Rewrap the keys ``provider_id`` wraps under an older KEK version to its active one
        (after ``KeyManager.rotate``); other providers' keys are not touched. Audited as
        ``key.rewrap``."""
        target = self._keys.provider(provider_id)
        scope = _Scope(target, target.active_version(), False)
        return self._run(ctx, scope, batch_size, [target.provider_id])

    def migration(
        self, ctx: CallContext, target_id: str, batch_size: int = DEFAULT_BATCH
    ) -> Iterator[Progress]:
        """Move the keys every other provider wraps onto ``target_id``'s active KEK version.
        Audited as ``key.migrate`` when it starts and when it ends (from, to, count)."""
        target = self._keys.provider(target_id)
        scope = _Scope(target, target.active_version(), True)
        sources = self._sources(scope)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="key.migrate",
                    details={
                        "stage": "started",
                        "from": ",".join(sources) or "-",
                        "to": f"{target.provider_id}:{scope.version}",
                    },
                ),
            )
        return self._run(ctx, scope, batch_size, sources)

    def _sources(self, scope: _Scope) -> list[str]:
        """The providers that wrap live keys a migration would move."""
        census = self._keys.census()
        return sorted({p for (p, _v), n in census.items() if n and p != scope.target.provider_id})

    def _run(
        self, ctx: CallContext, scope: _Scope, batch_size: int, sources: list[str]
    ) -> Iterator[Progress]:
        """Rewrap everything in ``scope``, yielding progress per batch.

        Every key still to do is tried once per run (keyset order), so a key that fails (its
        provider is down, its envelope does not authenticate) is counted once and left for a
        rerun; a run always ends."""
        target = scope.target
        limit = max(1, batch_size)
        total, migrated = self._count(scope)
        yield Progress(total, migrated, total == migrated)
        with self._db.transaction() as session:
            stretches = _stretches([uid for uid, _rid in ws_repo.all_ids(session)])
        failures = moved = 0
        wraps = _Wraps()
        cursor = _Cursor()
        while True:
            claim = self._claim(stretches, cursor, scope, limit, wraps)
            if not claim.rows:
                if claim.skipped_to is None or claim.skipped_to.index >= len(stretches):
                    break
                cursor = claim.skipped_to  # only finished stretches in that run of them
                continue
            if claim.refused is not None:
                # e.g. this replica's keyring is behind: nothing can be wrapped, report it
                failures += len(claim.rows)
                last_index, last = claim.rows[-1]
                cursor = _Cursor(last_index, last.position)
                continue
            batch, failed, handled = self._rewrap_batch(claim, target)
            failures += failed
            last_index, last = claim.rows[handled - 1]
            cursor = _Cursor(last_index, last.position)
            if handled < len(claim.rows):  # the KEK rotated elsewhere: count the rest again
                wraps.left += len(claim.rows) - handled
                wraps.drop()
            stored = self._store_batch(batch)
            moved += stored
            migrated += stored
            yield Progress(total, migrated, False)
        wraps.drop()
        total, migrated = self._count(scope)
        to = f"{target.provider_id}:{scope.version}"
        counts = {
            "total": str(total),
            "migrated": str(migrated),
            "failed": str(failures),
            "count": str(moved),
        }
        if scope.migration:
            record = AuditRecord(
                action="key.migrate",
                details={"stage": "finished", "from": ",".join(sources) or "-", "to": to, **counts},
            )
        else:
            record = AuditRecord(
                action="key.rewrap",
                details={"target": to, "from": f"{target.provider_id}:<{scope.version}", **counts},
            )
        with self._db.transaction() as session:
            for kek_version, n in sorted(wraps.unused.items()):
                self._keys.release_wraps(session, target.provider_id, kek_version, n)
            self._audit.append(session, ctx, record)
        yield Progress(total, migrated, total == migrated)
