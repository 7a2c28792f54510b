"""WorkspaceService: proto -> domain call -> proto."""

from __future__ import annotations

from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from vault_server.core.clock import Clock
from vault_server.rpc import convert
from vault_server.rpc import wellknown as wk
from vault_server.rpc.call_state import current
from vault_server.rpc.runner import BlockingRunner
from vault_server.workspaces import WorkspaceManager


class WorkspaceServicer(rpc.WorkspaceServiceServicer):
    def __init__(self, manager: WorkspaceManager, run: BlockingRunner, clock: Clock) -> None:
        self._m = manager
        self._run = run
        self._clock = clock

    async def CreateWorkspace(
        self, request: pb.CreateWorkspaceRequest, context: object
    ) -> pb.CreateWorkspaceResponse:
        row = await self._run(
            self._m.create, current(), request.workspace_id, request.workspace.display_name
        )
        return pb.CreateWorkspaceResponse(workspace=convert.workspace(row, self._clock.now()))

    async def GetWorkspace(
        self, request: pb.GetWorkspaceRequest, context: object
    ) -> pb.GetWorkspaceResponse:
        row = await self._run(self._m.get, current(), request.name)
        return pb.GetWorkspaceResponse(workspace=convert.workspace(row, self._clock.now()))

    async def ListWorkspaces(
        self, request: pb.ListWorkspacesRequest, context: object
    ) -> pb.ListWorkspacesResponse:
        page = await self._run(self._m.list, current(), request.page_size, request.page_token)
        now = self._clock.now()
        return pb.ListWorkspacesResponse(
            workspaces=[convert.workspace(w, now) for w in page.workspaces],
            next_page_token=page.next_page_token,
        )

    async def FreezeWorkspace(
        self, request: pb.FreezeWorkspaceRequest, context: object
    ) -> pb.FreezeWorkspaceResponse:
        ttl = wk.seconds(request.ttl, "ttl") if request.HasField("ttl") else None
        row = await self._run(self._m.freeze, current(), request.name, ttl, request.etag)
        return pb.FreezeWorkspaceResponse(workspace=convert.workspace(row, self._clock.now()))

    async def UnfreezeWorkspace(
        self, request: pb.UnfreezeWorkspaceRequest, context: object
    ) -> pb.UnfreezeWorkspaceResponse:
        row = await self._run(self._m.unfreeze, current(), request.name, request.etag)
        return pb.UnfreezeWorkspaceResponse(workspace=convert.workspace(row, self._clock.now()))
