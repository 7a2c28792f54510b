"""Paging the on-call: the outbox pages are queued in (in the transaction that
decides them), and the decisions to page for integrity failures.
"""

from __future__ import annotations

from vault_server.paging._audit_breaks import CLI as FOUND_BY_CLI
from vault_server.paging._audit_breaks import RPC as FOUND_BY_RPC
from vault_server.paging._audit_breaks import AuditIntegrityPager, ScheduledVerification
from vault_server.paging._integrity_pages import IntegrityPager
from vault_server.paging._outbox import Pager, SqlOutbox

__all__ = [
    "FOUND_BY_CLI",
    "FOUND_BY_RPC",
    "AuditIntegrityPager",
    "IntegrityPager",
    "Pager",
    "ScheduledVerification",
    "SqlOutbox",
]
