"""WorkspaceService, AuditService and KeyService methods, written once for both clients."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Unpack

from pipsync.vault.v1 import audit_pb2, workspace_pb2
from pipsync.vault.v1 import audit_service_pb2 as audit_svc
from pipsync.vault.v1 import key_service_pb2 as key_svc
from pipsync.vault.v1 import workspace_service_pb2 as ws_svc

from pipvault_client import _requests as build
from pipvault_client import _rpc
from pipvault_client._base import CallOptions
from pipvault_client._calls import Pages, Stream, Unary, whole
from pipvault_client._methods import list_rpc, stream_rpc, unary_rpc
from pipvault_client._requests import DurationLike, OutcomeLike


class AdminMethods:
    """Workspaces (kill switch), audit log and key-encryption keys."""

    # WorkspaceService ------------------------------------------------------------------------

    @unary_rpc
    def create_workspace(
        self,
        workspace_id: str,
        display_name: str = "",
        reason: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[workspace_pb2.Workspace]:
        """Creates ``workspaces/{workspace_id}``. ``reason`` is required."""
        request = ws_svc.CreateWorkspaceRequest(
            workspace_id=workspace_id,
            workspace=workspace_pb2.Workspace(display_name=display_name),
            reason=reason,
        )
        return Unary(_rpc.CREATE_WORKSPACE, request, _workspace, options, reason)

    @unary_rpc
    def get_workspace(
        self, name: str, **options: Unpack[CallOptions]
    ) -> Unary[workspace_pb2.Workspace]:
        """Returns ``workspaces/{workspace}``."""
        request = ws_svc.GetWorkspaceRequest(name=name)
        return Unary(_rpc.GET_WORKSPACE, request, _workspace, options)

    @list_rpc
    def list_workspaces(
        self, page_size: int = 0, **options: Unpack[CallOptions]
    ) -> Pages[workspace_pb2.Workspace]:
        """Iterates over the workspaces the caller may see, following page tokens."""
        size = build.page_size(page_size)
        return Pages(
            _rpc.LIST_WORKSPACES,
            lambda token: ws_svc.ListWorkspacesRequest(page_size=size, page_token=token),
            lambda resp: (resp.workspaces, resp.next_page_token),
            options,
        )

    @unary_rpc
    def freeze_workspace(
        self,
        name: str,
        reason: str = "",
        ttl: DurationLike | None = None,
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[workspace_pb2.Workspace]:
        """Engages the kill switch, until unfrozen or ``ttl`` passes. ``reason`` is required."""
        request = ws_svc.FreezeWorkspaceRequest(
            name=name, reason=reason, ttl=build.duration(ttl, "ttl"), etag=etag
        )
        return Unary(_rpc.FREEZE_WORKSPACE, request, _workspace, options, reason)

    @unary_rpc
    def unfreeze_workspace(
        self, name: str, reason: str = "", etag: str = "", **options: Unpack[CallOptions]
    ) -> Unary[workspace_pb2.Workspace]:
        """Lifts the kill switch. ``reason`` is required."""
        request = ws_svc.UnfreezeWorkspaceRequest(name=name, reason=reason, etag=etag)
        return Unary(_rpc.UNFREEZE_WORKSPACE, request, _workspace, options, reason)

    # AuditService ----------------------------------------------------------------------------

    @list_rpc
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
    ) -> Pages[audit_pb2.AuditEvent]:
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
        return Pages(
            _rpc.LIST_AUDIT_EVENTS,
            lambda token: audit_svc.ListAuditEventsRequest(
                filter=flt, page_size=size, page_token=token
            ),
            lambda resp: (resp.events, resp.next_page_token),
            options,
        )

    @stream_rpc
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
    ) -> Stream[audit_pb2.AuditEvent]:
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
        return Stream(_rpc.STREAM_AUDIT_EVENTS, request, lambda resp: resp.event, options)

    @unary_rpc
    def verify_audit_log(
        self, workspace: str = "", **options: Unpack[CallOptions]
    ) -> Unary[audit_svc.VerifyAuditLogResponse]:
        """Verifies the hash chains of one workspace, or of all the caller may read."""
        request = audit_svc.VerifyAuditLogRequest(workspace=workspace)
        return Unary(_rpc.VERIFY_AUDIT_LOG, request, whole, options)

    # KeyService ------------------------------------------------------------------------------

    @unary_rpc
    def get_key_status(self, **options: Unpack[CallOptions]) -> Unary[key_svc.GetKeyStatusResponse]:
        """Providers, KEK versions, wrap counters and the ciphertext census."""
        return Unary(_rpc.GET_KEY_STATUS, key_svc.GetKeyStatusRequest(), whole, options)

    @unary_rpc
    def rotate_key_encryption_key(
        self, provider_id: str = "", reason: str = "", **options: Unpack[CallOptions]
    ) -> Unary[key_svc.RotateKeyEncryptionKeyResponse]:
        """Adds a KEK version to ``provider_id`` (default: the primary provider) and rewraps
        data keys. ``reason`` is required."""
        request = key_svc.RotateKeyEncryptionKeyRequest(provider_id=provider_id, reason=reason)
        return Unary(_rpc.ROTATE_KEY_ENCRYPTION_KEY, request, whole, options, reason)

    @stream_rpc
    def migrate_keys(
        self,
        target_provider_id: str,
        batch_size: int = 0,
        reason: str = "",
        **options: Unpack[CallOptions],
    ) -> Stream[key_svc.MigrateKeysResponse]:
        """Moves every data key to ``target_provider_id``, yielding progress. Resumable: if the
        stream ends early (e.g. its deadline), call again. Give a ``timeout`` that fits.
        ``reason`` is required."""
        if isinstance(batch_size, bool) or not 0 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 0 and 1000")
        if not target_provider_id:
            raise ValueError("target_provider_id is required")
        request = key_svc.MigrateKeysRequest(
            target_provider_id=target_provider_id, batch_size=batch_size, reason=reason
        )
        return Stream(_rpc.MIGRATE_KEYS, request, whole, options, reason)


_WorkspaceResponse = (
    ws_svc.CreateWorkspaceResponse
    | ws_svc.GetWorkspaceResponse
    | ws_svc.FreezeWorkspaceResponse
    | ws_svc.UnfreezeWorkspaceResponse
)


def _workspace(response: _WorkspaceResponse) -> workspace_pb2.Workspace:
    return response.workspace
