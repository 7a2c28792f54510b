"""Readiness: can this replica serve signatures right now?

NOT_SERVING (the routing pod is taken out of service) when storage does not answer, audit
writes keep failing (counted at commit, not flush: ``audit_log``; while they fail, each check
tries one durable write of its own, so a replica the load balancer stopped sending signatures to
still finds out that the volume or database took writes again), this replica's key material is
behind the fleet's (``kek_guard``), or a key provider is down and nothing can sign without it.
A key provider outage while the DEK cache can still sign is *degraded*, not unready:
``pipvault_degraded{component="key_provider"}`` = 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vault_server.crypto.providers.base import KeyProvider
from vault_server.keys import KeyManager, kek_lag
from vault_server.storage.database import Database

COMPONENTS = ("storage", "key_provider", "audit")


@dataclass(frozen=True)
class ReadinessReport:
    ready: bool
    degraded: frozenset[str]  # components from COMPONENTS that are failing
    problems: tuple[str, ...]  # one line each, no secrets: why the replica is not ready


class ReadinessCheck:
    def __init__(
        self,
        db: Database,
        keys: KeyManager,
        *,
        audit_failures: Callable[[], int],
        audit_failures_before_not_serving: int,
        cache_signs_without_kms: bool,
        audit_probe: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._audit_failures = audit_failures
        self._audit_limit = audit_failures_before_not_serving
        self._cache_signs = cache_signs_without_kms
        self._audit_probe = audit_probe

    def check(self) -> ReadinessReport:
        degraded: set[str] = set()
        problems: list[str] = []
        storage_ok = self._db.ping()
        if not storage_ok:
            degraded.add("storage")
            problems.append("storage: the database is not answering")
        failures = self._audit_failures()
        if failures >= self._audit_limit and storage_ok and self._audit_probe is not None:
            # Not serving means no signature comes to prove audit writes work again: try one
            # durable write here (it resets the count when it commits).
            self._audit_probe()
            failures = self._audit_failures()
        if failures >= self._audit_limit:
            degraded.add("audit")
            problems.append(f"audit: {failures} consecutive audit writes failed")
        down = [pid for pid, p in sorted(self._keys.providers.items()) if not _answers(p)]
        if down:
            degraded.add("key_provider")
            if not self._cache_signs:
                problems.append(f"key_provider: {', '.join(down)} not answering")
        if storage_ok:
            for lag in kek_lag(self._db, self._keys.providers):
                degraded.add("key_provider")
                problems.append(lag.message())
        return ReadinessReport(not problems, frozenset(degraded), tuple(problems))


def _answers(provider: KeyProvider) -> bool:
    try:
        provider.status()
    except Exception:
        return False
    return True
