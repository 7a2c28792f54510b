"""One typed descriptor per RPC: path, message types, streaming, and its safety class.

The table is checked against the generated service descriptors at import time, so a proto change
that renames an RPC or changes its types fails loudly instead of calling the wrong method.
"""

from __future__ import annotations

import dataclasses
from typing import Generic, TypeVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from pipsync.vault.v1 import (
    audit_service_pb2 as audit_svc,
)
from pipsync.vault.v1 import (
    credential_service_pb2 as cred_svc,
)
from pipsync.vault.v1 import (
    key_service_pb2 as key_svc,
)
from pipsync.vault.v1 import (
    signing_service_pb2 as sign_svc,
)
from pipsync.vault.v1 import (
    workspace_service_pb2 as ws_svc,
)

ReqT = TypeVar("ReqT", bound=_message.Message)
RespT = TypeVar("RespT", bound=_message.Message)


@dataclasses.dataclass(frozen=True, slots=True)
class RpcSpec(Generic[ReqT, RespT]):
    """One RPC.

    Attributes:
        path: ``/pipsync.vault.v1.Service/Method``.
        request_type: request message class.
        response_type: response message class.
        server_streaming: the response is a stream.
        read_only: changes nothing on the server, so UNAVAILABLE may be retried.
        reason_required: mutating or credential-touching: a non-empty reason is required.
    """

    path: str
    request_type: type[ReqT]
    response_type: type[RespT]
    server_streaming: bool
    read_only: bool
    reason_required: bool

    @property
    def name(self) -> str:
        """The method name, e.g. ``GetWorkspace``."""
        return self.path.rsplit("/", 1)[-1]


def _spec(
    file: _descriptor.FileDescriptor,
    service: str,
    method: str,
    request_type: type[ReqT],
    response_type: type[RespT],
    *,
    read_only: bool,
) -> RpcSpec[ReqT, RespT]:
    desc = file.services_by_name[service].methods_by_name[method]
    if (
        desc.input_type.full_name != request_type.DESCRIPTOR.full_name
        or desc.output_type.full_name != response_type.DESCRIPTOR.full_name
    ):
        raise RuntimeError(f"generated stubs disagree with the client for {method}")
    return RpcSpec(
        path=f"/{desc.containing_service.full_name}/{desc.name}",
        request_type=request_type,
        response_type=response_type,
        server_streaming=desc.server_streaming,
        read_only=read_only,
        reason_required="reason" in request_type.DESCRIPTOR.fields_by_name,
    )


_WS = ws_svc.DESCRIPTOR
CREATE_WORKSPACE = _spec(
    _WS,
    "WorkspaceService",
    "CreateWorkspace",
    ws_svc.CreateWorkspaceRequest,
    ws_svc.CreateWorkspaceResponse,
    read_only=False,
)
GET_WORKSPACE = _spec(
    _WS,
    "WorkspaceService",
    "GetWorkspace",
    ws_svc.GetWorkspaceRequest,
    ws_svc.GetWorkspaceResponse,
    read_only=True,
)
LIST_WORKSPACES = _spec(
    _WS,
    "WorkspaceService",
    "ListWorkspaces",
    ws_svc.ListWorkspacesRequest,
    ws_svc.ListWorkspacesResponse,
    read_only=True,
)
FREEZE_WORKSPACE = _spec(
    _WS,
    "WorkspaceService",
    "FreezeWorkspace",
    ws_svc.FreezeWorkspaceRequest,
    ws_svc.FreezeWorkspaceResponse,
    read_only=False,
)
UNFREEZE_WORKSPACE = _spec(
    _WS,
    "WorkspaceService",
    "UnfreezeWorkspace",
    ws_svc.UnfreezeWorkspaceRequest,
    ws_svc.UnfreezeWorkspaceResponse,
    read_only=False,
)

