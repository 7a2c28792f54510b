"""Online, resumable rewrapping of data keys: KEK rotation and provider migration.

Each credential version's wrapped DEK is rewrapped to the target (provider, active KEK version)
in small transactions, one workspace at a time. Only the wrapped key changes: the data ciphertext
and the secret are never touched or seen. A row is replaced by compare-and-set on its old
envelope, so a concurrent rotation or revocation wins; ``kill -9`` at any point leaves every row
either fully old or fully new, and a rerun picks up exactly the rows still to do. Signing is never
blocked: each batch holds its locks for milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, or_, select, update

from vault_server.core.errors import VaultError
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.services.audit_log import AuditLog, AuditRecord
from vault_server.services.call import CallContext
from vault_server.services.keys import KeyManager
from vault_server.storage import invalidation
from vault_server.storage.database import Database
from vault_server.storage.models import CredentialVersion
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace


@dataclass(frozen=True)
class Progress:
    total: int
    migrated: int
    done: bool

    @property
    def remaining(self) -> int:
        return self.total - self.migrated


class Rewrapper:
    def __init__(self, db: Database, audit: AuditLog, keys: KeyManager) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys

    def _pending(
        self, ws_uid: str, provider_id: str, version: int, limit: int
    ) -> list[CredentialVersion]:
        with self._db.transaction() as session:
            bind_workspace(session, ws_uid)
            stmt = (
                select(CredentialVersion)
                .where(
                    CredentialVersion.envelope.is_not(None),
                    or_(
                        CredentialVersion.provider_id != provider_id,
                        CredentialVersion.kek_version != version,
                    ),
                )
                .order_by(CredentialVersion.id)
                .limit(limit)
            )
            return list(session.execute(stmt).scalars().all())

    def _count(self, provider_id: str, version: int) -> tuple[int, int]:
        census = self._keys.census()
        total = sum(census.values())
        return total, census.get((provider_id, version), 0)

    def run(
        self, ctx: CallContext, target_id: str = "", batch_size: int = 100
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
            while True:
                rows = self._pending(uid, target.provider_id, version, batch_size)
                if not rows:
                    break
                progressed = 0
                for row in rows:
                    assert row.envelope is not None
                    binding = EnvelopeBinding(uid, row.credential_id, row.version)
                    try:
                        sealed = self._keys.rewrap(row.envelope, binding, target.provider_id)
                    except VaultError:
                        failures += 1
                        continue
                    with self._db.transaction() as session:
                        bind_workspace(session, uid)
                        result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                            update(CredentialVersion)
                            .where(
                                CredentialVersion.id == row.id,
                                CredentialVersion.envelope == row.envelope,
                            )
                            .values(
                                envelope=sealed.blob,
                                provider_id=sealed.provider_id,
                                kek_version=sealed.kek_version,
                            )
                            .execution_options(synchronize_session=False)
                        )
                        changed = result.rowcount
                        if changed:  # a cached signing state holds the old envelope
                            invalidation.bump(session, [uid])
                    progressed += changed
                    migrated += changed
                yield Progress(total, migrated, False)
                if progressed == 0:
                    break  # only failing rows left in this workspace: report, do not spin
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
