"""Venue sessions: login sessions and OAuth grants the vault holds, renews and shares across the
fleet for forex/CFD platforms (issue 21). See ``_engine`` for the order path, ``_store`` for
the row the fleet shares, ``_wire`` for how venues are reached, ``_applications`` for the OAuth
platform applications and ``_admin`` for the security team's reset."""

from __future__ import annotations

from vault_server.sessions._admin import SessionAdmin
from vault_server.sessions._applications import ApplicationView, PlatformApplications
from vault_server.sessions._engine import SessionEngine
from vault_server.sessions._parts import SessionSettings, SessionUse
from vault_server.sessions._store import SessionKey, SessionStore
from vault_server.sessions._wire import Route, SessionWire, Transport

__all__ = [
    "ApplicationView",
    "PlatformApplications",
    "Route",
    "SessionAdmin",
    "SessionEngine",
    "SessionKey",
    "SessionSettings",
    "SessionStore",
    "SessionUse",
    "SessionWire",
    "Transport",
]
