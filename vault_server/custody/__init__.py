"""Custody of credentials: onboarding (scopes, attestation, generated keys), versions
and their lifecycle, the sealed material, and what may be shown of a credential.
"""

from __future__ import annotations

from vault_server.custody._attestation import Attestor, ScheduledAttestation
from vault_server.custody._lifecycle import CredentialLifecycle
from vault_server.custody._material import MaterialInput, api_key_hint, open_material
from vault_server.custody._onboarding import CredentialManager, NewCredential
from vault_server.custody._session_seed import GrantExchange, at, session_binding
from vault_server.custody._venue_calls import PageHook, SigningSettings
from vault_server.custody._venue_nonce import next_nonce
from vault_server.custody._version_view import VersionView
from vault_server.custody._views import (
    CredentialQueries,
    CredentialView,
    load_credential,
    view_of,
)

__all__ = [
    "Attestor",
    "CredentialLifecycle",
    "CredentialManager",
    "CredentialQueries",
    "CredentialView",
    "GrantExchange",
    "MaterialInput",
    "NewCredential",
    "PageHook",
    "ScheduledAttestation",
    "SigningSettings",
    "VersionView",
    "api_key_hint",
    "at",
    "load_credential",
    "next_nonce",
    "open_material",
    "session_binding",
    "view_of",
]
