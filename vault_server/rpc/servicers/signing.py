"""SigningService: proto -> domain call -> proto (data plane)."""

from __future__ import annotations

from typing import Any

from pipsync.vault.v1 import signing_service_pb2 as pb
from pipsync.vault.v1 import signing_service_pb2_grpc as rpc

from vault_server.core.errors import InvalidArgument, ReasonRequired, VaultError
from vault_server.domain import CallContext
from vault_server.rpc import convert_signing as cv
from vault_server.rpc import wellknown as wk
from vault_server.rpc.admission import MAX_REASON
from vault_server.rpc.call_state import current
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.status import status_message
from vault_server.signing import (
    BatchItem,
    BeginItem,
    FanOut,
    HotSigner,
    RoutingContexts,
    RoutingView,
    Signed,
)


def _ttl(request: Any) -> float | None:
    return wk.seconds(request.ttl, "ttl") if request.HasField("ttl") else None


class SigningServicer(rpc.SigningServiceServicer):
    def __init__(
        self, routing: RoutingContexts, signing: HotSigner, fan_out: FanOut, run: BlockingRunner
    ) -> None:
        self._routing = routing
        self._signing = signing
        self._fan_out = fan_out
        self._run = run

    async def BeginRouting(self, request: pb.BeginRoutingRequest, context: Any) -> Any:
        view = await self._run(
            self._routing.begin, current(), request.credential, request.strategy_id, _ttl(request)
        )
        return pb.BeginRoutingResponse(routing_context=cv.routing_context(view))

    async def BatchBeginRouting(self, request: pb.BatchBeginRoutingRequest, context: Any) -> Any:
        ctx = current()
        self._fan_out.check_count(len(request.requests))
        items: list[BeginItem] = []
        where: list[int] = []
        results: list[RoutingView | VaultError | None] = [None] * len(request.requests)
        for i, item in enumerate(request.requests):
            try:
                reason = _item_reason(ctx, item.reason)
                items.append(BeginItem(item.credential, item.strategy_id, _ttl(item), reason))
                where.append(i)
            except VaultError as err:
                results[i] = err
        if items:
            opened = await self._run(self._routing.begin_many, ctx, items)
            for i, done in zip(where, opened, strict=True):
                results[i] = done
        out = pb.BatchBeginRoutingResponse()
        for outcome in results:
            slot = out.results.add()
            if isinstance(outcome, RoutingView):
                slot.routing_context.CopyFrom(cv.routing_context(outcome))
            elif outcome is not None:
                slot.error.CopyFrom(status_message(outcome))
        return out

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
        return _signed(signed)

    async def BatchSignOrders(self, request: pb.BatchSignOrdersRequest, context: Any) -> Any:
        ctx = current()
        n = len(request.requests)
        self._fan_out.check_count(n)  # before converting anything
        # An item that is not even a valid request fails alone, as its own SignOrder would.
        items: list[BatchItem] = []
        where: list[int] = []
        results: list[Signed | VaultError | None] = [None] * n
        for i, item in enumerate(request.requests):
            try:
                items.append(_batch_item(ctx, item))
                where.append(i)
            except VaultError as err:
                results[i] = err
        if items:
            for i, done in zip(where, await self._fan_out.sign(ctx, items), strict=True):
                results[i] = done
        out = pb.BatchSignOrdersResponse()
        for outcome in results:
            slot = out.results.add()
            if isinstance(outcome, Signed):
                slot.response.CopyFrom(_signed(outcome))
            elif outcome is not None:
                slot.error.CopyFrom(status_message(outcome))
        return out

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


def _signed(signed: Signed) -> pb.SignOrderResponse:
    return pb.SignOrderResponse(
        signed_request=cv.signed_request(signed.request),
        credential_version=signed.version,
        audit_event=signed.audit_event,
    )


def _item_reason(ctx: CallContext, given: str) -> str:
    """A batch item's reason: its own, else the call's (required, as for a single call)."""
    reason = given.strip()
    if len(reason) > MAX_REASON:
        raise InvalidArgument("reason", f"at most {MAX_REASON} characters")
    if not reason and not ctx.reason:
        raise ReasonRequired(
            "a reason is required (the item's `reason` or the call's metadata x-pipvault-reason)"
        )
    return reason


def _batch_item(ctx: CallContext, request: pb.SignOrderRequest) -> BatchItem:
    return BatchItem(
        routing_context=request.routing_context,
        order=cv.order_of(request.order),
        credential=request.credential,
        reason=_item_reason(ctx, request.reason),
    )
