"""An in-memory cache of unwrapped data keys, so steady-state signing never calls the KMS.

Plaintext keys in memory are a liability, so the cache holds as little as it can (cf. the AWS
Encryption SDK caching CMM): every entry is bounded by **age** (``max_age_s``), by **uses**
(``max_uses`` cache hits, then it is dropped and the next open unwraps again) and the cache by
**entries** (``max_entries``, least recently used evicted first). ``max_entries=0`` turns it off.
The owner flushes it on KEK rotation, credential revocation, workspace freeze and shutdown
(``flush`` / ``evict``).

Keys are ``(provider id, KEK version, digest of wrap-AAD and wrapped DEK)`` plus the workspace
and credential ids, so an entry can only ever answer for the exact wrapped key and binding it
came from, and ``evict`` can target one workspace or credential.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from vault_server.core.clock import Clock
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret


@dataclass(frozen=True)
class CacheKey:
    """Identifies one wrapped DEK under one binding (no secret in it)."""

    provider_id: str
    kek_version: int
    wrapped_digest: bytes
    workspace_id: str = ""
    credential_id: str = ""

    @classmethod
    def for_wrapped(
        cls,
        provider_id: str,
        kek_version: int,
        wrap_aad: bytes,
        blob: bytes,
        *,
        workspace_id: str = "",
        credential_id: str = "",
    ) -> CacheKey:
        """Key for ``blob`` unwrapped with ``wrap_aad`` (both enter the digest)."""
        digest = hashlib.sha256(len(wrap_aad).to_bytes(4, "big") + wrap_aad + blob).digest()
        return cls(provider_id, kek_version, digest, workspace_id, credential_id)


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    entries: int


@dataclass
class _Entry:
    dek: Secret
    created: float
    uses: int = 0


class DekCache:
    """Bounded, thread-safe cache of unwrapped DEKs (see module docstring).

    Args:
        max_entries: capacity; 0 disables the cache (``get`` always misses, ``put`` is a no-op).
        max_age_s: an entry older than this (monotonic clock) is never served.
        max_uses: an entry serves at most this many hits.
        clock: time source (``SystemClock`` in production, ``FixedClock`` in tests).
    """

    def __init__(
        self,
        *,
        max_entries: int,
        max_age_s: float,
        max_uses: int,
        clock: Clock,
        on_hit: Callable[[], None] | None = None,
        on_miss: Callable[[], None] | None = None,
    ) -> None:
        if max_entries < 0:
            raise InvalidArgument("keys.dek_cache_max_entries", "must be >= 0")
        if not max_age_s > 0:
            raise InvalidArgument("keys.dek_cache_max_age_s", "must be > 0")
        if max_uses < 1:
            raise InvalidArgument("keys.dek_cache_max_uses", "must be >= 1")
        self._max_entries = max_entries
        self._max_age = float(max_age_s)
        self._max_uses = max_uses
        self._clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0
        self._on_hit = on_hit  # metrics hooks (counts only, never a key)
        self._on_miss = on_miss

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0

    def get(self, key: CacheKey) -> Secret | None:
        """The cached DEK for ``key`` (counting one use), or None."""
        dek = self._get(key)
        hook = self._on_miss if dek is None else self._on_hit
        if hook is not None:
            hook()
        return dek

    def _get(self, key: CacheKey) -> Secret | None:
        if not self.enabled:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (
                self._expired(entry, self._clock.monotonic()) or entry.uses >= self._max_uses
            ):
                del self._entries[key]
                self._evictions += 1
                entry = None
            if entry is None:
                self._misses += 1
                return None
            entry.uses += 1
            self._entries.move_to_end(key)
            self._hits += 1
            return entry.dek

    def put(self, key: CacheKey, dek: Secret) -> None:
        """Remember ``dek`` (freshly unwrapped and verified) under ``key``."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock.monotonic()
            self._entries.pop(key, None)
            if len(self._entries) >= self._max_entries:
                self._drop_expired(now)
            while len(self._entries) >= self._max_entries:
                self._entries.popitem(last=False)
                self._evictions += 1
            self._entries[key] = _Entry(dek, now)

    def flush(self) -> int:
        """Drop every entry (rotation, shutdown). Returns how many were dropped."""
        return self.evict(lambda _key: True)

    def evict(self, predicate: Callable[[CacheKey], bool]) -> int:
        """Drop the entries whose key matches (e.g. one workspace on freeze)."""
        with self._lock:
            doomed = [k for k in self._entries if predicate(k)]
            for k in doomed:
                del self._entries[k]
            self._evictions += len(doomed)
            return len(doomed)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions, len(self._entries))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"DekCache(entries={len(self._entries)}, max_entries={self._max_entries}, "
            f"max_age_s={self._max_age}, max_uses={self._max_uses})"
        )

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.created >= self._max_age

    def _drop_expired(self, now: float) -> None:
        for k in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[k]
            self._evictions += 1
