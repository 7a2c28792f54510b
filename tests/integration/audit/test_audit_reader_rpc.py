"""AuditService through a real grpc.aio server and the project's interceptor: list filters and
pages, caller scope, streams (backlog, follow, a stalled consumer) and online verification, on
SQLite and PostgreSQL (and as the RLS-bound app role)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from pipsync.vault.v1 import audit_pb2, audit_service_pb2_grpc
from pipsync.vault.v1 import audit_service_pb2 as pb

from tests.integration.audit.audit_harness import (
    Attacker,
    AuditServer,
    Log,
    make_log,
    start_audit_server,
)
from tests.support import pg
from tests.support.errors import expect_error
from vault_server.alerts.checkpoint_sinks import FileSink
from vault_server.audit._checkpoints import (
    AuditCheckpointer,
    CheckpointSigner,
    create_signing_key,
    file_checkpoints,
)
from vault_server.audit._log import AuditRecord
from vault_server.audit._store import ChainStore
from vault_server.core.clock import SystemClock
from vault_server.storage.tenant import bind_workspace

DENIED = audit_pb2.AuditEvent.OUTCOME_DENIED


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    log = make_log(database_url)
    log.append("ws-a", credential="c1", n=5)
    log.append("ws-a", "credential.read", credential="c2", outcome="denied", actor="bob", n=3)
    log.append("ws-b", credential="c9", n=2)
    log.append(None, "auth.denied", outcome="denied", actor="mallory")
    try:
        yield log
    finally:
        log.close()


@pytest.fixture
def server(log: Log) -> Iterator[AuditServer]:
    srv = start_audit_server(log)
    try:
        yield srv
    finally:
        srv.stop()


def list_all(server: AuditServer, who: str = "auditor", size: int = 0, **flt: Any) -> list[Any]:
    stub, out, token = server.stub(), [], ""
    while True:
        resp = stub.ListAuditEvents(
            pb.ListAuditEventsRequest(
                filter=pb.AuditFilter(**flt), page_size=size, page_token=token
            ),
            metadata=server.md(who),
            timeout=10,
        )
        out += list(resp.events)
        token = resp.next_page_token
        if not token:
            return out


def test_list_filters_pages_and_scope(server: AuditServer) -> None:
    everything = [e for e in list_all(server, size=4) if not e.action.startswith("audit.")]
    assert len(everything) == 2 + 8 + 2 + 1  # creates, ws-a, ws-b, system
    times = [e.event_time.ToDatetime() for e in everything]
    assert times == sorted(times)  # oldest first, across chains

    ws_a = list_all(server, workspace="workspaces/ws-a", action="credential.")
    assert [e.name for e in ws_a] == [f"workspaces/ws-a/auditEvents/{n}" for n in range(2, 10)]
    first = ws_a[0]
    assert first.actor.type == audit_pb2.Actor.TYPE_USER and first.actor.id == "alice"
    assert first.credential == "workspaces/ws-a/credentials/c1" and first.peer == "10.0.0.7"
    assert first.hash and first.prev_hash and first.reason == "test"
    assert len(list_all(server, workspace="workspaces/ws-a", action="credential.read")) == 3
    assert {e.actor.id for e in list_all(server, workspace="workspaces/ws-a", actor="bob")} == {
        "bob"
    }
    denied = list_all(server, outcome=DENIED)
    assert {e.action for e in denied} == {"credential.read", "auth.denied"}
    by_cred = list_all(server, credential="workspaces/ws-a/credentials/c1", size=2)
    assert len(by_cred) == 5
    start = timestamp_pb2.Timestamp()
    start.FromDatetime(ws_a[3].event_time.ToDatetime())
    end = timestamp_pb2.Timestamp()
    end.FromDatetime(ws_a[6].event_time.ToDatetime())
    window = list_all(server, workspace="workspaces/ws-a", start_time=start, end_time=end)
    assert [e.sequence for e in window] == [5, 6, 7]

    # An auditor limited to ws-a sees that chain only (no ws-b, no system events).
    limited = list_all(server, "auditor-a")
    assert limited and {e.workspace for e in limited} == {"workspaces/ws-a"}
    hidden = expect_error(
        server.stub().ListAuditEvents,
        pb.ListAuditEventsRequest(filter=pb.AuditFilter(workspace="workspaces/ws-b")),
        metadata=server.md("auditor-a"),
        timeout=5,
    )
    assert (hidden.code, hidden.reason) == (grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")
    # Reading the log is audited once per call: in the one workspace's chain it named, else in
    # the system chain.
    named = list_all(server, workspace="workspaces/ws-a", action="audit.list", actor="auditor")
    assert named and named[0].details["workspace"] == "workspaces/ws-a"
    assert named[0].details["action"] == "credential."
    unnamed = list_all(server, action="audit.list", actor="auditor-a")
    assert len(unnamed) == 1 and unnamed[0].name.startswith("system/auditEvents/")


def test_bad_filters_and_foreign_page_tokens(server: AuditServer) -> None:
    stub = server.stub()
    resp = stub.ListAuditEvents(
        pb.ListAuditEventsRequest(page_size=1), metadata=server.md(), timeout=5
    )
    assert resp.next_page_token
    cases = [
        (pb.AuditFilter(action="credential.*"), "", "INVALID_FIELD"),
        (pb.AuditFilter(workspace="nope"), "", "INVALID_FIELD"),
        (
            pb.AuditFilter(
                workspace="workspaces/ws-a", credential="workspaces/ws-b/credentials/c9"
            ),
            "",
            "INVALID_FIELD",
        ),
        (pb.AuditFilter(actor="bob"), resp.next_page_token, "INVALID_PAGE_TOKEN"),
        (pb.AuditFilter(), "forged-token", "INVALID_PAGE_TOKEN"),
    ]
    for flt, token, reason in cases:
        err = expect_error(
            stub.ListAuditEvents,
            pb.ListAuditEventsRequest(filter=flt, page_size=1, page_token=token),
            metadata=server.md(),
            timeout=5,
        )
        assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason), flt
    denied = expect_error(
        stub.ListAuditEvents, pb.ListAuditEventsRequest(), metadata=server.md("router"), timeout=5
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


def test_stream_sends_the_backlog_then_follows_new_events(log: Log, server: AuditServer) -> None:
    call = server.stub().StreamAuditEvents(
        pb.StreamAuditEventsRequest(
            filter=pb.AuditFilter(workspace="workspaces/ws-a"), follow=True
        ),
        metadata=server.md(),
        timeout=30,
    )
    got: list[Any] = []
    done = threading.Event()

    def consume() -> None:
        try:
            for msg in call:
                got.append(msg.event)
        except grpc.RpcError:
            pass
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    _wait(lambda: len(got) >= 10)  # 9 events + its own audit.stream event
    assert [e.sequence for e in got[:10]] == list(range(1, 11))
    assert got[9].action == "audit.stream" and got[9].details["follow"] == "true"
    log.append("ws-a", "credential.rotate", credential="c1")
    log.append("ws-b", "credential.rotate")  # another workspace: filtered out
    _wait(lambda: len(got) >= 11)
    assert got[10].action == "credential.rotate" and got[10].sequence == 11
    time.sleep(0.3)
    assert len(got) == 11
    call.cancel()
    assert done.wait(5)

    backlog = server.stub().StreamAuditEvents(
        pb.StreamAuditEventsRequest(filter=pb.AuditFilter(workspace="workspaces/ws-b")),
        metadata=server.md(),
        timeout=10,
    )
    assert [m.event.action for m in backlog][-2:] == ["credential.rotate", "audit.stream"]


def test_a_stalled_stream_consumer_never_blocks_writers(log: Log, server: AuditServer) -> None:
    ws = log.workspaces["ws-a"]
    ctx = log.ctx()
    with log.db.transaction() as s:  # a large backlog: far more than the flow-control windows
        bind_workspace(s, ws.id)
        for _ in range(1500):
            record = AuditRecord("credential.use", workspace_id=ws.id, workspace="workspaces/ws-a",
                                 details={"pad": "x" * 2000})  # fmt: skip
            log.audit.append(s, ctx, record)
    # No BDP probing: the client's flow-control window stays small, so the server really blocks
    # in its write to this consumer (a few dozen events in) instead of buffering megabytes.
    channel = grpc.insecure_channel(
        f"127.0.0.1:{server.port}", options=[("grpc.http2.bdp_probe", 0)]
    )
    server.channels.append(channel)
    call = audit_service_pb2_grpc.AuditServiceStub(channel).StreamAuditEvents(
        pb.StreamAuditEventsRequest(
            filter=pb.AuditFilter(workspace="workspaces/ws-a"), follow=True
        ),
        metadata=server.md(),
        timeout=60,
    )
    time.sleep(0.5)

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        for future in [pool.submit(log.append, "ws-a") for _ in range(200)]:
            future.result(timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 15, f"200 appends took {elapsed:.1f}s behind a stalled stream"

    # The stalled stream resumes where it stopped and misses nothing.
    seqs = []
    for msg in call:
        seqs.append(msg.event.sequence)
        if len(seqs) == 9 + 1500 + 1 + 200:
            break
    assert seqs == list(range(1, len(seqs) + 1))
    call.cancel()


def test_verify_online_over_the_callers_chains(log: Log, server: AuditServer) -> None:
    stub = server.stub()
    ok = stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=server.md(), timeout=10)
    assert ok.intact and ok.chains_checked == 3 and ok.events_checked == 13
    a = Attacker(log.url)
    a.drop_guards()
    a.sql("UPDATE audit_events SET actor_id = 'nobody' WHERE chain_id = :c AND seq = 2",
          c=log.chain_id("ws-b"))  # fmt: skip
    a.close()
    bad = stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=server.md(), timeout=10)
    assert not bad.intact
    assert (bad.first_bad_event, bad.problem) == ("workspaces/ws-b/auditEvents/2", "hash_mismatch")
    mine = stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=server.md("auditor-a"),
                               timeout=10)  # fmt: skip
    assert mine.intact and mine.chains_checked == 1  # ws-b is not this auditor's to see
    one = stub.VerifyAuditLog(
        pb.VerifyAuditLogRequest(workspace="workspaces/ws-a"), metadata=server.md(), timeout=10
    )
    assert one.intact and one.chains_checked == 1
    recorded = list_all(server, action="audit.verify", outcome=audit_pb2.AuditEvent.OUTCOME_SUCCESS)
    assert any(e.details.get("problem") == "hash_mismatch" for e in recorded)


def test_a_follow_stream_ends_at_the_servers_stream_deadline_cap(log: Log) -> None:
    srv = start_audit_server(log, max_stream_deadline_s=1.0)
    try:
        started = time.monotonic()
        call = srv.stub().StreamAuditEvents(
            pb.StreamAuditEventsRequest(follow=True), metadata=srv.md(), timeout=30
        )
        events = [m.event for m in call]  # ends by itself, cleanly
        assert 0.8 < time.monotonic() - started < 5
        assert call.code() == grpc.StatusCode.OK and len(events) == 13 + 1
    finally:
        srv.stop()


def test_verify_online_against_the_checkpoints_file(log: Log, tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    signer = CheckpointSigner(create_signing_key(key))
    path = tmp_path / "checkpoints.jsonl"
    job = AuditCheckpointer(ChainStore(log.db), signer, [FileSink(path)], SystemClock())
    srv = start_audit_server(log, checkpoints=file_checkpoints(path, signer.public_key))
    try:
        verify = srv.stub().VerifyAuditLog
        assert verify(pb.VerifyAuditLogRequest(), metadata=srv.md(), timeout=10).intact
        job.checkpoint_now()
        chain = log.chain_id("ws-a")
        a = Attacker(log.url)
        a.drop_guards()
        seven = a.row(chain, 7)["hash"]
        a.sql("DELETE FROM audit_events WHERE chain_id = :c AND seq > 7", c=chain)
        a.sql("UPDATE audit_chain_heads SET seq = 7, hash = :h WHERE chain_id = :c", c=chain,
              h=seven)  # fmt: skip
        a.close()
        bad = verify(pb.VerifyAuditLogRequest(workspace="workspaces/ws-a"), metadata=srv.md(),
                     timeout=10)  # fmt: skip
        assert not bad.intact
        assert (bad.first_bad_event, bad.problem) == ("workspaces/ws-a/auditEvents/8", "truncated")
    finally:
        srv.stop()


@pytest.fixture
def app_role_url() -> Iterator[str]:
    """PostgreSQL only: row-level security is the database's guard."""
    from tests.support import pg

    admin, app = pg.provisioned_database()
    try:
        yield app
    finally:
        pg.drop_database(admin)


def test_reading_and_verifying_as_the_rls_bound_app_role(app_role_url: str) -> None:
    log = make_log(app_role_url)
    log.append("ws-a", n=2)
    log.append("ws-b", n=3)
    srv = start_audit_server(log)
    try:
        names = {e.name for e in list_all(srv)}
        assert {"workspaces/ws-a/auditEvents/3", "workspaces/ws-b/auditEvents/4"} <= names
        ok = srv.stub().VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=srv.md(), timeout=10)
        assert ok.intact and ok.chains_checked == 3 and ok.events_checked >= 7
    finally:
        srv.stop()
        log.close()
    assert pg.admin_for(app_role_url) != app_role_url


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
