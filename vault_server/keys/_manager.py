"""Key management in the domain: which provider wraps new data keys, the durable wrap counter,
sealing/opening credential material, and the ciphertext census per KEK version (every table
that holds envelopes: credential versions, venue sessions, platform applications).

Every wrap is counted *before* it happens, in a committed transaction (a seal in its own, a rewrap
batch all its wraps in one), so the counter can overcount (a crash after counting) but never
undercount. When a KEK version reaches ``wrap_limit`` (far below the 2^32 GCM bound of NIST
SP 800-38D) the provider rotates first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault_server.core.clock import Clock, Random
from vault_server.core.errors import IntegrityCheckFailed, InvalidArgument
from vault_server.core.secret import Secret
from vault_server.crypto import envelope
from vault_server.crypto.dek_cache import DekCache
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.crypto.providers.base import KeyProvider
from vault_server.keys import _guard as kek_guard
from vault_server.storage.database import Database
from vault_server.storage.models import KekState
from vault_server.storage.repositories import rewrap as rewrap_repo
from vault_server.storage.repositories import workspaces as ws_repo

ACTIVE = "active"
DECRYPT_ONLY = "decrypt_only"

#: Called with (binding, operation, provider_id, kek_version) when a ciphertext fails its
#: integrity check; the composition root wires it to the pager (``IntegrityPager``).
IntegrityHook = Callable[[EnvelopeBinding, str, str, int], object]


@dataclass(frozen=True)
class Sealed:
    blob: bytes
    provider_id: str
    kek_version: int


@dataclass(frozen=True)
class KekReport:
    version: int
    state: str
    wrap_count: int
    ciphertext_count: int
    create_time: dt.datetime | None


@dataclass(frozen=True)
class ProviderReport:
    provider_id: str
    kind: str
    primary: bool
    healthy: bool
    versions: list[KekReport]


CENSUS_WORKSPACES = 50  # workspaces counted per read transaction
MAX_OPENERS = 100_000  # one per credential version in use; about 300 bytes each


class KeyManager:
    def __init__(
        self,
        db: Database,
        providers: Mapping[str, KeyProvider],
        primary: str,
        *,
        wrap_limit: int,
        clock: Clock,
        random: Random,
        cache: DekCache | None = None,
    ) -> None:
        self._cache = cache
        # Local keyrings only (the KEK is in this process anyway): envelopes whose data key is
        # unwrapped and commitment verified, so a signature pays one AES-GCM decryption. Bounded,
        # and dropped with every ``forget`` (KEK rotation or revocation, credential revocation,
        # freeze), exactly like the DEK cache of remote providers.
        self._openers: dict[tuple[bytes, EnvelopeBinding], envelope.Opener] = {}
        if primary not in providers:
            raise InvalidArgument("keys.primary", "is not a configured provider")
        self._db = db
        self.providers = dict(providers)
        self._local_only = all(p.kind == "local" for p in self.providers.values())
        self.primary = primary
        self.wrap_limit = wrap_limit
        self._clock = clock
        self._random = random
        self.on_integrity_failure: IntegrityHook | None = None

    @property
    def local_only(self) -> bool:
        """Every provider is a local keyring: opening an envelope never waits on a network."""
        return self._local_only

    def provider(self, provider_id: str = "") -> KeyProvider:
        pid = provider_id or self.primary
        if pid not in self.providers:
            raise InvalidArgument("provider_id", "is not a configured key provider")
        return self.providers[pid]

    def seal(self, plaintext: Secret, binding: EnvelopeBinding) -> Sealed:
        provider = self.providers[self.primary]
        self._reserve_wrap(provider)
        blob = envelope.seal(plaintext, binding, provider, self._random)
        header = envelope.parse_header(blob)
        return Sealed(blob, header.provider_id, header.kek_version)

    def open(self, blob: bytes, binding: EnvelopeBinding) -> Secret:
        try:
            if not self.local_only:
                opened: Secret = envelope.open_envelope(
                    blob, binding, self.providers, cache=self._cache
                )
                return opened
            key = (blob, binding)
            found = self._openers.get(key)
            if found is not None:
                return found.open()
            found = envelope.opener(blob, binding, self.providers)
            plaintext = found.open()  # kept only once it opened
            if len(self._openers) >= MAX_OPENERS:
                self._openers.clear()
            self._openers[key] = found
            return plaintext
        except IntegrityCheckFailed:
            self._integrity_failed(blob, binding, "open")
            raise

    def _integrity_failed(self, blob: bytes, binding: EnvelopeBinding, operation: str) -> None:
        if self.on_integrity_failure is None:
            return
        try:
            header = envelope.parse_header(blob)
            provider_id, kek_version = header.provider_id, header.kek_version
        except IntegrityCheckFailed:
            provider_id, kek_version = "-", 0
        self.on_integrity_failure(binding, operation, provider_id, kek_version)

    def forget(self, *, workspace_id: str | None = None, credential_id: str | None = None) -> None:
        """Drop cached data keys: all, one workspace's, or one credential's (revoke, freeze)."""
        self._openers.clear()
        if self._cache is None:
            return
        if workspace_id is None and credential_id is None:
            self._cache.flush()
            return
        self._cache.evict(
            lambda k: (
                (workspace_id is None or k.workspace_id == workspace_id)
                and (credential_id is None or k.credential_id == credential_id)
            )
        )

    def rewrap(self, blob: bytes, binding: EnvelopeBinding, target_id: str = "") -> Sealed:
        target = self.provider(target_id)
        self._reserve_wrap(target)
        return self.rewrap_reserved(blob, binding, target)

    def rewrap_reserved(self, blob: bytes, binding: EnvelopeBinding, target: KeyProvider) -> Sealed:
        """``rewrap`` for a caller that already counted this wrap with ``reserve_wraps`` (in a
        committed transaction) against the version ``target`` wraps with."""
        try:
            new_blob = envelope.rewrap(blob, binding, self.providers, target)
        except IntegrityCheckFailed:
            self._integrity_failed(blob, binding, "rewrap")
            raise
        header = envelope.parse_header(new_blob)
        return Sealed(new_blob, header.provider_id, header.kek_version)

    def _reserve_wrap(self, provider: KeyProvider) -> None:
        with self._db.transaction() as session:
            self.reserve_wraps(session, provider, 1)

    def reserve_wraps(self, session: Session, provider: KeyProvider, n: int) -> tuple[int, int]:
        """Count up to ``n`` wraps against ``provider``'s active KEK version, in ``session``'s
        transaction (the caller commits it before wrapping: counted first, never undercounted).

        A version that has reached ``wrap_limit`` is retired to decrypt_only and the provider
        rotates first. A batch never crosses the limit: when the version has fewer than ``n``
        wraps left, only those are granted and the caller reserves again for the rest (which
        rotates, so the rest of the batch uses the new version).

        Returns:
            ``(version, granted)``: the KEK version counted against and how many wraps
            (``1 <= granted <= n``) the caller may do with it.

        Raises:
            KeyProviderUnavailable: the database records a newer KEK version (``kek_guard``).
        """
        if n < 1:
            raise InvalidArgument("n", "must be at least 1")
        version = provider.active_version()
        kek_guard.refuse_if_behind(session, provider.provider_id, version)
        row = session.get(KekState, (provider.provider_id, version), with_for_update=True)
        if row is None:
            row = self._fresh_kek(provider.provider_id, version)
            session.add(row)
        if row.wrap_count >= self.wrap_limit:
            row.state = DECRYPT_ONLY
            version = provider.rotate()
            row = self._fresh_kek(provider.provider_id, version)
            session.add(row)
        granted = min(n, self.wrap_limit - row.wrap_count)
        row.wrap_count += granted
        return version, granted

    def _fresh_kek(self, provider_id: str, version: int) -> KekState:
        """The row of a KEK version that has just become active (nothing wrapped yet)."""
        return KekState(
            provider_id=provider_id,
            kek_version=version,
            state=ACTIVE,
            wrap_count=0,
            create_time=self._clock.now(),
        )

    def release_wraps(self, session: Session, provider_id: str, version: int, n: int) -> None:
        """Give back ``n`` wraps reserved with ``reserve_wraps`` against ``version`` that were
        never done (the counter stays exact; a crash before this only overcounts)."""
        if n < 1:
            return
        row = session.get(KekState, (provider_id, version), with_for_update=True)
        if row is not None:
            row.wrap_count = max(0, row.wrap_count - n)

    def rotate(self, provider_id: str = "") -> int:
        provider = self.provider(provider_id)
        self.forget()
        with self._db.transaction() as session:
            old = session.get(KekState, (provider.provider_id, provider.active_version()))
            new_version = int(provider.rotate())
            if old is not None:
                old.state = DECRYPT_ONLY
            session.merge(self._fresh_kek(provider.provider_id, new_version))
        return new_version

    def census(self) -> dict[tuple[str, int], int]:
        """Live ciphertexts (not destroyed) per (provider, KEK version): credential versions and
        venue sessions across all workspaces (each bound in turn: the tenant guard and RLS have
        no bypass), ``CENSUS_WORKSPACES`` per transaction, and the platform's own secrets
        (platform applications, a global table)."""
        counts: dict[tuple[str, int], int] = {}
        with self._db.transaction(read_only=True) as session:
            workspaces = [uid for uid, _rid in ws_repo.all_ids(session)]
            for p, v, n in rewrap_repo.global_counts(session.connection()):
                counts[(p, v)] = counts.get((p, v), 0) + n
        for start in range(0, len(workspaces), CENSUS_WORKSPACES):
            with self._db.transaction(read_only=True) as session:
                conn = session.connection()
                for ws in workspaces[start : start + CENSUS_WORKSPACES]:
                    rewrap_repo.bind(conn, ws)
                    for p, v, n in rewrap_repo.live_counts(conn, ws):
                        counts[(p, v)] = counts.get((p, v), 0) + n
        return counts

    def status(self) -> list[ProviderReport]:
        census = self.census()
        with self._db.transaction() as session:
            states = session.execute(select(KekState)).scalars().all()
        by_key = {(s.provider_id, s.kek_version): s for s in states}
        reports = []
        for pid, provider in self.providers.items():
            try:
                st = provider.status()
                healthy = True
                versions = [v.version for v in st.versions]
            except Exception:
                healthy = False
                versions = sorted({v for (p, v) in by_key if p == pid})
            reports.append(
                ProviderReport(
                    provider_id=pid,
                    kind=provider.kind,
                    primary=pid == self.primary,
                    healthy=healthy,
                    versions=[
                        KekReport(
                            version=v,
                            state=by_key[(pid, v)].state if (pid, v) in by_key else ACTIVE,
                            wrap_count=by_key[(pid, v)].wrap_count if (pid, v) in by_key else 0,
                            ciphertext_count=census.get((pid, v), 0),
                            create_time=by_key[(pid, v)].create_time
                            if (pid, v) in by_key
                            else None,
                        )
                        for v in sorted(versions, reverse=True)
                    ],
                )
            )
        return reports
