"""WorkspaceService on SQLite and PostgreSQL: every RPC works and writes exactly one event."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from pipsync.vault.v1 import workspace_pb2
from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit


def _events(vault: RunningVault) -> list[tuple[str, str, str, str]]:
    return [(e.action, e.outcome, e.actor_id, e.workspace) for e in iter_audit(vault.app)]


def test_workspace_lifecycle_one_event_per_call(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    stub = rpc.WorkspaceServiceStub(vault.channel())
    md = vault.md("security")

    created = stub.CreateWorkspace(
        pb.CreateWorkspaceRequest(
            workspace_id="ws-a",
            workspace=workspace_pb2.Workspace(display_name="Desk A"),
            reason="new desk",
        ),
        metadata=md,
        timeout=5,
    ).workspace
    assert created.name == "workspaces/ws-a" and created.display_name == "Desk A"
    assert created.state == workspace_pb2.Workspace.STATE_ACTIVE and created.etag

    got = stub.GetWorkspace(pb.GetWorkspaceRequest(name="workspaces/ws-a"), metadata=md, timeout=5)
    assert got.workspace == created

    frozen = stub.FreezeWorkspace(
        pb.FreezeWorkspaceRequest(name="workspaces/ws-a", reason="incident 42", etag=created.etag),
        metadata=md,
        timeout=5,
    ).workspace
    assert frozen.state == workspace_pb2.Workspace.STATE_FROZEN
    assert frozen.freeze_reason == "incident 42" and frozen.frozen_by == "security"
    assert frozen.etag != created.etag

    stale = expect_error(
        stub.UnfreezeWorkspace,
        pb.UnfreezeWorkspaceRequest(name="workspaces/ws-a", reason="ok", etag=created.etag),
        metadata=md,
        timeout=5,
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")

    thawed = stub.UnfreezeWorkspace(
        pb.UnfreezeWorkspaceRequest(name="workspaces/ws-a", reason="resolved", etag=frozen.etag),
        metadata=md,
        timeout=5,
    ).workspace
    assert thawed.state == workspace_pb2.Workspace.STATE_ACTIVE and not thawed.freeze_reason

    listed = stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=md, timeout=5)
    assert [w.name for w in listed.workspaces] == ["workspaces/ws-a"]

    assert _events(vault) == [
        ("workspace.create", "success", "security", "workspaces/ws-a"),
        ("workspace.get", "success", "security", "workspaces/ws-a"),
        ("workspace.freeze", "success", "security", "workspaces/ws-a"),
        ("workspace.unfreeze", "success", "security", "workspaces/ws-a"),
        ("workspace.list", "success", "security", ""),
    ]


def test_failures_lose_nothing(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    stub = rpc.WorkspaceServiceStub(vault.channel())
    md = vault.md("security")
    stub.CreateWorkspace(
        pb.CreateWorkspaceRequest(workspace_id="ws-a", reason="r"), metadata=md, timeout=5
    )
    before = _events(vault)

    dup = expect_error(
        stub.CreateWorkspace,
        pb.CreateWorkspaceRequest(workspace_id="ws-a", reason="r"),
        metadata=md,
        timeout=5,
    )
    assert (dup.code, dup.reason) == (grpc.StatusCode.ALREADY_EXISTS, "RESOURCE_ALREADY_EXISTS")
    for bad in ("", "A", "1abc", "ab_", "a" * 64, "ws-", "workspaces/x"):
        err = expect_error(
            stub.CreateWorkspace,
            pb.CreateWorkspaceRequest(workspace_id=bad, reason="r"),
            metadata=md,
            timeout=5,
        )
        assert (err.code, err.reason, err.metadata["field"]) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            "workspace_id",
        )
    not_frozen = expect_error(
        stub.UnfreezeWorkspace,
        pb.UnfreezeWorkspaceRequest(name="workspaces/ws-a", reason="r"),
        metadata=md,
        timeout=5,
    )
    assert not_frozen.reason == "WORKSPACE_NOT_FROZEN"
    bad_ttl = expect_error(
        stub.FreezeWorkspace,
        pb.FreezeWorkspaceRequest(
            name="workspaces/ws-a", reason="r", ttl=duration_pb2.Duration(seconds=-5)
        ),
        metadata=md,
        timeout=5,
    )
    assert bad_ttl.reason == "INVALID_FIELD"
    # Domain refusals wrote nothing: the event list is unchanged and the workspace is intact.
    assert _events(vault) == before
    ws = stub.GetWorkspace(
        pb.GetWorkspaceRequest(name="workspaces/ws-a"), metadata=md, timeout=5
    ).workspace
    assert ws.state == workspace_pb2.Workspace.STATE_ACTIVE


def test_other_workspace_is_not_found_and_listing_is_scoped(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    stub = rpc.WorkspaceServiceStub(vault.channel())
    for ws in ("ws-a", "ws-b"):
        stub.CreateWorkspace(
            pb.CreateWorkspaceRequest(workspace_id=ws, reason="r"), metadata=vault.md(), timeout=5
        )
    mine = stub.ListWorkspaces(
        pb.ListWorkspacesRequest(), metadata=vault.md("security-a"), timeout=5
    )
    assert [w.name for w in mine.workspaces] == ["workspaces/ws-a"]
    foreign = expect_error(
        stub.GetWorkspace,
        pb.GetWorkspaceRequest(name="workspaces/ws-b"),
        metadata=vault.md("security-a"),
        timeout=5,
    )
    missing = expect_error(
        stub.GetWorkspace,
        pb.GetWorkspaceRequest(name="workspaces/ws-zz"),
        metadata=vault.md("security-a"),
        timeout=5,
    )
    assert (
        (foreign.code, foreign.reason)
        == (missing.code, missing.reason)
        == (grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")
    )
    frz = expect_error(
        stub.FreezeWorkspace,
        pb.FreezeWorkspaceRequest(name="workspaces/ws-b", reason="x"),
        metadata=vault.md("security-a"),
        timeout=5,
    )
    assert frz.code == grpc.StatusCode.NOT_FOUND
    denied = [e for e in iter_audit(vault.app) if e.action == "auth.denied"]
    assert len(denied) >= 2 and all(e.outcome == "denied" for e in denied)


def test_pagination_follows_tokens_and_rejects_forged_ones(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    stub = rpc.WorkspaceServiceStub(vault.channel())
    names = [f"ws-{i:02d}" for i in range(7)]
    for ws in names:
        stub.CreateWorkspace(
            pb.CreateWorkspaceRequest(workspace_id=ws, reason="r"), metadata=vault.md(), timeout=5
        )
    seen, token = [], ""
    while True:
        page = stub.ListWorkspaces(
            pb.ListWorkspacesRequest(page_size=3, page_token=token), metadata=vault.md(), timeout=5
        )
        seen += [w.name.split("/")[1] for w in page.workspaces]
        token = page.next_page_token
        if not token:
            break
    assert seen == names
    first = stub.ListWorkspaces(
        pb.ListWorkspacesRequest(page_size=3), metadata=vault.md(), timeout=5
    )
    forged = first.next_page_token[:-2] + (
        "AA" if not first.next_page_token.endswith("AA") else "BB"
    )
    for bad in (forged, "garbage", "x" * 5000):
        err = expect_error(
            stub.ListWorkspaces,
            pb.ListWorkspacesRequest(page_size=3, page_token=bad),
            metadata=vault.md(),
            timeout=5,
        )
        assert err.reason in ("INVALID_PAGE_TOKEN",)
    # A token issued to one caller scope does not work for another.
    err = expect_error(
        stub.ListWorkspaces,
        pb.ListWorkspacesRequest(page_size=3, page_token=first.next_page_token),
        metadata=vault.md("security-a"),
        timeout=5,
    )
    assert err.reason == "INVALID_PAGE_TOKEN"
    neg = expect_error(
        stub.ListWorkspaces, pb.ListWorkspacesRequest(page_size=-1), metadata=vault.md(), timeout=5
    )
    assert neg.metadata["field"] == "page_size"
