"""Attack: hostile request bytes — invalid UTF-8, deep nesting, out-of-range well-known types,
floods of streams, missing and absurd deadlines — against a live vault.

Each answer is a precise status with exactly one ``ErrorInfo`` (never gRPC's bare UNKNOWN or our
INTERNAL), the refusal is audited with the caller, and the server keeps serving. The first two
were found by the descriptor fuzzer (tests/fuzz): an undecodable request used to get a bare
UNKNOWN from gRPC, and a Timestamp/Duration out of its documented range an INTERNAL error.
"""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from pipsync.vault.v1 import audit_service_pb2 as apb
from pipsync.vault.v1 import audit_service_pb2_grpc as agrpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.support.custody import make_workspace, onboard
from tests.support.errors import call_error, expect_error
from tests.support.vault import RunningVault, iter_audit, start_vault


def _raw(vault: RunningVault, path: str, target: str | None = None):  # type: ignore[no-untyped-def]
    return vault.channel(target).unary_unary(
        path, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )


def _nested(depth: int) -> bytes:
    """An unknown length-delimited field nested ``depth`` levels deep."""
    blob = b""
    for _ in range(depth):
        blob = bytes([0xFA, 0x3E]) + _varint(len(blob)) + blob  # field 999, wire type 2
    return blob


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x0a\x03w\xffs",  # field 1 (string) = b"w\xffs": invalid UTF-8
        b"\x0a\x02\xc3\x28",
        b"\x0a\x05workspaces",  # truncated: says 5, the field and message end later
        b"\x0d\x01\x02",  # fixed32 with two bytes
    ],
    ids=["invalid-utf8", "invalid-utf8-2", "length-mismatch", "truncated-fixed32"],
)
def test_undecodable_request_is_invalid_argument_and_audited(
    vault: RunningVault, payload: bytes
) -> None:
    call = _raw(vault, "/pipsync.vault.v1.WorkspaceService/GetWorkspace")
    err = expect_error(call, payload, metadata=vault.md("security"), timeout=10)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT, (err.code, err.message)
    assert err.reason == "INVALID_FIELD" and err.metadata == {"field": "request"}
    denied = [e for e in iter_audit(vault.app) if e.action == "auth.denied"]
    assert denied and denied[-1].actor_id == "security"


def test_deeply_nested_unknown_fields_are_inert(vault: RunningVault) -> None:
    """The API's own messages nest at most a few levels; an attacker's nesting can only hide in
    unknown fields, which are kept as opaque bytes (never recursed into) and never echoed."""
    make_workspace(vault, "ws-n")
    call = _raw(vault, "/pipsync.vault.v1.WorkspaceService/GetWorkspace")
    name = wpb.GetWorkspaceRequest(name="workspaces/ws-n").SerializeToString()
    for depth in (3, 2000, 60000):
        raw = call(name + _nested(depth), metadata=vault.md("security"), timeout=10)
        response = wpb.GetWorkspaceResponse.FromString(raw)
        assert response.workspace.name == "workspaces/ws-n"
        assert len(raw) < 4096, "the nested unknown field was echoed back"


@pytest.mark.parametrize(
    "ts",
    [
        timestamp_pb2.Timestamp(seconds=0, nanos=-1),
        timestamp_pb2.Timestamp(seconds=2**62),
        timestamp_pb2.Timestamp(seconds=-(2**62)),
        timestamp_pb2.Timestamp(seconds=253402300800),  # year 10000
    ],
)
def test_out_of_range_timestamps_name_the_field(
    vault: RunningVault, ts: timestamp_pb2.Timestamp
) -> None:
    stub = agrpc.AuditServiceStub(vault.channel())
    request = apb.ListAuditEventsRequest(filter=apb.AuditFilter(end_time=ts))
    err = expect_error(stub.ListAuditEvents, request, metadata=vault.md("auditor"), timeout=10)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    assert err.metadata["field"] == "filter.end_time"


@pytest.mark.parametrize(
    "ttl",
    [
        duration_pb2.Duration(seconds=2**62),
        duration_pb2.Duration(seconds=1, nanos=-5),
        duration_pb2.Duration(seconds=0, nanos=2_000_000_000),
    ],
)
def test_out_of_range_durations_name_the_field(
    vault: RunningVault, ttl: duration_pb2.Duration
) -> None:
    make_workspace(vault, "ws-a")
    cred = onboard(vault, "ws-a", "c", "A" * 24, "s" * 32)
    call = vault.channel(vault.socket_target).unary_unary(
        "/pipsync.vault.v1.SigningService/BeginRouting",
        request_serializer=spb.BeginRoutingRequest.SerializeToString,
        response_deserializer=spb.BeginRoutingResponse.FromString,
    )
    request = spb.BeginRoutingRequest(credential=cred.name, strategy_id="s", reason="r", ttl=ttl)
    err = expect_error(call, request, metadata=vault.md("router"), timeout=10)
    assert (err.code, err.reason, err.metadata["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "ttl",
    )
    freeze = wgrpc.WorkspaceServiceStub(vault.channel()).FreezeWorkspace
    err = expect_error(
        freeze,
        wpb.FreezeWorkspaceRequest(name="workspaces/ws-a", reason="r", ttl=ttl),
        metadata=vault.md("security"),
        timeout=10,
    )
    assert (err.reason, err.metadata["field"]) == ("INVALID_FIELD", "ttl")


def test_missing_and_absurd_deadlines(vault: RunningVault) -> None:
    stub = wgrpc.WorkspaceServiceStub(vault.channel())
    err = expect_error(stub.ListWorkspaces, wpb.ListWorkspacesRequest(), metadata=vault.md())
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DEADLINE_REQUIRED")
    # A deadline of ~115 days is accepted (and capped server-side), not an error.
    assert stub.ListWorkspaces(wpb.ListWorkspacesRequest(), metadata=vault.md(), timeout=1e7)


def test_a_flood_of_follow_streams_is_shed_and_the_server_keeps_serving(tmp_path: Path) -> None:
    """More concurrent follow streams than ``limits.max_concurrent_rpcs``: the excess is refused
    with RESOURCE_EXHAUSTED ``CONCURRENCY_LIMITED`` and, once they end, service resumes."""
    vault = start_vault(tmp_path / "home", limits={"max_concurrent_rpcs": 4})
    try:
        _flood(vault, 4)
    finally:
        vault.stop()


def _flood(vault: RunningVault, cap: int) -> None:
    stub = agrpc.AuditServiceStub(vault.channel())
    streams = [
        stub.StreamAuditEvents(
            apb.StreamAuditEventsRequest(follow=True), metadata=vault.md("auditor"), timeout=30
        )
        for _ in range(cap + 8)
    ]
    refused: list[str] = []

    def first(s) -> None:  # type: ignore[no-untyped-def]
        try:
            for _ in s:
                break
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                refused.append(call_error(exc).reason)

    threads = [threading.Thread(target=first, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    for s in streams:
        s.cancel()
    for t in threads:
        t.join(timeout=10)
    assert refused, "no stream was shed"
    assert set(refused) == {"CONCURRENCY_LIMITED"}
    ws = wgrpc.WorkspaceServiceStub(vault.channel())
    assert ws.ListWorkspaces(wpb.ListWorkspacesRequest(), metadata=vault.md(), timeout=10)
