"""The audit log: every event appended in the caller's transaction on a keyed hash
chain per workspace; reading, following, verifying, checkpointing and exporting it.
"""

from __future__ import annotations

from vault_server.audit._checkpoints import (
    AuditCheckpointer,
    CheckpointKeyError,
    CheckpointLog,
    CheckpointSigner,
    HeadRegression,
    create_signing_key,
    file_checkpoints,
    load_public_key,
    load_signing_key,
    read_checkpoints,
)
from vault_server.audit._log import GENESIS, AuditLog, AuditRecord, Outcome, event_name
from vault_server.audit._query import AuditQuery
from vault_server.audit._reader import AuditReader
from vault_server.audit._records import credential_record
from vault_server.audit._sink import AuditEventSink, Position, build_writer
from vault_server.audit._store import ChainStore
from vault_server.audit._verify import AuditVerifier, Finding, VerifyResult, verify_chains
from vault_server.audit._view import EventView

__all__ = [
    "GENESIS",
    "AuditCheckpointer",
    "AuditEventSink",
    "AuditLog",
    "AuditQuery",
    "AuditReader",
    "AuditRecord",
    "AuditVerifier",
    "ChainStore",
    "CheckpointKeyError",
    "CheckpointLog",
    "CheckpointSigner",
    "EventView",
    "Finding",
    "HeadRegression",
    "Outcome",
    "Position",
    "VerifyResult",
    "build_writer",
    "create_signing_key",
    "credential_record",
    "event_name",
    "file_checkpoints",
    "load_public_key",
    "load_signing_key",
    "read_checkpoints",
    "verify_chains",
]
