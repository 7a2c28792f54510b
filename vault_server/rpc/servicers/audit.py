"""AuditService: list, stream (backlog then follow) and verify the audit log (admin plane)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pipsync.vault.v1 import audit_service_pb2 as pb
from pipsync.vault.v1 import audit_service_pb2_grpc as rpc

from vault_server.audit import AuditReader, AuditVerifier
from vault_server.rpc import convert_audit as convert
from vault_server.rpc.call_state import current
from vault_server.rpc.runner import BlockingRunner


class AuditServicer(rpc.AuditServiceServicer):
    def __init__(self, reader: AuditReader, verifier: AuditVerifier, run: BlockingRunner) -> None:
        self._reader = reader
        self._verifier = verifier
        self._run = run
        self._closing: asyncio.Event | None = None  # made on the serving loop

    def open_follow_streams(self) -> None:
        """Serving (again, maybe on another event loop): following streams run until their
        deadlines."""
        self._closing = asyncio.Event()

    def end_follow_streams(self) -> None:
        """Shutting down: every following stream ends now, with OK, instead of holding the
        server's grace period until its deadline (a follower reopens with ``resume_after`` its
        last events, here after the restart or on another replica, with no gap). Streams of a
        bounded backlog (``follow`` off) still finish inside the grace period."""
        if self._closing is not None:
            self._closing.set()

    async def ListAuditEvents(self, request: pb.ListAuditEventsRequest, context: Any) -> Any:
        q = convert.query(request.filter)
        page = await self._run(
            self._reader.list_events, current(), q, request.page_size, request.page_token
        )
        return pb.ListAuditEventsResponse(
            events=[convert.event(r) for r in page.events], next_page_token=page.next_page_token
        )

    async def StreamAuditEvents(
        self, request: pb.StreamAuditEventsRequest, context: Any
    ) -> AsyncIterator[pb.StreamAuditEventsResponse]:
        """Each batch is read in a short transaction and only then sent: a consumer that stops
        reading stalls its own stream (gRPC flow control), never the writers. Ends at the call
        deadline (capped for streams), and a following one at shutdown (``end_follow_streams``);
        a cancelled call stops at the next await."""
        ctx = current()
        if self._closing is None:
            self._closing = asyncio.Event()
        closing = self._closing
        stream = await self._run(
            self._reader.open_stream,
            ctx,
            convert.query(request.filter),
            request.follow,
            list(request.resume_after),
        )
        while (left := ctx.remaining()) is None or left > 0:
            if stream.follow and closing.is_set():
                return
            rows = await self._run(stream.next_batch)
            for row in rows:
                yield pb.StreamAuditEventsResponse(event=convert.event(row))
            if rows:
                continue
            if not stream.follow or (left is not None and left <= stream.poll_interval_s):
                return
            with contextlib.suppress(TimeoutError):  # the poll interval, or shutdown
                await asyncio.wait_for(closing.wait(), stream.poll_interval_s)

    async def VerifyAuditLog(self, request: pb.VerifyAuditLogRequest, context: Any) -> Any:
        result = await self._run(self._verifier.verify, current(), request.workspace)
        return convert.verify_response(result)
