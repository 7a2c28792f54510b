"""The vault-owned, strictly increasing nonce per venue key (Kraken), persisted in the signing
transaction so no two signatures ever share a nonce, across restarts and replicas."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault_server.storage.models import Credential, VenueNonce


def next_nonce(session: Session, cred: Credential, now_ms: int) -> int:
    row = session.execute(
        select(VenueNonce)
        .where(VenueNonce.workspace_id == cred.workspace_id, VenueNonce.credential_id == cred.id)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = VenueNonce(credential_id=cred.id, workspace_id=cred.workspace_id, last_nonce=0)
        session.add(row)
    nonce = max(row.last_nonce + 1, now_ms)
    row.last_nonce = nonce
    session.flush()
    return nonce
