"""Synchronous WorkspaceService, AuditService and KeyService methods."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from typing import Unpack

from pipsync.vault.v1 import audit_pb2, workspace_pb2
from pipsync.vault.v1 import audit_service_pb2 as audit_svc
from pipsync.vault.v1 import key_service_pb2 as key_svc
from pipsync.vault.v1 import workspace_service_pb2 as ws_svc

from pipvault_client import _requests as build
from pipvault_client import _rpc
from pipvault_client._base import CallOptions
from pipvault_client._requests import DurationLike, OutcomeLike
from pipvault_client._sync_core import SyncTransport


class AdminMethods(SyncTransport):
    """Workspaces (kill switch), audit log and key-encryption keys."""

    # WorkspaceService ------------------------------------------------------------------------

    def create_workspace(
        self,
        workspace_id: str,
        display_name: str = "",
        reason: str = "",
        **options: Unpack[CallOptions],
    ) -> workspace_pb2.Workspace:
        """Creates ``workspaces/{workspace_id}``. ``reason`` is required."""
        request = build.create_workspace(workspace_id, display_name, reason)
        return self._unary(_rpc.CREATE_WORKSPACE, request, options, reason).workspace

    def get_workspace(self, name: str, **options: Unpack[CallOptions]) -> workspace_pb2.Workspace:
        """Returns ``workspaces/{workspace}``."""
        request = ws_svc.GetWorkspaceRequest(name=name)
        return self._unary(_rpc.GET_WORKSPACE, request, options).workspace

    def list_workspaces(
        self, page_size: int = 0, **options: Unpack[CallOptions]
    ) -> Iterator[workspace_pb2.Workspace]:
        """Iterates over the workspaces the caller may see, following page tokens."""
        size = build.page_size(page_size)
        return self._paginate(
            _rpc.LIST_WORKSPACES,
            lambda token: ws_svc.ListWorkspacesRequest(page_size=size, page_token=token),
            lambda resp: (resp.workspaces, resp.next_page_token),
            options,
        )

    def freeze_workspace(
        self,
        name: str,
        reason: str = "",
        ttl: DurationLike | None = None,
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> workspace_pb2.Workspace:
        """Engages the kill switch, until unfrozen or ``ttl`` passes. ``reason`` is required."""
        request = build.freeze_workspace(name, reason, ttl, etag)
        return self._unary(_rpc.FREEZE_WORKSPACE, request, options, reason).workspace

    def unfreeze_workspace(
        self, name: str, reason: str = "", etag: str = "", **options: Unpack[CallOptions]
    ) -> workspace_pb2.Workspace:
        """Lifts the kill switch. ``reason`` is required."""
        request = ws_svc.UnfreezeWorkspaceRequest(name=name, reason=reason, etag=etag)
        return self._unary(_rpc.UNFREEZE_WORKSPACE, request, options, reason).workspace

    # AuditService ----------------------------------------------------------------------------

    def list_audit_events(
        self,
        *,
        workspace: str = "",
        credential: str = "",
        actor: str = "",
        action: str = "",
        outcome: OutcomeLike = audit_pb2.AuditEvent.OUTCOME_UNSPECIFIED,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
        page_size: int = 0,
        **options: Unpack[CallOptions],
    ) -> Iterator[audit_pb2.AuditEvent]:
        """Iterates over matching audit events, oldest first, following page tokens."""
        size = build.page_size(page_size)
        flt = build.audit_filter(
            workspace=workspace,
            credential=credential,
            actor=actor,
            action=action,
            outcome=outcome,
            start_time=start_time,
            end_time=end_time,
        )
        return self._paginate(
            _rpc.LIST_AUDIT_EVENTS,
            lambda token: audit_svc.ListAuditEventsRequest(
                filter=flt, page_size=size, page_token=token
            ),
            lambda resp: (resp.events, resp.next_page_token),
            options,
        )

    def stream_audit_events(
        self,
        *,
        workspace: str = "",
        credential: str = "",
        actor: str = "",
        action: str = "",
        outcome: OutcomeLike = audit_pb2.AuditEvent.OUTCOME_UNSPECIFIED,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
        follow: bool = False,
        resume_after: Sequence[str] = (),
        **options: Unpack[CallOptions],
    ) -> Iterator[audit_pb2.AuditEvent]:
        """Streams matching events: the backlog, then (``follow``) new ones, until the stream
        ends or its deadline passes (DeadlineExceededError). To keep tailing, reopen it with
        ``resume_after`` = the last event name received from each chain: it continues strictly
        after those events (no gap, no duplicate). Closing the iterator cancels the stream."""
        flt = build.audit_filter(
            workspace=workspace,
            credential=credential,
            actor=actor,
            action=action,
            outcome=outcome,
            start_time=start_time,
            end_time=end_time,
        )
        request = audit_svc.StreamAuditEventsRequest(
            filter=flt, follow=follow, resume_after=list(resume_after)
        )
        return _events(self._stream(_rpc.STREAM_AUDIT_EVENTS, request, options))

    def verify_audit_log(
        self, workspace: str = "", **options: Unpack[CallOptions]
    ) -> audit_svc.VerifyAuditLogResponse:
        """Verifies the hash chains of one workspace, or of all the caller may read."""
        request = audit_svc.VerifyAuditLogRequest(workspace=workspace)
        return self._unary(_rpc.VERIFY_AUDIT_LOG, request, options)

    # KeyService ------------------------------------------------------------------------------

    def get_key_status(self, **options: Unpack[CallOptions]) -> key_svc.GetKeyStatusResponse:
        """Providers, KEK versions, wrap counters and the ciphertext census."""
        return self._unary(_rpc.GET_KEY_STATUS, key_svc.GetKeyStatusRequest(), options)

    def rotate_key_encryption_key(
        self, provider_id: str = "", reason: str = "", **options: Unpack[CallOptions]
    ) -> key_svc.RotateKeyEncryptionKeyResponse:
        """Adds a KEK version to ``provider_id`` (default: the primary provider) and rewraps
        data keys. ``reason`` is required."""
        request = key_svc.RotateKeyEncryptionKeyRequest(provider_id=provider_id, reason=reason)
        return self._unary(_rpc.ROTATE_KEY_ENCRYPTION_KEY, request, options, reason)

    def migrate_keys(
        self,
        target_provider_id: str,
        batch_size: int = 0,
        reason: str = "",
        **options: Unpack[CallOptions],
    ) -> Iterator[key_svc.MigrateKeysResponse]:
        """Moves every data key to ``target_provider_id``, yielding progress. Resumable: if the
        stream ends early (e.g. its deadline), call again. Give a ``timeout`` that fits.
        ``reason`` is required."""
        request = build.migrate_keys(target_provider_id, batch_size, reason)
        return self._stream(_rpc.MIGRATE_KEYS, request, options, reason)


def _events(
    responses: Iterator[audit_svc.StreamAuditEventsResponse],
) -> Iterator[audit_pb2.AuditEvent]:
    try:
        for response in responses:
            yield response.event
    finally:
        close = getattr(responses, "close", None)
        if close is not None:
            close()
