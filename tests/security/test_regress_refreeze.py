"""Regression (issue 12): re-freezing a frozen workspace used to overwrite the freeze (reason,
expiry, actor) silently. Now it is refused FAILED_PRECONDITION WORKSPACE_ALREADY_FROZEN unless the
caller passes the etag of the current freeze, and both outcomes are audited."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit


def _freeze_events(vault: RunningVault) -> list[tuple[str, str, str, dict[str, str]]]:
    return [
        (e.outcome, e.actor_id, e.error_reason, dict(e.details))
        for e in iter_audit(vault.app)
        if e.action == "workspace.freeze"
    ]


def test_refreeze_is_refused_without_the_etag_and_audited(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    stub = rpc.WorkspaceServiceStub(vault.channel())
    stub.CreateWorkspace(
        pb.CreateWorkspaceRequest(workspace_id="ws-a", reason="setup"),
        metadata=vault.md(),
        timeout=5,
    )
    first = stub.FreezeWorkspace(
        pb.FreezeWorkspaceRequest(
            name="workspaces/ws-a", reason="incident 1", ttl=duration_pb2.Duration(seconds=1800)
        ),
        metadata=vault.md("security"),
        timeout=5,
    ).workspace

    # Another operator, unaware of the freeze, tries to freeze with a shorter expiry.
    err = expect_error(
        stub.FreezeWorkspace,
        pb.FreezeWorkspaceRequest(
            name="workspaces/ws-a", reason="incident 2", ttl=duration_pb2.Duration(seconds=5)
        ),
        metadata=vault.md("security-a"),
        timeout=5,
    )
    assert (err.code, err.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "WORKSPACE_ALREADY_FROZEN",
    )
    kept = stub.GetWorkspace(
        pb.GetWorkspaceRequest(name="workspaces/ws-a"), metadata=vault.md(), timeout=5
    ).workspace
    assert (kept.freeze_reason, kept.frozen_by, kept.etag) == ("incident 1", "security", first.etag)
    assert kept.freeze_expire_time == first.freeze_expire_time

    stale = expect_error(
        stub.FreezeWorkspace,
        pb.FreezeWorkspaceRequest(name="workspaces/ws-a", reason="x", etag="0" * 16),
        metadata=vault.md("security-a"),
        timeout=5,
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")

    # With the etag of the freeze it read, the operator may replace it on purpose.
    replaced = stub.FreezeWorkspace(
        pb.FreezeWorkspaceRequest(name="workspaces/ws-a", reason="incident 2", etag=first.etag),
        metadata=vault.md("security-a"),
        timeout=5,
    ).workspace
    assert (replaced.freeze_reason, replaced.frozen_by) == ("incident 2", "security-a")
    assert not replaced.HasField("freeze_expire_time")

    events = _freeze_events(vault)
    assert [(o, a, r) for o, a, r, _ in events] == [
        ("success", "security", ""),
        ("denied", "security-a", "WORKSPACE_ALREADY_FROZEN"),
        ("denied", "security-a", "ETAG_MISMATCH"),
        ("success", "security-a", ""),
    ]
    assert events[1][3]["previousFrozenBy"] == "security" and events[1][3]["previousExpireTime"]
    assert events[3][3]["previousFrozenBy"] == "security"
    assert "previousFrozenBy" not in events[0][3]
