"""The security team's key operations: status, KEK rotation (+ rewrap of that provider's own
keys), provider migration (the only operation that moves keys between providers). Each is
audited; none accepts a path or endpoint (providers come from configuration)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from vault_server.audit import AuditLog, AuditRecord
from vault_server.core.errors import InvalidArgument
from vault_server.domain import CallContext
from vault_server.keys._manager import KeyManager, ProviderReport
from vault_server.keys._rewrap import Progress, Rewrapper
from vault_server.storage.database import Database


@dataclass(frozen=True)
class Rotated:
    report: ProviderReport
    new_version: int
    rewrapped: int


class KeyAdmin:
    def __init__(self, db: Database, audit: AuditLog, keys: KeyManager) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys
        self._rewrap = Rewrapper(db, audit, keys)
        self.wrap_limit = keys.wrap_limit

    def status(self, ctx: CallContext) -> list[ProviderReport]:
        return self._keys.status()

    def rotate(self, ctx: CallContext, provider_id: str) -> Rotated:
        provider = self._keys.provider(provider_id)
        new_version = self._keys.rotate(provider.provider_id)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="key.rotate",
                    details={"provider": provider.provider_id, "newVersion": str(new_version)},
                ),
            )
        steps = deque(self._rewrap.rotation(ctx, provider.provider_id), maxlen=1)
        last = steps[0] if steps else Progress(0, 0, True)
        report = next(r for r in self._keys.status() if r.provider_id == provider.provider_id)
        return Rotated(report, new_version, last.migrated)

    def start_migration(
        self, ctx: CallContext, target_provider_id: str, batch_size: int
    ) -> Iterator[Progress]:
        if not target_provider_id:
            raise InvalidArgument("target_provider_id", "name a configured key provider")
        if not 0 <= batch_size <= 1000:
            raise InvalidArgument("batch_size", "must be 0..1000")
        return self._rewrap.migration(ctx, target_provider_id, batch_size or 100)
