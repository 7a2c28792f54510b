"""Venue sessions: login sessions and OAuth grants the vault holds, renews and shares across the
fleet for forex/CFD platforms (issue 21). See ``_engine`` for the order path and ``_store`` for
the row the fleet shares."""

from __future__ import annotations

from vault_server.sessions._admin import SessionAdmin
from vault_server.sessions._engine import SessionEngine, SessionUse
from vault_server.sessions._parts import SessionSettings
from vault_server.sessions._store import SessionKey, SessionStore

__all__ = [
    "SessionAdmin",
    "SessionEngine",
    "SessionKey",
    "SessionSettings",
    "SessionStore",
    "SessionUse",
]
