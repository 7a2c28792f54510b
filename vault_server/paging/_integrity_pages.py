"""Pages the on-call when a ciphertext fails its integrity check (DESIGN.md §4, §6).

A wrapped key that does not authenticate (wrong or replaced KEK, a row copied or tampered with)
is never an operational hiccup: besides the audit event the failing call writes, ``KeyManager``
reports it here and a page goes into the outbox in its own transaction, deduplicated per
credential and bucket like every page. Identifiers only, never key material.

The page is written by one background thread, not by the failing call: the failure may surface
inside the caller's transaction (SQLite allows one writer), and the refusal must not wait on it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.observability.logging import get_logger
from vault_server.paging._outbox import Pager
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, Workspace
from vault_server.storage.tenant import bind_workspace

_log = get_logger(__name__)


class IntegrityPager:
    """``KeyManager``'s integrity-failure callback: one deduplicated page per credential."""

    def __init__(self, db: Database, pager: Pager) -> None:
        self._db = db
        self._pager = pager
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="integrity-page")

    def __call__(
        self, binding: EnvelopeBinding, operation: str, provider_id: str, kek_version: int
    ) -> Future[None]:
        return self._worker.submit(self._page, binding, operation, provider_id, kek_version)

    def _page(
        self, binding: EnvelopeBinding, operation: str, provider_id: str, kek_version: int
    ) -> None:
        try:
            with self._db.transaction() as session:
                bind_workspace(session, binding.workspace_id)
                ws = session.get(Workspace, binding.workspace_id)
                cred = session.get(Credential, binding.credential_id)
                workspace = f"workspaces/{ws.resource_id}" if ws is not None else ""
                credential = (
                    f"{workspace}/credentials/{cred.resource_id}" if ws and cred else workspace
                )
                self._pager.page_integrity_failure(
                    session,
                    workspace_id=binding.workspace_id,  # the bound workspace (row-level security)
                    workspace=workspace,
                    credential=credential,
                    credential_version=binding.credential_version,
                    provider_id=provider_id,
                    kek_version=kek_version,
                    operation=operation,
                )
        except Exception as exc:  # the integrity failure stands; the page is best effort here
            _log.error("keys.integrity_page_failed", error=type(exc).__name__)
