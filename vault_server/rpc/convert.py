"""Domain/storage objects -> API messages. Metadata only: nothing here can see secret bytes."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from pipsync.vault.v1 import workspace_pb2

from vault_server.domain import etag, workspace_name
from vault_server.workspaces import WorkspaceView, is_frozen


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def workspace(row: WorkspaceView, now: dt.datetime) -> workspace_pb2.Workspace:
    frozen = is_frozen(row, now)
    msg = workspace_pb2.Workspace(
        name=workspace_name(row.resource_id),
        uid=row.id,
        display_name=row.display_name,
        state=workspace_pb2.Workspace.STATE_FROZEN
        if frozen
        else workspace_pb2.Workspace.STATE_ACTIVE,
        freeze_reason=row.freeze_reason if frozen else "",
        frozen_by=row.frozen_by if frozen else "",
        etag=etag(row.id, row.revision),
    )
    for field, value in (
        ("create_time", row.create_time),
        ("update_time", row.update_time),
        ("freeze_time", row.freeze_time if frozen else None),
        ("freeze_expire_time", row.freeze_expire_time if frozen else None),
    ):
        ts = timestamp(value)
        if ts is not None:
            getattr(msg, field).CopyFrom(ts)
    return msg
