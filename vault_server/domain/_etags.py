"""Etags (AIP-154): derived from a row's id and revision counter."""

from __future__ import annotations

import hashlib

from vault_server.core.errors import EtagMismatch


def etag(row_id: str, revision: int) -> str:
    return hashlib.sha256(f"{row_id}:{revision}".encode()).hexdigest()[:16]


def check_etag(given: str, row_id: str, revision: int) -> None:
    """An empty etag skips the check; a stale one is ABORTED ``ETAG_MISMATCH``."""
    if given and given != etag(row_id, revision):
        raise EtagMismatch("the resource changed since it was read; re-read and retry")
