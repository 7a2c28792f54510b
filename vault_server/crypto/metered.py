"""One wrapper around every key provider that times each call and counts failures.

The composition root wraps whatever ``new_key_provider`` returns, so every provider kind (local,
transit, and any added later) reports ``pipvault_kms_request_seconds`` and
``pipvault_kms_errors_total`` with the same two labels: the provider *kind* (a fixed word such as
``local`` or ``vault-transit``, never an id, address or key name) and the operation name.

It also tells a stale key ring from tampering: an unwrap that fails for a KEK version *newer*
than the provider's active one means this replica missed a rotation (``keys/_guard.py``),
so it answers ``KeyProviderUnavailable`` instead of ``IntegrityCheckFailed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from vault_server.core.errors import IntegrityCheckFailed, KeyProviderUnavailable
from vault_server.core.secret import Secret
from vault_server.crypto.providers.base import KeyProvider, ProviderStatus, WrappedDek
from vault_server.observability.metrics import Metrics

T = TypeVar("T")


class MeteredKeyProvider:
    """A ``KeyProvider`` that delegates to ``inner`` and records latency and errors."""

    def __init__(self, inner: KeyProvider, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics
        kind = str(inner.kind)
        self._kind = kind if kind.replace("-", "").replace("_", "").isalnum() else "other"

    @property
    def provider_id(self) -> str:
        return self.inner.provider_id

    @property
    def kind(self) -> str:
        return self.inner.kind

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return fn()
        except Exception:
            self._metrics.kms_errors.labels(self._kind, operation).inc()
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.kms_seconds.labels(self._kind, operation).observe(elapsed)

    def wrap(self, dek: Secret, aad: bytes) -> WrappedDek:
        return self._call("wrap", lambda: self.inner.wrap(dek, aad))

    def unwrap(self, wrapped: WrappedDek, aad: bytes) -> Secret:
        try:
            return self._call("unwrap", lambda: self.inner.unwrap(wrapped, aad))
        except IntegrityCheckFailed:
            if self._behind(wrapped.kek_version):
                raise KeyProviderUnavailable(
                    "this replica's key provider lacks the KEK version the data was sealed with"
                ) from None
            raise

    def _behind(self, version: int) -> bool:
        """A KEK version newer than ours is a stale keyring here (another replica rotated), not
        tampering: the caller gets UNAVAILABLE, not DATA_LOSS (and no integrity page)."""
        try:
            return version > self.inner.active_version()
        except Exception:
            return False

    def rewrap(self, wrapped: WrappedDek, aad: bytes) -> WrappedDek:
        return self._call("rewrap", lambda: self.inner.rewrap(wrapped, aad))

    def rotate(self) -> int:
        return self._call("rotate", self.inner.rotate)

    def active_version(self) -> int:
        return self._call("active_version", self.inner.active_version)

    def status(self) -> ProviderStatus:
        return self._call("status", self.inner.status)

    def retire(self, version: int) -> None:
        self._call("retire", lambda: self.inner.retire(version))

    def __getattr__(self, name: str) -> Any:
        # Anything beyond the KeyProvider protocol (read_only, close, ...) goes straight through.
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"MeteredKeyProvider({self.inner!r})"
