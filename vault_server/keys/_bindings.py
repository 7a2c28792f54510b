"""How each kind of envelope is bound (``EnvelopeBinding``): the one definition shared by the
code that seals and opens them (custody, sessions) and the rewrap that moves their data keys,
so a rewrap can never open an envelope with another binding than its sealer used.

It lives in ``keys`` because ``keys`` is the lowest layer that may know both the envelope
(``crypto``) and the tables that hold them (``storage``): custody and sessions sit above it and
import it from here; ``crypto`` and ``storage`` are independent siblings below and may know
neither the other nor these rules."""

from __future__ import annotations

from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.storage.repositories import rewrap as rewrap_repo
from vault_server.storage.repositories.rewrap import PendingKey

PLATFORM = "platform"  # the binding's workspace of the platform's own secrets


def session_binding(
    workspace_id: str, credential_id: str, version: int, generation: int
) -> EnvelopeBinding:
    """Session tokens are bound to their credential version's *session* and generation: an
    envelope copied from a credential version, another credential or version, or an older
    generation fails to open."""
    return EnvelopeBinding(workspace_id, f"{credential_id}#session:{version}", generation)


def platform_application_binding(row_id: str, version: int) -> EnvelopeBinding:
    """A platform application's client secret is bound to the application's id and version, so
    a row copied to another venue fails to open."""
    return EnvelopeBinding(PLATFORM, "platform-application:" + row_id, version)


def binding_of(key: PendingKey) -> EnvelopeBinding:
    """The binding the envelope of a row read for rewrapping was sealed with."""
    if key.kind == rewrap_repo.VENUE_SESSIONS:
        return session_binding(key.workspace_id, key.credential_id, key.row_no, key.version)
    if key.kind == rewrap_repo.PLATFORM_APPLICATIONS:
        return platform_application_binding(key.credential_id, key.version)
    return EnvelopeBinding(key.workspace_id, key.credential_id, key.version)
