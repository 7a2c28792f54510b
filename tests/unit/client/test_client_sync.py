"""VaultClient against a real gRPC server with recording fake servicers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import grpc
import pipvault_client as pv
import pytest
from pipsync.vault.v1 import (
    audit_pb2,
    audit_service_pb2,
    credential_pb2,
    key_service_pb2,
    signing_service_pb2,
    trading_pb2,
    workspace_pb2,
    workspace_service_pb2,
)
from test_client_fakes import FakeVault, abort, fail, reply, running_fake_vault

FAST_RETRY = pv.RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with running_fake_vault() as fake:
        yield fake


@pytest.fixture
def client(vault: FakeVault) -> Iterator[pv.VaultClient]:
    with pv.VaultClient(vault.address, token="dev-token", retry=FAST_RETRY) as c:
        yield c


def _ws(name: str) -> workspace_pb2.Workspace:
    return workspace_pb2.Workspace(name=name, display_name=name.upper())


def _order() -> trading_pb2.Order:
    return trading_pb2.Order(
        operation=trading_pb2.ORDER_OPERATION_PLACE,
        symbol="BTCUSDT",
        side=trading_pb2.ORDER_SIDE_BUY,
        type=trading_pb2.ORDER_TYPE_LIMIT,
        quantity="0.01",
        price="50000",
        client_order_id="c-1",
    )


# metadata and deadlines --------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_mutating_call_sends_bearer_reason_request_id_and_deadline(
    vault: FakeVault, transport: str
) -> None:
    vault.on(
        "FreezeWorkspace",
        lambda req, ctx: workspace_service_pb2.FreezeWorkspaceResponse(
            workspace=workspace_pb2.Workspace(
                name=req.name, state=workspace_pb2.Workspace.STATE_FROZEN
            )
        ),
    )
    address = vault.address if transport == "tcp" else vault.unix_address
    with pv.VaultClient(address, token="dev-token") as client:
        ws = client.freeze_workspace("workspaces/prod", "incident 42", ttl=1800)
    assert ws.state == workspace_pb2.Workspace.STATE_FROZEN
    call = vault.last("FreezeWorkspace")
    assert call.metadata["authorization"] == "Bearer dev-token"
    assert call.metadata["x-pipvault-reason"] == "incident 42"
    assert len(call.metadata["x-request-id"]) >= 16
    assert call.request.reason == "incident 42"
    assert call.request.ttl.seconds == 1800
    assert call.time_remaining is not None
    assert 0 < call.time_remaining <= 10.5


def test_every_call_carries_a_deadline_and_a_fresh_request_id(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    client.get_workspace("workspaces/a")
    client.get_workspace("workspaces/a", timeout=2.5)
    list(client.list_workspaces())
    client.verify_audit_log()
    client.get_key_status()
    list(client.stream_audit_events(workspace="workspaces/a"))
    assert len(vault.calls) == 6
    for call in vault.calls:
        assert call.time_remaining is not None, call.method
        assert call.time_remaining <= 10.5  # the wire format rounds up a little
    assert vault.calls[1].time_remaining <= 2.6
    ids = [c.metadata["x-request-id"] for c in vault.calls]
    assert len(set(ids)) == len(ids)
    assert all("x-pipvault-reason" not in c.metadata for c in vault.calls)


def test_given_request_id_and_on_behalf_of_are_sent(vault: FakeVault) -> None:
    with pv.VaultClient(vault.address, on_behalf_of="alice@example.com") as client:
        client.get_workspace("workspaces/a", request_id="req-123")
        client.get_workspace("workspaces/a", on_behalf_of="bob")
    first, second = vault.calls
    assert first.metadata["x-request-id"] == "req-123"
    assert first.metadata["x-pipvault-on-behalf-of"] == "alice@example.com"
    assert "authorization" not in first.metadata
    assert second.metadata["x-pipvault-on-behalf-of"] == "bob"


def test_non_ascii_reason_goes_in_the_field_only(client: pv.VaultClient, vault: FakeVault) -> None:
    client.unfreeze_workspace("workspaces/a", reason="incident résolu")
    call = vault.last("UnfreezeWorkspace")
    assert call.request.reason == "incident résolu"
    assert "x-pipvault-reason" not in call.metadata


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan")])
def test_there_is_no_call_without_a_deadline(vault: FakeVault, timeout: float) -> None:
    with pytest.raises(ValueError):
        pv.VaultClient(vault.address, timeout=timeout)
    with pv.VaultClient(vault.address) as client, pytest.raises(ValueError):
        client.get_workspace("workspaces/a", timeout=timeout)
    assert vault.calls == []


# reasons ------------------------------------------------------------------------------------

MATERIAL = credential_pb2.SecretMaterial(api_key="k", secret="s")


@pytest.mark.parametrize(
    "invoke",
    [
        lambda c, r: c.create_workspace("ws", "WS", r),
        lambda c, r: c.freeze_workspace("workspaces/ws", r),
        lambda c, r: c.unfreeze_workspace("workspaces/ws", r),
        lambda c, r: c.create_credential(
            "workspaces/ws",
            "cred",
            broker=trading_pb2.BROKER_BINANCE_SPOT,
            environment=trading_pb2.ENVIRONMENT_LIVE,
            key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
            material=MATERIAL,
            scopes=["read"],
            reason=r,
        ),
        lambda c, r: c.generate_credential_key(
            "workspaces/ws",
            "cred",
            broker="BROKER_BINANCE_SPOT",
            environment="ENVIRONMENT_LIVE",
            key_algorithm="KEY_ALGORITHM_ED25519",
            scopes=[],
            reason=r,
        ),
        lambda c, r: c.attach_credential_api_key("workspaces/ws/credentials/c", "k", r),
        lambda c, r: c.rotate_credential("workspaces/ws/credentials/c", MATERIAL, r),
        lambda c, r: c.promote_credential_version("workspaces/ws/credentials/c/versions/2", r),
        lambda c, r: c.revoke_credential("workspaces/ws/credentials/c", r),
        lambda c, r: c.attest_credential_permissions("workspaces/ws/credentials/c", r),
        lambda c, r: c.update_credential_policy(
            "workspaces/ws/credentials/c", credential_pb2.OrderPolicy(), r
        ),
        lambda c, r: c.begin_routing("workspaces/ws/credentials/c", "s1", r),
        lambda c, r: c.renew_routing("workspaces/ws/routingContexts/x", r),
        lambda c, r: c.end_routing("workspaces/ws/routingContexts/x", r),
        lambda c, r: c.sign_order("workspaces/ws/routingContexts/x", _order(), r),
        lambda c, r: c.execute_order("workspaces/ws/routingContexts/x", _order(), r),
        lambda c, r: c.rotate_key_encryption_key("", r),
        lambda c, r: c.migrate_keys("transit", 10, r),
    ],
)
@pytest.mark.parametrize("reason", ["", "   "])
def test_missing_reason_raises_before_anything_is_sent(
    client: pv.VaultClient, vault: FakeVault, invoke, reason: str
) -> None:
    with pytest.raises(ValueError, match="reason"):
        invoke(client, reason)
    assert vault.calls == []


# errors -------------------------------------------------------------------------------------


def test_error_info_is_surfaced_on_the_exception(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on(
        "SignOrder",
        fail(
            grpc.StatusCode.FAILED_PRECONDITION,
            "ORDER_POLICY_VIOLATION",
            "order breaks the credential's policy",
            rule="maxNotional",
        ),
    )
    with pytest.raises(pv.FailedPreconditionError) as info:
        client.sign_order("workspaces/ws/routingContexts/x", _order(), "signal 7", request_id="r-9")
    err = info.value
    assert isinstance(err, pv.VaultClientError)
    assert err.code == grpc.StatusCode.FAILED_PRECONDITION
    assert err.reason == "ORDER_POLICY_VIOLATION"
    assert err.domain == pv.ERROR_DOMAIN
    assert err.metadata == {"rule": "maxNotional"}
    assert err.request_id == "r-9"
    assert err.message == "order breaks the credential's policy"
    assert err.method == "/pipsync.vault.v1.SigningService/SignOrder"
    assert str(err) == (
        "FAILED_PRECONDITION ORDER_POLICY_VIOLATION: order breaks the credential's policy"
        " (request id: r-9)"
    )


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, pv.InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, pv.NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, pv.AlreadyExistsError),
        (grpc.StatusCode.PERMISSION_DENIED, pv.PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, pv.UnauthenticatedError),
        (grpc.StatusCode.FAILED_PRECONDITION, pv.FailedPreconditionError),
        (grpc.StatusCode.ABORTED, pv.AbortedError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, pv.ResourceExhaustedError),
        (grpc.StatusCode.UNAVAILABLE, pv.UnavailableError),
        (grpc.StatusCode.DATA_LOSS, pv.DataLossError),
        (grpc.StatusCode.UNIMPLEMENTED, pv.UnimplementedError),
        (grpc.StatusCode.INTERNAL, pv.InternalError),
    ],
)
def test_each_code_family_has_its_exception(
    vault: FakeVault, code: grpc.StatusCode, cls: type[pv.VaultClientError]
) -> None:
    vault.on("CreateWorkspace", fail(code, "SOME_REASON", "nope"))
    with pv.VaultClient(vault.address) as client, pytest.raises(cls) as info:
        client.create_workspace("ws", "WS", "because")
    assert info.value.reason == "SOME_REASON"
    assert info.value.code == code
    assert len(info.value.request_id) >= 16


def test_error_without_error_info_still_maps(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on("GetWorkspace", lambda req, ctx: ctx.abort(grpc.StatusCode.NOT_FOUND, "gone"))
    with pytest.raises(pv.NotFoundError) as info:
        client.get_workspace("workspaces/x")
    assert info.value.reason == ""
    assert info.value.message == "gone"


def test_secret_material_is_never_in_errors_or_reprs(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    canary = "canary-" + secrets.token_hex(16)
    vault.on(
        "CreateCredential",
        fail(grpc.StatusCode.INVALID_ARGUMENT, "WITHDRAWAL_SCOPE_REJECTED", "withdraw scope"),
    )
    with pytest.raises(pv.InvalidArgumentError) as info:
        client.create_credential(
            "workspaces/ws",
            "cred",
            broker="BROKER_BINANCE_SPOT",
            environment="ENVIRONMENT_LIVE",
            key_algorithm="KEY_ALGORITHM_HMAC_SHA256",
            material=credential_pb2.SecretMaterial(api_key="key", secret=canary),
            scopes=["withdraw"],
            reason="onboarding",
        )
    assert vault.last("CreateCredential").request.material.secret == canary
    for text in (str(info.value), repr(info.value), repr(client), repr(vars(info.value))):
        assert canary not in text
    assert "dev-token" not in repr(client)


# retries ------------------------------------------------------------------------------------


def test_read_only_rpc_is_retried_on_unavailable(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.script(
        "GetWorkspace",
        fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE"),
        fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "CONCURRENCY_LIMITED"),
        reply(workspace_service_pb2.GetWorkspaceResponse(workspace=_ws("workspaces/a"))),
    )
    assert client.get_workspace("workspaces/a", request_id="same").name == "workspaces/a"
    calls = vault.calls_to("GetWorkspace")
    assert len(calls) == 3
    assert {c.metadata["x-request-id"] for c in calls} == {"same"}


def test_retries_spend_one_deadline(client: pv.VaultClient, vault: FakeVault) -> None:
    now = [0.0]
    client._clock = lambda: now[0]
    client._sleep = lambda delay: now.__setitem__(0, now[0] + delay)

    def slow_failure(request, context):
        now[0] += 4.0  # each attempt "takes" 4 s of the 10 s budget
        abort(context, grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE", "busy")

    vault.on("GetWorkspace", slow_failure)
    with pytest.raises(pv.UnavailableError):
        client.get_workspace("workspaces/a")
    budgets = [c.time_remaining for c in vault.calls_to("GetWorkspace")]
    assert len(budgets) == 3  # the fourth attempt would start after the deadline
    for got, want in zip(budgets, [10.0, 6.0, 2.0], strict=True):
        assert want - 0.1 <= got <= want + 0.1


def test_retries_are_bounded(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on("GetKeyStatus", fail(grpc.StatusCode.UNAVAILABLE, "KEY_PROVIDER_UNAVAILABLE"))
    with pytest.raises(pv.UnavailableError):
        client.get_key_status()
    assert len(vault.calls_to("GetKeyStatus")) == FAST_RETRY.max_attempts


def test_rate_limited_is_not_retried(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on("GetWorkspace", fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"))
    with pytest.raises(pv.ResourceExhaustedError):
        client.get_workspace("workspaces/a")
    assert len(vault.calls_to("GetWorkspace")) == 1


@pytest.mark.parametrize(
    ("method", "invoke"),
    [
        ("SignOrder", lambda c: c.sign_order("workspaces/w/routingContexts/r", _order(), "sig")),
        (
            "ExecuteOrder",
            lambda c: c.execute_order("workspaces/w/routingContexts/r", _order(), "x"),
        ),
        ("CreateWorkspace", lambda c: c.create_workspace("ws", "WS", "new desk")),
        ("RotateKeyEncryptionKey", lambda c: c.rotate_key_encryption_key("", "yearly")),
        ("BeginRouting", lambda c: c.begin_routing("workspaces/w/credentials/c", "s", "go")),
        ("MigrateKeys", lambda c: list(c.migrate_keys("transit", reason="launch"))),
    ],
)
def test_non_idempotent_rpcs_are_never_retried(
    client: pv.VaultClient, vault: FakeVault, method: str, invoke
) -> None:
    vault.on(method, fail(grpc.StatusCode.UNAVAILABLE, "AUDIT_UNAVAILABLE"))
    with pytest.raises(pv.UnavailableError) as info:
        invoke(client)
    assert info.value.reason == "AUDIT_UNAVAILABLE"
    assert len(vault.calls_to(method)) == 1


def test_retry_budget_never_exceeds_the_deadline(vault: FakeVault) -> None:
    slow_backoff = pv.RetryPolicy(max_attempts=10, initial_backoff=5.0, max_backoff=5.0)
    vault.on("GetWorkspace", fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE"))
    with pv.VaultClient(vault.address, retry=slow_backoff, timeout=0.5) as client:
        client._rng.uniform = lambda a, b: b  # worst case jitter
        with pytest.raises(pv.UnavailableError):
            client.get_workspace("workspaces/a")
    assert len(vault.calls_to("GetWorkspace")) == 1


def test_unreachable_server_is_unavailable_after_retries(tmp_path) -> None:
    address = f"unix://{tmp_path}/none.sock"
    with (
        pv.VaultClient(address, retry=FAST_RETRY, timeout=2) as client,
        pytest.raises(pv.UnavailableError),
    ):
        client.get_workspace("workspaces/a")


# pagination and streams ---------------------------------------------------------------------


def test_list_follows_page_tokens(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.script(
        "ListWorkspaces",
        reply(
            workspace_service_pb2.ListWorkspacesResponse(
                workspaces=[_ws("workspaces/a"), _ws("workspaces/b")], next_page_token="t1"
            )
        ),
        reply(
            workspace_service_pb2.ListWorkspacesResponse(
                workspaces=[_ws("workspaces/c")], next_page_token="t2"
            )
        ),
        reply(workspace_service_pb2.ListWorkspacesResponse(workspaces=[_ws("workspaces/d")])),
    )
    names = [w.name for w in client.list_workspaces(page_size=2)]
    assert names == ["workspaces/a", "workspaces/b", "workspaces/c", "workspaces/d"]
    requests = [c.request for c in vault.calls_to("ListWorkspaces")]
    assert [r.page_token for r in requests] == ["", "t1", "t2"]
    assert {r.page_size for r in requests} == {2}


def test_list_is_lazy_and_validates_eagerly(client: pv.VaultClient, vault: FakeVault) -> None:
    iterator = client.list_credentials("workspaces/a", broker="BROKER_OKX", show_revoked=True)
    assert vault.calls == []
    assert list(iterator) == []
    request = vault.last("ListCredentials").request
    assert request.broker == trading_pb2.BROKER_OKX
    assert request.show_revoked
    with pytest.raises(ValueError):
        client.list_workspaces(page_size=5000)


def test_a_repeated_page_token_stops_the_iteration(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    vault.on(
        "ListAuditEvents",
        reply(
            audit_service_pb2.ListAuditEventsResponse(
                events=[audit_pb2.AuditEvent(sequence=1)], next_page_token="loop"
            )
        ),
    )
    with pytest.raises(pv.InternalError, match="repeated a page token"):
        list(client.list_audit_events(workspace="workspaces/a"))
    assert len(vault.calls_to("ListAuditEvents")) == 2


def test_stream_audit_events_retries_only_the_opening(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    events = [audit_pb2.AuditEvent(sequence=n, action="credential.use") for n in (1, 2, 3)]

    def stream(request, context):
        for event in events:
            yield audit_service_pb2.StreamAuditEventsResponse(event=event)

    vault.script("StreamAuditEvents", fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE"))
    vault.on("StreamAuditEvents", stream)
    got = list(client.stream_audit_events(workspace="workspaces/a", action="credential."))
    assert [e.sequence for e in got] == [1, 2, 3]
    calls = vault.calls_to("StreamAuditEvents")
    assert len(calls) == 2
    assert calls[-1].request.filter.action == "credential."


def test_stream_failing_midway_is_not_replayed(client: pv.VaultClient, vault: FakeVault) -> None:
    def stream(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=audit_pb2.AuditEvent(sequence=1))
        abort(context, grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE", "db down")

    vault.on("StreamAuditEvents", stream)
    got = []
    with pytest.raises(pv.UnavailableError):
        for event in client.stream_audit_events(follow=True):
            got.append(event.sequence)
    assert got == [1]
    assert len(vault.calls_to("StreamAuditEvents")) == 1


def test_migrate_keys_streams_progress(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on(
        "MigrateKeys",
        lambda req, ctx: [
            key_service_pb2.MigrateKeysResponse(total=4, migrated=m, remaining=4 - m, done=m == 4)
            for m in (2, 4)
        ],
    )
    progress = list(client.migrate_keys("transit", batch_size=2, reason="launch gate"))
    assert [p.migrated for p in progress] == [2, 4]
    assert progress[-1].done
    request = vault.last("MigrateKeys").request
    assert (request.target_provider_id, request.batch_size) == ("transit", 2)


def test_signing_round_trip(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on(
        "BeginRouting",
        lambda req, ctx: signing_service_pb2.BeginRoutingResponse(
            routing_context=signing_service_pb2.RoutingContext(
                name="workspaces/w/routingContexts/r1", credential=req.credential
            )
        ),
    )
    vault.on(
        "SignOrder",
        reply(
            signing_service_pb2.SignOrderResponse(
                signed_request=signing_service_pb2.SignedRequest(method="POST", url="https://x/o"),
                credential_version=3,
            )
        ),
    )
    rc = client.begin_routing("workspaces/w/credentials/c", "strat-1", "open", ttl=30)
    signed = client.sign_order(rc.name, _order(), "signal 1")
    assert signed.signed_request.method == "POST"
    assert signed.credential_version == 3
    assert vault.last("BeginRouting").request.ttl.seconds == 30
    assert vault.last("SignOrder").request.order.client_order_id == "c-1"


# connection rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["10.0.0.5:8201", "vault.internal:8201", "[2001:db8::1]:443"])
def test_plaintext_is_refused_off_loopback(address: str) -> None:
    with pytest.raises(ValueError, match="plaintext"):
        pv.VaultClient(address)


@pytest.mark.parametrize(
    "address", ["", "vault", "host:notaport", "http://127.0.0.1:1", "unix:relative.sock", "::1:80"]
)
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        pv.VaultClient(address)


def test_tls_files_are_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match="together"):
        pv.TlsConfig(cert_file=tmp_path / "c.pem")
    with pytest.raises(ValueError, match="cannot read"):
        pv.VaultClient("vault.internal:8201", tls=pv.TlsConfig(ca_file=tmp_path / "missing.pem"))


def test_token_is_validated_without_echoing_it() -> None:
    with pytest.raises(ValueError) as info:
        pv.VaultClient("127.0.0.1:8201", token="bad token\n")
    assert "bad token" not in str(info.value)


def test_resource_name_helpers() -> None:
    assert pv.workspace_name("ws") == "workspaces/ws"
    assert pv.workspace_name("workspaces/ws") == "workspaces/ws"
    assert pv.credential_name("ws", "c1") == "workspaces/ws/credentials/c1"
    assert pv.credential_version_name("ws", "c1", 2) == "workspaces/ws/credentials/c1/versions/2"
    assert pv.routing_context_name("ws", "r") == "workspaces/ws/routingContexts/r"
    with pytest.raises(ValueError):
        pv.workspace_name("Bad_Name")
