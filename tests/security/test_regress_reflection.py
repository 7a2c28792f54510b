"""Regression (issue 12): each plane's reflection lists only what it serves. The admin plane used
to list SigningService, whose every call there fails WRONG_LISTENER; the data plane (TCP and Unix
socket) offers no reflection at all."""

from __future__ import annotations

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc

from tests.support.errors import expect_error
from tests.support.vault import RunningVault
from vault_server.auth.rpc_roles import RULES, Plane

ADMIN_SERVICES = {
    "pipsync.vault.v1.WorkspaceService",
    "pipsync.vault.v1.CredentialService",
    "pipsync.vault.v1.AuditService",
    "pipsync.vault.v1.KeyService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
}


def _reflected(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = list(stub.ServerReflectionInfo(iter([req]), timeout=5))
    return {s.name for s in responses[0].list_services_response.service}


def test_admin_reflection_lists_exactly_what_the_admin_plane_serves(vault: RunningVault) -> None:
    listed = _reflected(vault.channel(vault.admin_target))
    assert listed == ADMIN_SERVICES
    # Every method of every listed API service is served on the admin plane ...
    for path, rule in RULES.items():
        service = path.split("/")[1]
        assert (service in listed) == (rule.plane is Plane.ADMIN), path
    # ... and what is not listed really fails there.
    err = expect_error(
        sgrpc.SigningServiceStub(vault.channel(vault.admin_target)).BeginRouting,
        spb.BeginRoutingRequest(credential="workspaces/a/credentials/b", reason="r"),
        metadata=vault.md("router"),
        timeout=5,
    )
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "WRONG_LISTENER")


def test_the_data_plane_offers_no_reflection(vault: RunningVault) -> None:
    for target in (vault.data_target, vault.socket_target):
        err = expect_error(_reflected, vault.channel(target))
        assert err.code == grpc.StatusCode.UNIMPLEMENTED
