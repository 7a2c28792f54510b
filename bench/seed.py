"""Bulk seeding for the scale runs, through the storage layer (the server is stopped).

100,000 ``CreateCredential`` RPCs would take longer than the whole benchmark budget (each is a
durable, audited transaction), so the scale runs create one real credential through the API and
clone its rows here: ``workspaces``, ``credentials`` and ``credential_versions`` rows are copied
column by column from that template (so columns added later are carried along), with new ids,
and every clone gets its own envelope: the template's secret sealed again under a fresh data key,
bound to the clone's (workspace, credential, version) exactly as the server seals, wrapped by the
configured primary key provider. A rewrap therefore has real, distinct data keys to unwrap and
wrap. The KEK's wrap counter is advanced by the number of keys wrapped.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from vault_server.app import build_key_providers
from vault_server.config import load_settings
from vault_server.core.clock import SystemClock, SystemRandom
from vault_server.crypto import envelope
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, CredentialVersion, KekState, Workspace

BATCH = 2000


def seed(
    config: Path,
    *,
    template_workspace: str,
    template_credential: str,
    workspaces: int,
    credentials: int,
) -> dict[str, Any]:
    """Grow the database to ``credentials`` credentials across ``workspaces`` workspaces
    (counting the template's own), all cloned from the template credential."""
    settings = load_settings(config)
    random = SystemRandom()
    providers = build_key_providers(settings, SystemClock(), random)
    primary = providers[settings.keys.primary]
    db = Database(settings.resolved_database_url())
    ws_t, cred_t, ver_t = Workspace.__table__, Credential.__table__, CredentialVersion.__table__
    try:
        with db.transaction() as session:
            ws_row = dict(
                session.execute(select(ws_t).where(ws_t.c.resource_id == template_workspace))
                .mappings()
                .one()
            )
            cred_row = dict(
                session.execute(
                    select(cred_t).where(
                        cred_t.c.workspace_id == ws_row["id"],
                        cred_t.c.resource_id == template_credential,
                    )
                )
                .mappings()
                .one()
            )
            ver_row = dict(
                session.execute(
                    select(ver_t).where(
                        ver_t.c.credential_id == cred_row["id"],
                        ver_t.c.version == cred_row["current_version"],
                    )
                )
                .mappings()
                .one()
            )
            existing = session.execute(select(cred_t.c.id)).all()
        plaintext = envelope.open_envelope(
            ver_row["envelope"],
            EnvelopeBinding(ws_row["id"], cred_row["id"], ver_row["version"]),
            providers,
        )
        ws_ids = [ws_row["id"]]
        new_ws = []
        for i in range(1, workspaces):
            uid = str(uuid.uuid4())
            ws_ids.append(uid)
            new_ws.append({**ws_row, "id": uid, "resource_id": f"seed-{i:05d}"})
        todo = credentials - len(existing)
        wrapped = 0
        with db.transaction() as session:
            if new_ws:
                session.execute(insert(ws_t), new_ws)
        for start in range(0, todo, BATCH):
            creds, versions = [], []
            for i in range(start, min(todo, start + BATCH)):
                ws_uid = ws_ids[i % len(ws_ids)]
                cred_uid = str(uuid.uuid4())
                creds.append(
                    {**cred_row, "id": cred_uid, "workspace_id": ws_uid, "resource_id": f"s-{i}"}
                )
                blob = envelope.seal(
                    plaintext,
                    EnvelopeBinding(ws_uid, cred_uid, ver_row["version"]),
                    primary,
                    random,
                )
                header = envelope.parse_header(blob)
                versions.append(
                    {
                        **ver_row,
                        "id": str(uuid.uuid4()),
                        "workspace_id": ws_uid,
                        "credential_id": cred_uid,
                        "envelope": blob,
                        "provider_id": header.provider_id,
                        "kek_version": header.kek_version,
                    }
                )
            with db.transaction() as session:
                session.execute(insert(cred_t), creds)
                session.execute(insert(ver_t), versions)
                wrapped += len(versions)
        with db.transaction() as session:
            version = primary.active_version()
            session.execute(
                update(KekState)
                .where(KekState.provider_id == primary.provider_id, KekState.kek_version == version)
                .values(wrap_count=KekState.wrap_count + wrapped)
            )
            total = len(session.execute(select(cred_t.c.id)).all())
            ws_total = len(session.execute(select(ws_t.c.id)).all())
    finally:
        db.dispose()
    return {"credentials": total, "workspaces": ws_total, "seeded": wrapped}
