"""Attack: principals of workspace B aim every RPC at workspace A's objects.

The RPC list comes from the service descriptors, so a new RPC is covered automatically: it must
answer NOT_FOUND or PERMISSION_DENIED to B, never data about A.
"""

from __future__ import annotations

import secrets

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from pipsync.vault.v1 import (
    audit_service_pb2,
    credential_service_pb2,
    key_service_pb2,
    signing_service_pb2,
    signing_service_pb2_grpc,
    workspace_service_pb2,
)

from tests.support.custody import make_workspace, onboard
from tests.support.signing_flow import place
from tests.support.vault import RunningVault, iter_audit

MODULES = (
    audit_service_pb2,
    credential_service_pb2,
    key_service_pb2,
    signing_service_pb2,
    workspace_service_pb2,
)
METHODS: list[MethodDescriptor] = [
    m for mod in MODULES for svc in mod.DESCRIPTOR.services_by_name.values() for m in svc.methods
]


def _message_class(method: MethodDescriptor, output: bool = False):  # type: ignore[no-untyped-def]
    desc = method.output_type if output else method.input_type
    for mod in MODULES:
        if desc.name in mod.DESCRIPTOR.message_types_by_name:
            return getattr(mod, desc.name)
    raise AssertionError(desc.full_name)


def _request(method: MethodDescriptor, targets: dict[str, str]):  # type: ignore[no-untyped-def]
    """A request naming A's objects in every field that names a resource."""
    cls = _message_class(method)
    req = cls()
    fields = {f.name for f in cls.DESCRIPTOR.fields}
    service = method.containing_service.name
    name_for = {
        "WorkspaceService": targets["workspace"],
        "CredentialService": targets["version"]
        if method.name == "PromoteCredentialVersion"
        else targets["credential"],
        "SigningService": targets["routing_context"],
        "AuditService": targets["workspace"],
        "KeyService": "",
    }[service]
    if "name" in fields:
        req.name = name_for
    if "parent" in fields:
        req.parent = targets["workspace"]
    if "credential" in fields:
        req.credential = targets["credential"]
    if "routing_context" in fields:
        req.routing_context = targets["routing_context"]
    if "workspace" in fields and isinstance(req.workspace, str):
        req.workspace = targets["workspace"]
    if "filter" in fields:
        req.filter.workspace = targets["workspace"]
    if "reason" in fields:
        req.reason = "cross-workspace probe"
    if "strategy_id" in fields:
        req.strategy_id = "probe"
    if "credential_id" in fields:
        req.credential_id = "probe"
    if "workspace_id" in fields:
        req.workspace_id = "ws-a"  # an existing id: must not reveal it either
    if "target_provider_id" in fields:
        req.target_provider_id = "local"
    if "api_key" in fields:
        req.api_key = "probe-key"
    if "requests" in fields:  # a batch: one item naming A's objects, as its single call would
        item = req.requests.add()
        sign = signing_service_pb2.DESCRIPTOR.services_by_name["SigningService"]
        single = method.name.removeprefix("Batch").replace("SignOrders", "SignOrder")
        item.CopyFrom(_request(sign.methods_by_name[single], targets))
        if single == "SignOrder":
            item.order.CopyFrom(place("LTCBTC"))  # a valid order: only the workspace refuses it
    return req


@pytest.fixture
def setup(vault: RunningVault) -> dict[str, str]:
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    cred = onboard(vault, "ws-a", "secret-cred", "A" * 24, secrets.token_hex(32))
    stub = signing_service_pb2_grpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        signing_service_pb2.BeginRoutingRequest(credential=cred.name, strategy_id="a", reason="a"),
        metadata=vault.md("router"), timeout=10,
    ).routing_context  # fmt: skip
    return {
        "workspace": "workspaces/ws-a",
        "credential": cred.name,
        "version": f"{cred.name}/versions/1",
        "routing_context": rc.name,
        "credential_uid": cred.uid,
    }


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_workspace_b_cannot_reach_workspace_a(
    vault: RunningVault, setup: dict[str, str], method: MethodDescriptor
) -> None:
    data_plane = method.containing_service.name == "SigningService"
    who = "router-b" if data_plane else "security-b"
    channel = vault.channel(vault.socket_target if data_plane else vault.admin_target)
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = _request(method, setup)
    response_cls = _message_class(method, output=True)
    if method.server_streaming:
        call = channel.unary_stream(path, request_serializer=type(request).SerializeToString,
                                    response_deserializer=response_cls.FromString)  # fmt: skip
    else:
        call = channel.unary_unary(path, request_serializer=type(request).SerializeToString,
                                   response_deserializer=response_cls.FromString)  # fmt: skip
    try:
        result = call(request, metadata=vault.md(who), timeout=10)
        responses = list(result) if method.server_streaming else [result]
    except grpc.RpcError as exc:
        assert exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED), (
            f"{path}: {exc.code()} {exc.details()}"
        )
        leaked = (exc.details() or "") + str(exc.trailing_metadata())
    else:
        leaked = "".join(str(r) for r in responses)
        if method.name.startswith("Batch"):  # the call succeeds; each of its items must not
            (batch,) = responses
            assert [r.error.code for r in batch.results] == [grpc.StatusCode.NOT_FOUND.value[0]]
        else:
            # Only a call that names no workspace may succeed, and then it must show none of A.
            assert method.name in ("ListWorkspaces",), f"{path} answered B with data"
    for needle in (
        "secret-cred",
        setup["credential_uid"],
        setup["routing_context"].rsplit("/", 1)[-1],
    ):
        assert needle not in leaked, f"{path} leaked {needle}"
    assert "ws-a" not in leaked or method.name != "ListWorkspaces"


def test_denials_are_audited(vault: RunningVault, setup: dict[str, str]) -> None:
    before = len([e for e in iter_audit(vault.app) if e.action == "auth.denied"])
    method = next(m for m in METHODS if m.name == "GetCredential")
    test_workspace_b_cannot_reach_workspace_a(vault, setup, method)
    denied = [e for e in iter_audit(vault.app) if e.action == "auth.denied"]
    assert len(denied) == before + 1 and denied[-1].actor_id == "security-b"
