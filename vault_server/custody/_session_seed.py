"""A credential version's venue session, when onboarding itself starts one (OAuth consent: the
vault exchanges the consent's code at once, since a code lives about a minute and is single
use). The engine (``vault_server/sessions``) owns the row afterwards; the binding is shared so
both seal and open session tokens the same way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from vault_server.brokers.base import Environment, Venue, VenueCredential
from vault_server.brokers.lifecycle import SessionTokens
from vault_server.domain import CallContext
from vault_server.keys import Sealed, session_binding
from vault_server.storage.models import VenueSession

# ``session_binding`` (how session tokens are bound) lives in ``keys``: the rewrap uses it too.
__all__ = ["GrantExchange", "at", "seed_session", "session_binding"]

# Exchanges an OAuth consent's code for the grant (the session engine's ``exchange``).
GrantExchange = Callable[[CallContext, Venue, Environment, VenueCredential], SessionTokens]


def at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def seed_session(
    session: Session, workspace_id: str, credential_id: str, version: int, sealed: Sealed,
    tokens: SessionTokens, now: dt.datetime,
) -> None:  # fmt: skip
    """The version's first session (generation 1), in the onboarding transaction."""
    session.add(
        VenueSession(
            credential_id=credential_id, credential_version=version, workspace_id=workspace_id,
            state="active", generation=1, envelope=sealed.blob, provider_id=sealed.provider_id,
            kek_version=sealed.kek_version, expire_time=at(tokens.expires_at_ms),
            refresh_expire_time=(
                at(tokens.refresh_expires_at_ms) if tokens.refresh_expires_at_ms else None
            ),
            renew_time=now, lease_owner="", lease_kind="", failures=0, last_error="",
            update_time=now,
        )
    )  # fmt: skip
