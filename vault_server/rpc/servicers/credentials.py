"""CredentialService: proto -> domain call -> proto. Secret fields become ``Secret`` at once."""

from __future__ import annotations

from typing import Any

from pipsync.vault.v1 import credential_service_pb2 as pb
from pipsync.vault.v1 import credential_service_pb2_grpc as rpc

from vault_server.core.secret import Secret
from vault_server.custody import (
    Attestor,
    CredentialLifecycle,
    CredentialManager,
    CredentialQueries,
    NewCredential,
)
from vault_server.rpc import convert_credentials as cv
from vault_server.rpc.call_state import current
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.servicers.unimplemented import fill_unimplemented
from vault_server.sessions import PlatformApplications, SessionAdmin


def _new(request: Any, *, with_material: bool) -> NewCredential:
    return NewCredential(
        parent=request.parent,
        credential_id=request.credential_id,
        display_name=request.display_name,
        venue=cv.broker_of(request.broker),
        environment=cv.environment_of(request.environment),
        algorithm=cv.algorithm_of(request.key_algorithm),
        scopes=list(request.scopes),
        policy=cv.policy_of(request.policy),
        material=cv.material_of(request.material) if with_material else None,
        acknowledge_single_tier=getattr(request, "acknowledge_single_permission_tier", False),
        attest_on_create=getattr(request, "attest_on_create", False),
    )


class CredentialServicer(rpc.CredentialServiceServicer):
    def __init__(
        self,
        manager: CredentialManager,
        lifecycle: CredentialLifecycle,
        queries: CredentialQueries,
        attestor: Attestor,
        run: BlockingRunner,
        sessions: SessionAdmin,
        applications: PlatformApplications,
    ) -> None:
        self._sessions = sessions
        self._apps = applications
        self._attestor = attestor
        self._m = manager
        self._life = lifecycle
        self._q = queries
        self._run = run

    async def CreateCredential(self, request: pb.CreateCredentialRequest, context: Any) -> Any:
        view = await self._run(self._m.create, current(), _new(request, with_material=True))
        return pb.CreateCredentialResponse(credential=cv.credential_msg(view))

    async def GenerateCredentialKey(
        self, request: pb.GenerateCredentialKeyRequest, context: Any
    ) -> Any:
        made = await self._run(self._m.generate, current(), _new(request, with_material=False))
        return pb.GenerateCredentialKeyResponse(
            credential=cv.credential_msg(made.view), public_key=made.public_key
        )

    async def AttachCredentialApiKey(
        self, request: pb.AttachCredentialApiKeyRequest, context: Any
    ) -> Any:
        view = await self._run(
            self._life.attach_api_key, current(), request.name, request.api_key, request.etag
        )
        return pb.AttachCredentialApiKeyResponse(credential=cv.credential_msg(view))

    async def GetCredential(self, request: pb.GetCredentialRequest, context: Any) -> Any:
        view = await self._run(self._q.get, current(), request.name)
        return pb.GetCredentialResponse(credential=cv.credential_msg(view))

    async def ListCredentials(self, request: pb.ListCredentialsRequest, context: Any) -> Any:
        broker = cv.broker_of(request.broker) if request.broker else None
        page = await self._run(
            self._q.list, current(), request.parent, request.page_size, request.page_token,
            broker, request.show_revoked,
        )  # fmt: skip
        return pb.ListCredentialsResponse(
            credentials=[cv.credential_msg(v) for v in page.views],
            next_page_token=page.next_page_token,
        )

    async def RotateCredential(self, request: pb.RotateCredentialRequest, context: Any) -> Any:
        material = None if request.generate_key else cv.material_of(request.material)
        view, version, public_key = await self._run(
            self._life.rotate, current(), request.name, material, request.generate_key,
            request.etag,
        )  # fmt: skip
        return pb.RotateCredentialResponse(
            credential=cv.credential_msg(view),
            version=cv.version_msg(view.workspace, view.credential.resource_id, version),
            public_key=public_key,
        )

    async def PromoteCredentialVersion(
        self, request: pb.PromoteCredentialVersionRequest, context: Any
    ) -> Any:
        view = await self._run(self._life.promote, current(), request.name, request.etag)
        return pb.PromoteCredentialVersionResponse(credential=cv.credential_msg(view))

    async def RevokeCredential(self, request: pb.RevokeCredentialRequest, context: Any) -> Any:
        view = await self._run(self._life.revoke, current(), request.name, request.etag)
        return pb.RevokeCredentialResponse(credential=cv.credential_msg(view))

    async def AttestCredentialPermissions(
        self, request: pb.AttestCredentialPermissionsRequest, context: Any
    ) -> Any:
        done = await self._run(self._attestor.attest, current(), request.name)
        return pb.AttestCredentialPermissionsResponse(
            attestation=cv.attestation_msg(done.result), credential=cv.credential_msg(done.view)
        )

    async def UpdateCredentialPolicy(
        self, request: pb.UpdateCredentialPolicyRequest, context: Any
    ) -> Any:
        policy = cv.policy_of(request.policy)
        view = await self._run(self._m.update_policy, current(), request.name, policy, request.etag)
        return pb.UpdateCredentialPolicyResponse(credential=cv.credential_msg(view))

    async def ResetCredentialSession(
        self, request: pb.ResetCredentialSessionRequest, context: Any
    ) -> Any:
        view = await self._run(self._sessions.reset, current(), request.name)
        return pb.ResetCredentialSessionResponse(credential=cv.credential_msg(view))

    async def SetPlatformApplication(
        self, request: pb.SetPlatformApplicationRequest, context: Any
    ) -> Any:
        view = await self._run(
            self._apps.set, current(), cv.broker_of(request.broker),
            cv.environment_of(request.environment), request.client_id,
            Secret(request.client_secret),
        )  # fmt: skip
        return pb.SetPlatformApplicationResponse(platform_application=cv.application_msg(view))

    async def ListPlatformApplications(
        self, request: pb.ListPlatformApplicationsRequest, context: Any
    ) -> Any:
        views = await self._run(self._apps.list, current())
        return pb.ListPlatformApplicationsResponse(
            platform_applications=[cv.application_msg(v) for v in views]
        )


fill_unimplemented(
    CredentialServicer,
    pb.DESCRIPTOR.services_by_name["CredentialService"],
)
