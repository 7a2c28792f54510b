"""Per-workspace caps on in-flight venue exchanges.

A slow venue must not let one workspace take what every workspace shares (connections, the
event loop's attention, the venue's own rate budget): each workspace may have at most ``limit``
proxied exchanges in flight, and one more is refused at once with ``CONCURRENCY_LIMITED`` -
before its use is committed, so the refused order's client order id stays unused. Used on the
event loop only (no lock needed).
"""

from __future__ import annotations

from vault_server.core.errors import ConcurrencyLimited


class Slot:
    """One held slot; leaving the ``with`` block (or ``release``) gives it back once."""

    def __init__(self, owner: InFlight, key: str) -> None:
        self._owner, self._key, self._held = owner, key, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._owner._release(self._key)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class InFlight:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)

    def claim(self, key: str) -> Slot:
        """One of ``key``'s slots, or ``ConcurrencyLimited`` at once."""
        held = self._counts.get(key, 0)
        if held >= self.limit:
            raise ConcurrencyLimited(
                "too many venue requests in flight for this workspace",
                metadata={"limit": "egressInFlightPerWorkspace", "max": str(self.limit)},
            )
        self._counts[key] = held + 1
        return Slot(self, key)

    def _release(self, key: str) -> None:
        left = self._counts[key] - 1
        if left:
            self._counts[key] = left
        else:
            del self._counts[key]
