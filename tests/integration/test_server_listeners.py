"""The foundation's server promises, against real listeners (Unix socket and TCP port 0)."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pipsync.vault.v1 import (
    credential_service_pb2,
    credential_service_pb2_grpc,
    signing_service_pb2,
    signing_service_pb2_grpc,
)
from pipsync.vault.v1 import (
    workspace_service_pb2 as ws_pb,
)
from pipsync.vault.v1 import (
    workspace_service_pb2_grpc as ws_grpc,
)

from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit

API = {
    "pipsync.vault.v1.WorkspaceService",
    "pipsync.vault.v1.CredentialService",
    "pipsync.vault.v1.SigningService",
    "pipsync.vault.v1.AuditService",
    "pipsync.vault.v1.KeyService",
}


def _health(target: str, service: str = "") -> int:
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def _reflected(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = list(stub.ServerReflectionInfo(iter([req]), timeout=5))
    return {s.name for s in responses[0].list_services_response.service}


def test_health_is_serving_on_every_listener(vault: RunningVault) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    assert _health(vault.health_target) == serving
    assert _health(vault.admin_target, "pipsync.vault.v1.SigningService") == serving
    assert _health(vault.socket_target) == serving


def test_reflection_lists_the_admin_services_on_the_admin_plane_only(vault: RunningVault) -> None:
    # SigningService is served on the data plane only (see tests/security/test_regress_reflection).
    assert API - {"pipsync.vault.v1.SigningService"} <= _reflected(
        vault.channel(vault.admin_target)
    )
    err = expect_error(_reflected, vault.channel(vault.data_target))
    assert err.code == grpc.StatusCode.UNIMPLEMENTED
    err = expect_error(_reflected, vault.channel(vault.health_target))
    assert err.code == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("target", ["admin", "socket"])
def test_unauthenticated_call_is_refused_with_error_info(vault: RunningVault, target: str) -> None:
    ch = vault.channel(vault.admin_target if target == "admin" else vault.socket_target)
    stub = ws_grpc.WorkspaceServiceStub(ch)
    for metadata in ([], [("authorization", "Bearer not-a-token")], [("authorization", "x")]):
        err = expect_error(
            stub.ListWorkspaces, ws_pb.ListWorkspacesRequest(), metadata=metadata, timeout=5
        )
        assert err.code == grpc.StatusCode.UNAUTHENTICATED
        assert err.reason == "AUTHENTICATION_REQUIRED"
        assert err.domains == ["vault.pipsync.dev"]


def test_wrong_role_is_permission_denied(vault: RunningVault) -> None:
    stub = ws_grpc.WorkspaceServiceStub(vault.channel())
    err = expect_error(
        stub.CreateWorkspace,
        ws_pb.CreateWorkspaceRequest(workspace_id="ws-x", reason="test"),
        metadata=vault.md("auditor"),
        timeout=5,
    )
    assert err.code == grpc.StatusCode.PERMISSION_DENIED
    assert err.reason == "ROLE_REQUIRED"


def test_admin_rpc_on_the_data_plane_is_wrong_listener(vault: RunningVault) -> None:
    stub = ws_grpc.WorkspaceServiceStub(vault.channel(vault.socket_target))
    err = expect_error(
        stub.ListWorkspaces, ws_pb.ListWorkspacesRequest(), metadata=vault.md(), timeout=5
    )
    assert err.code == grpc.StatusCode.PERMISSION_DENIED
    assert err.reason == "WRONG_LISTENER"
    signing = signing_service_pb2_grpc.SigningServiceStub(vault.channel(vault.admin_target))
    err = expect_error(
        signing.BeginRouting,
        signing_service_pb2.BeginRoutingRequest(
            credential="workspaces/ws-a/credentials/c", reason="r"
        ),
        metadata=vault.md("router"),
        timeout=5,
    )
    assert err.reason == "WRONG_LISTENER"


def test_unimplemented_rpc_carries_error_info(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """An RPC a build does not implement answers UNIMPLEMENTED with an ErrorInfo, through the
    real pipeline (every v1 RPC is implemented today, so serve a servicer with none filled in)."""
    from pipsync.vault.v1 import key_service_pb2, key_service_pb2_grpc

    from tests.support.vault import start_vault
    from vault_server.app import _servers as app_module
    from vault_server.rpc.servicers.unimplemented import fill_unimplemented

    class Bare(key_service_pb2_grpc.KeyServiceServicer):
        pass

    fill_unimplemented(Bare, key_service_pb2.DESCRIPTOR.services_by_name["KeyService"])
    monkeypatch.setattr(app_module, "KeyServicer", lambda *_args: Bare())
    vault = start_vault(tmp_path / "home")
    try:
        stub = key_service_pb2_grpc.KeyServiceStub(vault.channel())
        err = expect_error(
            stub.GetKeyStatus, key_service_pb2.GetKeyStatusRequest(), metadata=vault.md(), timeout=5
        )
        assert (err.code, err.reason) == (grpc.StatusCode.UNIMPLEMENTED, "NOT_IMPLEMENTED")
        assert err.metadata["method"] == "pipsync.vault.v1.KeyService/GetKeyStatus"
        assert err.domains == ["vault.pipsync.dev"]
    finally:
        vault.stop()


def test_missing_reason_is_invalid_argument_and_audited(vault: RunningVault) -> None:
    stub = ws_grpc.WorkspaceServiceStub(vault.channel())
    before = len(list(iter_audit(vault.app)))
    err = expect_error(
        stub.CreateWorkspace,
        ws_pb.CreateWorkspaceRequest(workspace_id="ws-r"),
        metadata=vault.md(),
        timeout=5,
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason == "REASON_REQUIRED"
    events = list(iter_audit(vault.app))[before:]
    assert [(e.action, e.outcome, e.error_reason, e.actor_id) for e in events] == [
        ("auth.denied", "denied", "REASON_REQUIRED", "security")
    ]
    # The metadata form of the reason is accepted.
    resp = stub.CreateWorkspace(
        ws_pb.CreateWorkspaceRequest(workspace_id="ws-r"),
        metadata=vault.md(x_pipvault_reason="ticket SEC-1"),
        timeout=5,
    )
    assert resp.workspace.name == "workspaces/ws-r"
    assert list(iter_audit(vault.app))[-1].reason == "ticket SEC-1"


def test_missing_deadline_is_refused(vault: RunningVault) -> None:
    stub = ws_grpc.WorkspaceServiceStub(vault.channel())
    err = expect_error(stub.ListWorkspaces, ws_pb.ListWorkspacesRequest(), metadata=vault.md())
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason == "DEADLINE_REQUIRED"


def test_oversized_message_is_refused(vault: RunningVault) -> None:
    stub = credential_service_pb2_grpc.CredentialServiceStub(vault.channel())
    huge = credential_service_pb2.CreateCredentialRequest(
        parent="workspaces/ws-a", reason="x" * (2 * 1024 * 1024)
    )
    err = expect_error(stub.CreateCredential, huge, metadata=vault.md(), timeout=5)
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_request_id_is_echoed_and_audited(vault: RunningVault) -> None:
    stub = ws_grpc.WorkspaceServiceStub(vault.channel())
    _, call = stub.CreateWorkspace.with_call(
        ws_pb.CreateWorkspaceRequest(workspace_id="ws-q", reason="r"),
        metadata=vault.md(x_request_id="req-123"),
        timeout=5,
    )
    # Echoed with the status (trailing metadata: one write with the response), not as a
    # separate initial-metadata send.
    assert ("x-request-id", "req-123") in list(call.trailing_metadata())
    assert list(iter_audit(vault.app))[-1].request_id == "req-123"


def test_request_id_is_echoed_on_errors_next_to_the_error_details(vault: RunningVault) -> None:
    stub = ws_grpc.WorkspaceServiceStub(vault.channel())
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateWorkspace(
            ws_pb.CreateWorkspaceRequest(workspace_id="Not A Valid Id", reason="r"),
            metadata=vault.md(x_request_id="req-456"),
            timeout=5,
        )
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailing = dict(err.trailing_metadata())
    assert trailing["x-request-id"] == "req-456"
    assert "grpc-status-details-bin" in trailing  # the ErrorInfo is still there


def test_graceful_stop_drains_in_flight_calls(
    vault: RunningVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = vault.app.workspaces
    original = manager.list

    def slow_list(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return original(*args, **kwargs)

    monkeypatch.setattr(manager, "list", slow_list)
    stub = ws_grpc.WorkspaceServiceStub(vault.channel())
    results: list[object] = []

    def call() -> None:
        try:
            results.append(
                stub.ListWorkspaces(ws_pb.ListWorkspacesRequest(), metadata=vault.md(), timeout=10)
            )
        except grpc.RpcError as exc:  # pragma: no cover - a failure shows in the assert below
            results.append(exc.code())

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    stopping = threading.Thread(target=lambda: vault.call(vault.app.servers.stop(5.0)))
    stopping.start()
    time.sleep(0.2)
    assert (
        _health(vault.health_target) != health_pb2.HealthCheckResponse.SERVING
        or not stopping.is_alive()
    )
    worker.join(10)
    stopping.join(10)
    assert len(results) == 1 and isinstance(results[0], ws_pb.ListWorkspacesResponse)
