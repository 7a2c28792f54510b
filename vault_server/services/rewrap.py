"""Online, resumable rewrapping of data keys: KEK rotation and provider migration.

Each credential version's wrapped DEK is rewrapped to the target (provider, active KEK version)
in batches, one workspace at a time, with two short transactions per batch instead of one per
key: one reads the batch (only the columns needed, in id order after the previous batch), the
other stores it with one compare-and-set ``executemany`` and bumps the workspace's cache epoch if
a row changed. Wraps are counted against the KEK's usage limit before they happen, ``batch_size``
at a time (``KeyManager.reserve_wraps``, in the read transaction, committed before any wrap; a
reservation carries over to the next workspaces until used up); what is left unused at the end
is given back. Only the wrapped key changes: the data ciphertext and the secret
are never touched or seen. A row is replaced by compare-and-set on its old envelope, so a
concurrent rotation or revocation wins; ``kill -9`` at any point leaves every row either fully
old or fully new, and a rerun picks up exactly the rows still to do. Signing is never blocked:
each batch holds its locks for milliseconds.

"Done" means under the target provider at the KEK version that was active when the run started,
or a newer one: when the wrap limit rotates the KEK in the middle of a run, the keys already
rewrapped stay where they are (their version is decrypt_only, still readable) and the rest go to
the new version, so a run always ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from vault_server.core.errors import VaultError
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.crypto.providers.base import KeyProvider
from vault_server.services.audit_log import AuditLog, AuditRecord
from vault_server.services.call import CallContext
from vault_server.services.keys import KeyManager
from vault_server.storage import invalidation
from vault_server.storage.database import Database
from vault_server.storage.repositories import rewrap as rewrap_repo
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.repositories.rewrap import PendingKey, Replacement
from vault_server.storage.tenant import bind_workspace

#: Keys per batch for a KEK rotation: storing 500 takes a few milliseconds of the write lock.
DEFAULT_BATCH = 500


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


@dataclass(frozen=True)
class _Claim:
    """A batch read from one workspace, every key of it with a wrap reserved."""

    rows: list[PendingKey]
    kek_version: int  # the version the wraps were counted against
    exhausted: bool  # nothing more to do in this workspace after this batch
    refused: VaultError | None = None  # the reservation failed: nothing may be wrapped


class Rewrapper:
    def __init__(self, db: Database, audit: AuditLog, keys: KeyManager) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys

    def _claim(
        self, ws_uid: str, target: KeyProvider, version: int, after: str, limit: int, wraps: _Wraps
    ) -> _Claim:
        """Read the next batch of ``ws_uid`` and, when the reserved wraps are used up, reserve
        ``limit`` more in the same transaction. A batch never uses more wraps than are left
        (the KEK version's limit caps a reservation: the next one rotates first)."""
        rows: list[PendingKey] = []
        reserved: tuple[int, int] | None = None
        try:
            with self._db.transaction() as session:
                bind_workspace(session, ws_uid)
                rows = rewrap_repo.pending(
                    session.connection(), ws_uid, target.provider_id, version,
                    after=after, limit=limit,
                )  # fmt: skip
                if not rows:
                    return _Claim([], 0, exhausted=True)
                if wraps.left == 0:
                    reserved = self._keys.reserve_wraps(session, target, limit)
        except VaultError as exc:
            if not rows:
                raise  # reading failed: not a per-key failure
            return _Claim(rows, 0, exhausted=True, refused=exc)  # rolled back: nothing counted
        if reserved is not None:  # committed
            wraps.version, wraps.left = reserved
        take = min(len(rows), wraps.left)
        wraps.left -= take
        exhausted = len(rows) < limit and take == len(rows)
        return _Claim(rows[:take], wraps.version, exhausted)

    def _store_batch(self, ws_uid: str, batch: list[Replacement]) -> int:
        """Replace a batch of envelopes in ONE transaction with one compare-and-set
        ``executemany``; returns how many rows changed."""
        if not batch:
            return 0
        with self._db.transaction() as session:
            bind_workspace(session, ws_uid)
            changed = rewrap_repo.replace(session.connection(), ws_uid, batch)
            if changed:  # a cached signing state holds the old envelopes
                invalidation.bump(session, [ws_uid])
        return changed

    def _count(self, provider_id: str, version: int) -> tuple[int, int]:
        census = self._keys.census()
        total = sum(census.values())
        done = sum(n for (p, v), n in census.items() if p == provider_id and v >= version)
        return total, done

    def _rewrap_batch(
        self, ws_uid: str, claim: _Claim, target: KeyProvider
    ) -> tuple[list[Replacement], int, int]:
        """Rewrap a claimed batch (one provider call per key: remote providers have no batch
        API). Returns the replacements, the failures and how many keys were handled; it stops
        early when the provider wrapped with another KEK version than the one counted (another
        replica rotated it), so the rest is counted again against the new version."""
        batch: list[Replacement] = []
        failures = 0
        handled = 0
        for row in claim.rows:
            handled += 1
            try:
                binding = EnvelopeBinding(ws_uid, row.credential_id, row.version)
                sealed = self._keys.rewrap_reserved(row.envelope, binding, target)
            except VaultError:
                failures += 1
                continue
            batch.append(
                Replacement(
                    row.row_id, row.envelope, sealed.blob, sealed.provider_id, sealed.kek_version
                )
            )
            if sealed.kek_version != claim.kek_version:
                break
        return batch, failures, handled

    def run(
        self, ctx: CallContext, target_id: str = "", batch_size: int = DEFAULT_BATCH
    ) -> Iterator[Progress]:
        """Rewrap everything to the target's active KEK version, yielding progress per batch."""
        target = self._keys.provider(target_id)
        version = target.active_version()
        limit = max(1, batch_size)
        total, migrated = self._count(target.provider_id, version)
        yield Progress(total, migrated, total == migrated)
        with self._db.transaction() as session:
            workspaces = ws_repo.all_ids(session)
        failures = 0
        wraps = _Wraps()
        for uid, _rid in workspaces:
            after = ""
            while True:
                claim = self._claim(uid, target, version, after, limit, wraps)
                if not claim.rows:
                    break
                if claim.refused is not None:
                    failures += len(claim.rows)
                    break  # e.g. this replica's keyring is behind: report, do not spin
                batch, failed, handled = self._rewrap_batch(uid, claim, target)
                failures += failed
                after = claim.rows[handled - 1].row_id
                if handled < len(claim.rows):  # the KEK rotated elsewhere: count again
                    wraps.left += len(claim.rows) - handled
                    wraps.drop()
                progressed = self._store_batch(uid, batch)
                migrated += progressed
                yield Progress(total, migrated, False)
                if not batch:
                    break  # every key of the batch failed (provider down?): report, do not spin
                if claim.exhausted and handled == len(claim.rows):
                    break
        wraps.drop()
        total, migrated = self._count(target.provider_id, version)
        with self._db.transaction() as session:
            for kek_version, n in sorted(wraps.unused.items()):
                self._keys.release_wraps(session, target.provider_id, kek_version, n)
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="key.rewrap",
                    details={
                        "target": f"{target.provider_id}:{version}",
                        "migrated": str(migrated),
                        "total": str(total),
                        "failed": str(failures),
                    },
                ),
            )
        yield Progress(total, migrated, total == migrated)
