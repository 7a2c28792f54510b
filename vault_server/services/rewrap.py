"""Online, resumable rewrapping of data keys: KEK rotation and provider migration.

Each credential version's wrapped DEK is rewrapped to the target (provider, active KEK version)
in batches, one workspace at a time. A batch costs two short transactions, not one per key: one
reads the batch (only the columns needed, in id order after the previous batch) and counts all
its wraps against the KEK's usage limit (``KeyManager.reserve_wraps``, committed before any wrap),
the other stores the batch with one compare-and-set ``executemany`` and bumps the workspace's
cache epoch if a row changed. Only the wrapped key changes: the data ciphertext and the secret
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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class _Claim:
    """A batch read from one workspace, with the wraps reserved for (a prefix of) it."""

    rows: list[PendingKey]
    kek_version: int  # the version the wraps were counted against
    refused: VaultError | None = None  # the reservation failed: nothing may be wrapped


class Rewrapper:
    def __init__(self, db: Database, audit: AuditLog, keys: KeyManager) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys

    def _claim(
        self, ws_uid: str, target: KeyProvider, version: int, after: str, limit: int
    ) -> _Claim:
        """Read the next batch of ``ws_uid`` and count its wraps, in ONE transaction; a batch
        that would cross the wrap limit is cut to what the KEK version has left."""
        rows: list[PendingKey] = []
        try:
            with self._db.transaction() as session:
                bind_workspace(session, ws_uid)
                rows = rewrap_repo.pending(
                    session.connection(), ws_uid, target.provider_id, version,
                    after=after, limit=limit,
                )  # fmt: skip
                if not rows:
                    return _Claim([], 0)
                reserved_version, granted = self._keys.reserve_wraps(session, target, len(rows))
        except VaultError as exc:
            if not rows:
                raise  # reading failed: not a per-key failure
            return _Claim(rows, 0, refused=exc)  # rolled back: nothing was counted
        return _Claim(rows[:granted], reserved_version)

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
    ) -> tuple[list[Replacement], int, str]:
        """Rewrap a claimed batch (one provider call per key: remote providers have no batch
        API). Returns the replacements, the failures and the id of the last row handled."""
        batch: list[Replacement] = []
        failures = 0
        last = ""
        for row in claim.rows:
            last = row.row_id
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
                break  # the KEK rotated elsewhere since the reservation: reserve again
        return batch, failures, last

    def run(
        self, ctx: CallContext, target_id: str = "", batch_size: int = DEFAULT_BATCH
    ) -> Iterator[Progress]:
        """Rewrap everything to the target's active KEK version, yielding progress per batch."""
        target = self._keys.provider(target_id)
        version = target.active_version()
        total, migrated = self._count(target.provider_id, version)
        yield Progress(total, migrated, total == migrated)
        with self._db.transaction() as session:
            workspaces = ws_repo.all_ids(session)
        failures = 0
        for uid, _rid in workspaces:
            after = ""
            while True:
                claim = self._claim(uid, target, version, after, max(1, batch_size))
                if not claim.rows:
                    break
                if claim.refused is not None:
                    failures += len(claim.rows)
                    break  # e.g. this replica's keyring is behind: report, do not spin
                batch, failed, after = self._rewrap_batch(uid, claim, target)
                failures += failed
                progressed = self._store_batch(uid, batch)
                migrated += progressed
                yield Progress(total, migrated, False)
                if not batch:
                    break  # every key of the batch failed (provider down?): report, do not spin
        total, migrated = self._count(target.provider_id, version)
        with self._db.transaction() as session:
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
