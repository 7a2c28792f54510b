"""StreamAuditEvents `resume_after`: a reopened stream continues strictly after the last event
received from each chain (no gap, no duplicate), and the names are validated like any input
(another workspace's event is NOT_FOUND, exactly like a missing one). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import audit_service_pb2 as pb

from tests.integration.audit.audit_harness import AuditServer, Log, make_log, start_audit_server
from tests.support.errors import expect_error


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    log = make_log(database_url)
    log.append("ws-a", credential="c1", n=4)
    log.append("ws-b", credential="c9", n=3)
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


def _stream(server: AuditServer, who: str = "auditor", **request: Any) -> list[str]:
    call = server.stub().StreamAuditEvents(
        pb.StreamAuditEventsRequest(**request), metadata=server.md(who), timeout=10
    )
    return [m.event.name for m in call]


def _chain(name: str) -> str:
    return name.rpartition("/auditEvents/")[0]


def test_a_resumed_stream_continues_after_the_named_events(log: Log, server: AuditServer) -> None:
    first = _stream(server)
    a_events = [n for n in first if _chain(n) == "workspaces/ws-a"]
    assert a_events == [f"workspaces/ws-a/auditEvents/{i}" for i in range(1, len(a_events) + 1)]
    assert len(a_events) >= 4
    # Interrupted after ws-a #2 and everything of ws-b and system seen so far.
    last = {
        "workspaces/ws-a": "workspaces/ws-a/auditEvents/2",
        "workspaces/ws-b": [n for n in first if _chain(n) == "workspaces/ws-b"][-1],
        "system": [n for n in first if _chain(n) == "system"][-1],
    }
    log.append("ws-b", "credential.rotate", credential="c9")  # committed while disconnected
    resumed = _stream(server, resume_after=list(last.values()))
    assert [n for n in resumed if _chain(n) == "workspaces/ws-a"] == a_events[2:]
    seen_b = int(last["workspaces/ws-b"].rsplit("/", 1)[1])
    assert [n for n in resumed if _chain(n) == "workspaces/ws-b"] == [
        f"workspaces/ws-b/auditEvents/{seen_b + 1}"
    ]
    # The first stream's own audit.stream event (system chain) is the only system event left.
    system = [n for n in resumed if _chain(n) == "system"]
    seen = int(last["system"].rsplit("/", 1)[1])
    assert system == [f"system/auditEvents/{i}" for i in range(seen + 1, seen + 1 + len(system))]
    # Chains resumed at their last event repeat nothing (ws-a was resumed mid-way on purpose).
    assert not {n for n in resumed if _chain(n) != "workspaces/ws-a"} & set(first)


def test_resume_after_is_validated(server: AuditServer) -> None:
    stub = server.stub()

    def refused(who: str, *names: str) -> tuple[grpc.StatusCode, str]:
        err = expect_error(
            lambda *a, **k: list(stub.StreamAuditEvents(*a, **k)),
            pb.StreamAuditEventsRequest(resume_after=list(names)),
            metadata=server.md(who),
            timeout=10,
        )
        return err.code, err.reason

    not_found = (grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")
    invalid = (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    # Another workspace's event and a missing one answer the same.
    assert refused("auditor-a", "workspaces/ws-b/auditEvents/1") == not_found
    assert refused("auditor-a", "workspaces/ws-a/auditEvents/999") == not_found
    assert refused("auditor", "workspaces/nope/auditEvents/1") == not_found
    assert refused("auditor", "workspaces/ws-a/auditEvents/0") == invalid
    assert refused("auditor", "workspaces/ws-a/credentials/c1") == invalid
    assert (
        refused("auditor", "workspaces/ws-a/auditEvents/1", "workspaces/ws-a/auditEvents/2")
        == invalid
    )
    assert refused("auditor", *[f"workspaces/ws-a/auditEvents/{i}" for i in range(1, 1002)]) == (
        invalid
    )
