"""Key-encryption keys: sealing and opening data keys through the configured
providers, rotation, rewrap, migration between providers and the fleet's KEK guard.
"""

from __future__ import annotations

from vault_server.keys._admin import KeyAdmin
from vault_server.keys._bindings import platform_application_binding, session_binding
from vault_server.keys._guard import kek_lag
from vault_server.keys._manager import KeyManager, ProviderReport, Sealed

__all__ = [
    "KeyAdmin",
    "KeyManager",
    "ProviderReport",
    "Sealed",
    "kek_lag",
    "platform_application_binding",
    "session_binding",
]
