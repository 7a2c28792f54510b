"""AsyncVaultClient against a real gRPC server with recording fake servicers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pipvault_client as pv
import pytest
from pipsync.vault.v1 import (
    audit_pb2,
    audit_service_pb2,
    credential_pb2,
    credential_service_pb2,
    signing_service_pb2,
    trading_pb2,
    workspace_pb2,
    workspace_service_pb2,
)
from test_client_fakes import FakeVault, abort, fail, reply, running_fake_vault

FAST_RETRY = pv.RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with running_fake_vault() as fake:
        yield fake


@pytest.fixture
async def client(vault: FakeVault) -> AsyncIterator[pv.AsyncVaultClient]:
    async with pv.AsyncVaultClient(vault.address, token="dev-token", retry=FAST_RETRY) as c:
        yield c


ORDER = trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="ETHUSDT")


async def test_metadata_and_deadline(client: pv.AsyncVaultClient, vault: FakeVault) -> None:
    vault.on(
        "CreateWorkspace",
        lambda req, ctx: workspace_service_pb2.CreateWorkspaceResponse(
            workspace=workspace_pb2.Workspace(
                name=f"workspaces/{req.workspace_id}", display_name=req.workspace.display_name
            )
        ),
    )
    ws = await client.create_workspace("desk-1", "Desk 1", "new desk", request_id="rid-1")
    assert ws.name == "workspaces/desk-1"
    call = vault.last("CreateWorkspace")
    assert call.metadata["authorization"] == "Bearer dev-token"
    assert call.metadata["x-pipvault-reason"] == "new desk"
    assert call.metadata["x-request-id"] == "rid-1"
    assert call.time_remaining is not None and 0 < call.time_remaining <= 10.5
    await client.get_workspace("workspaces/desk-1", timeout=1.5)
    assert vault.last("GetWorkspace").time_remaining <= 1.6


async def test_unix_socket(vault: FakeVault) -> None:
    async with pv.AsyncVaultClient(vault.unix_address) as client:
        status = await client.get_key_status()
    assert list(status.providers) == []
    assert vault.last("GetKeyStatus").time_remaining is not None


async def test_missing_reason_raises_before_sending(
    client: pv.AsyncVaultClient, vault: FakeVault
) -> None:
    with pytest.raises(ValueError, match="reason"):
        await client.sign_order("workspaces/w/routingContexts/r", ORDER, "")
    with pytest.raises(ValueError, match="reason"):
        client.migrate_keys("transit", reason=" ")
    with pytest.raises(ValueError, match="reason"):
        await client.revoke_credential("workspaces/w/credentials/c")
    assert vault.calls == []


async def test_error_info_surfaced(client: pv.AsyncVaultClient, vault: FakeVault) -> None:
    vault.on(
        "FreezeWorkspace",
        fail(grpc.StatusCode.ABORTED, "ETAG_MISMATCH", "stale etag", currentEtag="e2"),
    )
    with pytest.raises(pv.AbortedError) as info:
        await client.freeze_workspace("workspaces/w", "incident", etag="e1")
    assert info.value.reason == "ETAG_MISMATCH"
    assert info.value.metadata == {"currentEtag": "e2"}
    assert info.value.domain == "vault.pipsync.dev"
    assert info.value.request_id == vault.last("FreezeWorkspace").metadata["x-request-id"]


async def test_read_only_retried_sign_never(client: pv.AsyncVaultClient, vault: FakeVault) -> None:
    vault.script(
        "GetCredential",
        fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE"),
        reply(
            credential_service_pb2.GetCredentialResponse(
                credential=credential_pb2.Credential(name="workspaces/w/credentials/c")
            )
        ),
    )
    cred = await client.get_credential("workspaces/w/credentials/c")
    assert cred.name == "workspaces/w/credentials/c"
    assert len(vault.calls_to("GetCredential")) == 2

    vault.on("SignOrder", fail(grpc.StatusCode.UNAVAILABLE, "AUDIT_UNAVAILABLE"))
    with pytest.raises(pv.UnavailableError):
        await client.sign_order("workspaces/w/routingContexts/r", ORDER, "signal")
    assert len(vault.calls_to("SignOrder")) == 1

    vault.on("ExecuteOrder", fail(grpc.StatusCode.UNAVAILABLE, "VENUE_UNAVAILABLE"))
    with pytest.raises(pv.UnavailableError):
        await client.execute_order("workspaces/w/routingContexts/r", ORDER, "signal")
    assert len(vault.calls_to("ExecuteOrder")) == 1


async def test_pagination(client: pv.AsyncVaultClient, vault: FakeVault) -> None:
    vault.script(
        "ListAuditEvents",
        reply(
            audit_service_pb2.ListAuditEventsResponse(
                events=[audit_pb2.AuditEvent(sequence=1)], next_page_token="p2"
            )
        ),
        reply(audit_service_pb2.ListAuditEventsResponse(events=[audit_pb2.AuditEvent(sequence=2)])),
    )
    got = [e.sequence async for e in client.list_audit_events(workspace="workspaces/w")]
    assert got == [1, 2]
    tokens = [c.request.page_token for c in vault.calls_to("ListAuditEvents")]
    assert tokens == ["", "p2"]
    assert all(
        c.request.filter.workspace == "workspaces/w" for c in vault.calls_to("ListAuditEvents")
    )


async def test_stream_and_early_close(client: pv.AsyncVaultClient, vault: FakeVault) -> None:
    def endless(request, context):
        n = 0
        while context.is_active():
            n += 1
            yield audit_service_pb2.StreamAuditEventsResponse(
                event=audit_pb2.AuditEvent(sequence=n)
            )

    vault.on("StreamAuditEvents", endless)
    got = []
    stream = client.stream_audit_events(follow=True, timeout=5)
    async for event in stream:
        got.append(event.sequence)
        if len(got) == 3:
            break
    await stream.aclose()
    assert got == [1, 2, 3]
    assert vault.last("StreamAuditEvents").request.follow


async def test_routing_context(client: pv.AsyncVaultClient, vault: FakeVault) -> None:
    vault.on(
        "EndRouting",
        lambda req, ctx: signing_service_pb2.EndRoutingResponse(
            routing_context=signing_service_pb2.RoutingContext(
                name=req.name, state=signing_service_pb2.RoutingContext.STATE_ENDED
            )
        ),
    )
    rc = await client.end_routing("workspaces/w/routingContexts/r", "done")
    assert rc.state == signing_service_pb2.RoutingContext.STATE_ENDED


async def test_plaintext_refused_off_loopback() -> None:
    with pytest.raises(ValueError, match="plaintext"):
        pv.AsyncVaultClient("192.0.2.10:8201")


# The retry plan and the page walk are shared with VaultClient; these pin that the asyncio
# transport drives them the same way.


async def test_retries_spend_one_deadline(vault: FakeVault) -> None:
    now = [0.0]

    async def sleep(delay: float) -> None:
        now[0] += delay

    def slow_failure(request, context):
        now[0] += 4.0  # each attempt "takes" 4 s of the 10 s budget
        abort(context, grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE", "busy")

    vault.on("GetWorkspace", slow_failure)
    retry = pv.RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.001)
    async with pv.AsyncVaultClient(vault.address, retry=retry) as client:
        client._clock = lambda: now[0]
        client._sleep = sleep
        with pytest.raises(pv.UnavailableError):
            await client.get_workspace("workspaces/a")
    budgets = [c.time_remaining for c in vault.calls_to("GetWorkspace")]
    assert len(budgets) == 3  # the fourth attempt would start after the deadline
    for got, want in zip(budgets, [10.0, 6.0, 2.0], strict=True):
        assert want - 0.1 <= got <= want + 0.1
    assert now[0] > 12.0  # the asyncio sleep was awaited between attempts


async def test_a_repeated_page_token_stops_the_iteration(
    client: pv.AsyncVaultClient, vault: FakeVault
) -> None:
    vault.on(
        "ListAuditEvents",
        reply(
            audit_service_pb2.ListAuditEventsResponse(
                events=[audit_pb2.AuditEvent(sequence=1)], next_page_token="loop"
            )
        ),
    )
    got = []
    with pytest.raises(pv.InternalError, match="repeated a page token"):
        async for event in client.list_audit_events(workspace="workspaces/a"):
            got.append(event.sequence)
    assert got == [1, 1]
    assert len(vault.calls_to("ListAuditEvents")) == 2


async def test_stream_retries_only_the_opening(
    client: pv.AsyncVaultClient, vault: FakeVault
) -> None:
    def stream(request, context):
        for n in (1, 2, 3):
            yield audit_service_pb2.StreamAuditEventsResponse(
                event=audit_pb2.AuditEvent(sequence=n)
            )

    vault.script("StreamAuditEvents", fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE"))
    vault.on("StreamAuditEvents", stream)
    got = [e.sequence async for e in client.stream_audit_events(workspace="workspaces/a")]
    assert got == [1, 2, 3]
    assert len(vault.calls_to("StreamAuditEvents")) == 2


async def test_stream_failing_midway_is_not_replayed(
    client: pv.AsyncVaultClient, vault: FakeVault
) -> None:
    def stream(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=audit_pb2.AuditEvent(sequence=1))
        abort(context, grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE", "db down")

    vault.on("StreamAuditEvents", stream)
    got = []
    with pytest.raises(pv.UnavailableError):
        async for event in client.stream_audit_events(follow=True):
            got.append(event.sequence)
    assert got == [1]
    assert len(vault.calls_to("StreamAuditEvents")) == 1
