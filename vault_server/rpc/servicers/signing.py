"""SigningService: proto -> domain call -> proto (data plane)."""

from __future__ import annotations

from typing import Any

from pipsync.vault.v1 import signing_service_pb2 as pb
from pipsync.vault.v1 import signing_service_pb2_grpc as rpc

from vault_server.rpc import convert_signing as cv
from vault_server.rpc import wellknown as wk
from vault_server.rpc.call_state import current
from vault_server.rpc.runner import BlockingRunner
from vault_server.signing import HotSigner, RoutingContexts


def _ttl(request: Any) -> float | None:
    return wk.seconds(request.ttl, "ttl") if request.HasField("ttl") else None


class SigningServicer(rpc.SigningServiceServicer):
    def __init__(self, routing: RoutingContexts, signing: HotSigner, run: BlockingRunner) -> None:
        self._routing = routing
        self._signing = signing
        self._run = run

    async def BeginRouting(self, request: pb.BeginRoutingRequest, context: Any) -> Any:
        view = await self._run(
            self._routing.begin, current(), request.credential, request.strategy_id, _ttl(request)
        )
        return pb.BeginRoutingResponse(routing_context=cv.routing_context(view))

    async def RenewRouting(self, request: pb.RenewRoutingRequest, context: Any) -> Any:
        view = await self._run(self._routing.renew, current(), request.name, _ttl(request))
        return pb.RenewRoutingResponse(routing_context=cv.routing_context(view))

    async def EndRouting(self, request: pb.EndRoutingRequest, context: Any) -> Any:
        view = await self._run(self._routing.end, current(), request.name)
        return pb.EndRoutingResponse(routing_context=cv.routing_context(view))

    async def SignOrder(self, request: pb.SignOrderRequest, context: Any) -> Any:
        order = cv.order_of(request.order)
        # The hot path awaits its own offloads and group commit: no blanket thread hop here.
        signed = await self._signing.sign(
            current(), request.routing_context, order, request.credential
        )
        return pb.SignOrderResponse(
            signed_request=cv.signed_request(signed.request),
            credential_version=signed.version,
            audit_event=signed.audit_event,
        )

    async def ExecuteOrder(self, request: pb.ExecuteOrderRequest, context: Any) -> Any:
        order = cv.order_of(request.order)
        done = await self._signing.execute(
            current(), request.routing_context, order, request.credential
        )
        return pb.ExecuteOrderResponse(
            http_status=done.response.status,
            headers=cv.venue_headers(done.response),
            body=done.response.body,
            credential_version=done.version,
            audit_event=done.audit_event,
            redacted=done.response.redacted,
            body_truncated=done.response.body_truncated,
        )
