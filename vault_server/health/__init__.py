"""Readiness: whether this replica can serve signatures right now."""

from __future__ import annotations

from vault_server.health._readiness import COMPONENTS, ReadinessCheck, ReadinessReport

__all__ = [
    "COMPONENTS",
    "ReadinessCheck",
    "ReadinessReport",
]
