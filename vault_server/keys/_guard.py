"""One source of truth for the fleet's key material: the database's ``kek_state`` table.

Every replica records the KEK version it wraps with there (``KeyManager``). A replica whose own
key provider is *behind* the newest active version the database records (a per-host keyring copy
that missed a rotation) must not serve: it would fail signatures for credentials sealed under the
new version and keep encrypting with a retired one. ``kek_lag`` finds that; readiness turns it
into NOT_SERVING, and ``KeyManager`` refuses to wrap with the stale version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault_server.core.errors import KeyProviderUnavailable
from vault_server.crypto.providers.base import KeyProvider
from vault_server.storage.database import Database
from vault_server.storage.models import KekState

ACTIVE = "active"


@dataclass(frozen=True)
class KekLag:
    provider_id: str
    local_version: int
    primary_version: int

    def message(self) -> str:
        return (
            f"keys.providers.{self.provider_id}: the database says KEK version "
            f"{self.primary_version} is primary but this replica's key provider only has "
            f"version {self.local_version}; refusing to serve until it has the current key "
            "material (copy the current keyring, or point it at the same KMS key)"
        )


def newest_active(session: Session) -> dict[str, int]:
    """The newest ``active`` KEK version the database records, per provider id."""
    rows = session.execute(
        select(KekState.provider_id, func.max(KekState.kek_version))
        .where(KekState.state == ACTIVE)
        .group_by(KekState.provider_id)
    ).all()
    return {str(p): int(v) for p, v in rows}


def refuse_if_behind(session: Session, provider_id: str, version: int) -> None:
    """Before wrapping with ``version``: another replica rotated past it, so it is retired.

    Raises:
        KeyProviderUnavailable: the database records a newer KEK version for the provider.
    """
    newest = session.execute(
        select(func.max(KekState.kek_version)).where(KekState.provider_id == provider_id)
    ).scalar()
    if newest is not None and int(newest) > version:
        raise KeyProviderUnavailable(
            "this replica's key provider is behind the primary KEK version"
        )


def kek_lag(db: Database, providers: Mapping[str, KeyProvider]) -> list[KekLag]:
    """Configured providers whose active version is older than the database's primary one.
    A provider that cannot answer is skipped here (that is a key-provider outage, not a lag)."""
    with db.transaction(read_only=True) as session:
        primary = newest_active(session)
    lagging = []
    for pid, version in sorted(primary.items()):
        provider = providers.get(pid)
        if provider is None:
            continue  # a provider this replica does not use (e.g. migrated away from)
        local = _active_version(provider)
        if local is not None and local < version:
            lagging.append(KekLag(pid, local, version))
    return lagging


def _active_version(provider: KeyProvider) -> int | None:
    try:
        return int(provider.active_version())
    except Exception:
        return None  # the provider is down: readiness reports that as its own component