_CR = cred_svc.DESCRIPTOR
CREATE_CREDENTIAL = _spec(
    _CR,
    "CredentialService",
    "CreateCredential",
    cred_svc.CreateCredentialRequest,
    cred_svc.CreateCredentialResponse,
    read_only=False,
)
GENERATE_CREDENTIAL_KEY = _spec(
    _CR,
    "CredentialService",
    "GenerateCredentialKey",
    cred_svc.GenerateCredentialKeyRequest,
    cred_svc.GenerateCredentialKeyResponse,
    read_only=False,
)
ATTACH_CREDENTIAL_API_KEY = _spec(
    _CR,
    "CredentialService",
    "AttachCredentialApiKey",
    cred_svc.AttachCredentialApiKeyRequest,
    cred_svc.AttachCredentialApiKeyResponse,
    read_only=False,
)
GET_CREDENTIAL = _spec(
    _CR,
    "CredentialService",
    "GetCredential",
    cred_svc.GetCredentialRequest,
    cred_svc.GetCredentialResponse,
    read_only=True,
)
LIST_CREDENTIALS = _spec(
    _CR,
    "CredentialService",
    "ListCredentials",
    cred_svc.ListCredentialsRequest,
    cred_svc.ListCredentialsResponse,
    read_only=True,
)
ROTATE_CREDENTIAL = _spec(
    _CR,
    "CredentialService",
    "RotateCredential",
    cred_svc.RotateCredentialRequest,
    cred_svc.RotateCredentialResponse,
    read_only=False,
)
PROMOTE_CREDENTIAL_VERSION = _spec(
    _CR,
    "CredentialService",
    "PromoteCredentialVersion",
    cred_svc.PromoteCredentialVersionRequest,
    cred_svc.PromoteCredentialVersionResponse,
    read_only=False,
)
REVOKE_CREDENTIAL = _spec(
    _CR,
    "CredentialService",
    "RevokeCredential",
    cred_svc.RevokeCredentialRequest,
    cred_svc.RevokeCredentialResponse,
    read_only=False,
)
ATTEST_CREDENTIAL_PERMISSIONS = _spec(
    _CR,
    "CredentialService",
    "AttestCredentialPermissions",
    cred_svc.AttestCredentialPermissionsRequest,
    cred_svc.AttestCredentialPermissionsResponse,
    read_only=False,
)
UPDATE_CREDENTIAL_POLICY = _spec(
    _CR,
    "CredentialService",
    "UpdateCredentialPolicy",
    cred_svc.UpdateCredentialPolicyRequest,
    cred_svc.UpdateCredentialPolicyResponse,
    read_only=False,
)
RESET_CREDENTIAL_SESSION = _spec(
    _CR,
    "CredentialService",
    "ResetCredentialSession",
    cred_svc.ResetCredentialSessionRequest,
    cred_svc.ResetCredentialSessionResponse,
    read_only=False,
)
SET_PLATFORM_APPLICATION = _spec(
    _CR,
    "CredentialService",
    "SetPlatformApplication",
    cred_svc.SetPlatformApplicationRequest,
    cred_svc.SetPlatformApplicationResponse,
    read_only=False,
)
LIST_PLATFORM_APPLICATIONS = _spec(
    _CR,
    "CredentialService",
    "ListPlatformApplications",
    cred_svc.ListPlatformApplicationsRequest,
    cred_svc.ListPlatformApplicationsResponse,
    read_only=True,
)

_SG = sign_svc.DESCRIPTOR
BEGIN_ROUTING = _spec(
    _SG,
    "SigningService",
    "BeginRouting",
    sign_svc.BeginRoutingRequest,
    sign_svc.BeginRoutingResponse,
    read_only=False,
)
RENEW_ROUTING = _spec(
    _SG,
    "SigningService",
    "RenewRouting",
    sign_svc.RenewRoutingRequest,
    sign_svc.RenewRoutingResponse,
    read_only=False,
)
END_ROUTING = _spec(
    _SG,
    "SigningService",
    "EndRouting",
    sign_svc.EndRoutingRequest,
    sign_svc.EndRoutingResponse,
    read_only=False,
)
SIGN_ORDER = _spec(
    _SG,
    "SigningService",
    "SignOrder",
    sign_svc.SignOrderRequest,
    sign_svc.SignOrderResponse,
    read_only=False,
)
BATCH_BEGIN_ROUTING = _spec(
    _SG,
    "SigningService",
    "BatchBeginRouting",
    sign_svc.BatchBeginRoutingRequest,
    sign_svc.BatchBeginRoutingResponse,
    read_only=False,
)
BATCH_SIGN_ORDERS = _spec(
    _SG,
    "SigningService",
    "BatchSignOrders",
    sign_svc.BatchSignOrdersRequest,
    sign_svc.BatchSignOrdersResponse,
    read_only=False,
)
EXECUTE_ORDER = _spec(
    _SG,
    "SigningService",
    "ExecuteOrder",
    sign_svc.ExecuteOrderRequest,
    sign_svc.ExecuteOrderResponse,
    read_only=False,
)

_AU = audit_svc.DESCRIPTOR
LIST_AUDIT_EVENTS = _spec(
    _AU,
    "AuditService",
    "ListAuditEvents",
    audit_svc.ListAuditEventsRequest,
    audit_svc.ListAuditEventsResponse,
    read_only=True,
)
STREAM_AUDIT_EVENTS = _spec(
    _AU,
    "AuditService",
    "StreamAuditEvents",
    audit_svc.StreamAuditEventsRequest,
    audit_svc.StreamAuditEventsResponse,
    read_only=True,
)
VERIFY_AUDIT_LOG = _spec(
    _AU,
    "AuditService",
    "VerifyAuditLog",
    audit_svc.VerifyAuditLogRequest,
    audit_svc.VerifyAuditLogResponse,
    read_only=True,
)

_KS = key_svc.DESCRIPTOR
GET_KEY_STATUS = _spec(
    _KS,
    "KeyService",
    "GetKeyStatus",
    key_svc.GetKeyStatusRequest,
    key_svc.GetKeyStatusResponse,
    read_only=True,
)
ROTATE_KEY_ENCRYPTION_KEY = _spec(
    _KS,
    "KeyService",
    "RotateKeyEncryptionKey",
    key_svc.RotateKeyEncryptionKeyRequest,
    key_svc.RotateKeyEncryptionKeyResponse,
    read_only=False,
)
MIGRATE_KEYS = _spec(
    _KS,
    "KeyService",
    "MigrateKeys",
    key_svc.MigrateKeysRequest,
    key_svc.MigrateKeysResponse,
    read_only=False,
)

ALL_RPCS: tuple[RpcSpec[_message.Message, _message.Message], ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, RpcSpec)
)
"""Every RPC of the five services."""
