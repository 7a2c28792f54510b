"""Platform applications: the OAuth client id and secret the platform registered with a venue
(cTrader Open API), one per venue and environment, held by the vault like any secret.

``SetPlatformApplication`` seals the client secret (bound to the application's id and version,
so a row copied to another venue fails to open) and audits it on the system chain; the secret
is never returned. The session engine opens it only to exchange a consent's code or refresh a
grant, and keeps the opened application in memory for a short while (like a data key).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import select

from vault_server.audit import AuditLog, AuditRecord
from vault_server.brokers.base import Environment, Venue
from vault_server.brokers.lifecycle import Application, Lifecycle
from vault_server.brokers.registry import adapter_for
from vault_server.core.clock import Clock
from vault_server.core.errors import EtagMismatch, InvalidArgument, PlatformApplicationMissing
from vault_server.core.secret import Secret
from vault_server.custody import api_key_hint
from vault_server.domain import CallContext
from vault_server.keys import KeyManager, platform_application_binding
from vault_server.storage.database import Database
from vault_server.storage.models import PlatformApplication

MAX_CLIENT_ID = 256
MAX_CLIENT_SECRET = 1024
_CACHE_S = 300.0


@dataclass(frozen=True)
class ApplicationView:
    """Metadata only."""

    venue: Venue
    environment: Environment
    client_id_hint: str
    version: int
    update_time: dt.datetime

    @property
    def name(self) -> str:
        return f"platformApplications/{_row_id(self.venue, self.environment)}"


def _row_id(venue: Venue, environment: Environment) -> str:
    return f"{venue.value.replace('_', '-')}-{environment.value}"


class PlatformApplications:
    def __init__(self, db: Database, audit: AuditLog, keys: KeyManager, clock: Clock) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys
        self._clock = clock
        self._opened: dict[str, tuple[float, int, Application]] = {}

    def set(
        self, ctx: CallContext, venue: Venue, environment: Environment, client_id: str,
        client_secret: Secret,
    ) -> ApplicationView:  # fmt: skip
        if adapter_for(venue).lifecycle is not Lifecycle.OAUTH_CONSENT:
            raise InvalidArgument("broker", "has no OAuth consent lifecycle")
        if not client_id or len(client_id) > MAX_CLIENT_ID or not client_id.isprintable():
            raise InvalidArgument("client_id", f"1-{MAX_CLIENT_ID} printable characters")
        if not client_secret or len(client_secret) > MAX_CLIENT_SECRET:
            raise InvalidArgument("client_secret", f"1-{MAX_CLIENT_SECRET} bytes")
        row_id = _row_id(venue, environment)
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining(), read_only=True) as session:
            found = session.get(PlatformApplication, row_id)
            version = found.version + 1 if found is not None else 1
        # Sealed outside the write (the wrap counter has its own transaction), then stored by
        # compare-and-set on the version read.
        sealed = self._keys.seal(client_secret, platform_application_binding(row_id, version))
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            row = session.get(PlatformApplication, row_id, with_for_update=True)
            if (row.version if row is not None else 0) != version - 1:
                raise EtagMismatch("the platform application changed meanwhile: try again")
            if row is None:
                row = PlatformApplication(id=row_id, broker=venue.value,
                                          environment=environment.value)  # fmt: skip
                session.add(row)
            row.client_id, row.version, row.envelope = client_id, version, sealed.blob
            row.provider_id, row.kek_version, row.update_time = (
                sealed.provider_id, sealed.kek_version, now,
            )  # fmt: skip
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="platform_application.set",
                    details={
                        "broker": venue.value,
                        "environment": environment.value,
                        "clientIdHint": api_key_hint(client_id),
                        "version": str(version),
                        "kek": f"{sealed.provider_id}:{sealed.kek_version}",
                    },
                ),
            )
            self._opened.pop(row_id, None)
            return _view(row)

    def list(self, ctx: CallContext) -> list[ApplicationView]:
        with self._db.transaction(timeout_s=ctx.remaining(), read_only=True) as session:
            rows = session.execute(select(PlatformApplication).order_by(PlatformApplication.id))
            return [_view(row) for row in rows.scalars()]

    def get(self, venue: Venue, environment: Environment) -> Application:
        """The opened application (``PLATFORM_APPLICATION_MISSING`` when none is set)."""
        row_id = _row_id(venue, environment)
        cached = self._opened.get(row_id)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_S:
            return cached[2]
        with self._db.transaction(read_only=True) as session:
            row = session.get(PlatformApplication, row_id)
            if row is None:
                raise PlatformApplicationMissing(
                    "no platform application is set for this broker and environment",
                    metadata={"broker": venue.value, "environment": environment.value},
                )
            client_id, version, blob = row.client_id, row.version, bytes(row.envelope)
        app = Application(
            client_id, self._keys.open(blob, platform_application_binding(row_id, version))
        )
        self._opened[row_id] = (time.monotonic(), version, app)
        return app


def _view(row: PlatformApplication) -> ApplicationView:
    return ApplicationView(
        Venue(row.broker), Environment(row.environment), api_key_hint(row.client_id),
        row.version, row.update_time,
    )  # fmt: skip
