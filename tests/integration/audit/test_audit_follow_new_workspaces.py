"""A following audit stream and workspaces created after it opened: their first events reach the
follower within about one poll interval, and in the log's order (events committed one after
another arrive in that order, whichever chain each is on), on SQLite and on PostgreSQL as the
RLS-bound app role."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import audit_service_pb2 as pb

from tests.integration.audit.audit_harness import Log, make_log, start_audit_server
from tests.support import pg
from vault_server.core.clock import SystemClock
from vault_server.domain._call import system_context
from vault_server.domain._pagination import PageTokens
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.workspaces._manager import WorkspaceManager

POLL_S = 0.5  # audit.stream_poll_interval_s (the default)
LATENCY_BOUND_S = 6 * POLL_S  # about one poll; generous for a busy two-core CI machine


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Log]:
    if request.param == "sqlite":
        made = make_log(f"sqlite:///{tmp_path / 'vault.db'}")
        admin = None
    else:
        admin, app = pg.provisioned_database()
        made = make_log(app)  # the server's app role: row-level security applies
    try:
        made.append("ws-a", credential="c1", n=2)
        made.append("ws-b", credential="c9")
        yield made
    finally:
        made.close()
        if admin is not None:
            pg.drop_database(admin)


def _wait(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_new_workspaces_reach_a_follower_within_a_poll_and_in_order(log: Log) -> None:
    srv = start_audit_server(log, poll_interval_s=POLL_S)
    manager = WorkspaceManager(log.db, log.audit, SystemClock(), PageTokens(b"k" * 32))
    call: Any = srv.stub().StreamAuditEvents(
        pb.StreamAuditEventsRequest(follow=True), metadata=srv.md(), timeout=120
    )
    got: list[tuple[str, float]] = []

    def consume() -> None:
        try:
            for msg in call:
                got.append((msg.event.name, time.monotonic()))
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=consume, daemon=True)
    try:
        reader.start()
        _wait(lambda: any(n.startswith("system/") for n, _ in got))  # its own audit.stream
        time.sleep(3 * POLL_S)  # an idle follower, polling
        latencies: list[float] = []
        for i in range(3):
            ws = f"new-{i}"
            created = time.monotonic()
            manager.create(system_context("follow test"), ws, "")
            with log.db.transaction() as s:
                row = ws_repo.by_resource_id(s, ws)
                assert row is not None
                log.workspaces[ws] = row
            # Committed one after another, alternating chains.
            log.append("ws-a", "credential.rotate", credential="c1")
            log.append(ws, "credential.create", credential="n1")
            log.append("ws-b", "credential.rotate", credential="c9")
            log.append(ws, "credential.revoke", credential="n1")
            first = f"workspaces/{ws}/auditEvents/1"
            _wait(lambda first=first: any(n == first for n, _ in got))  # type: ignore[misc]
            latencies.append(next(t for n, t in got if n == first) - created)
            _wait(lambda ws=ws: any(n == f"workspaces/{ws}/auditEvents/3" for n, _ in got))  # type: ignore[misc]
        assert max(latencies) < LATENCY_BOUND_S, f"new workspaces seen after {latencies}"

        followed = [n for n, _ in got]
        listed = [
            e.name
            for e in srv.stub()
            .ListAuditEvents(
                pb.ListAuditEventsRequest(page_size=1000), metadata=srv.md(), timeout=10
            )
            .events
        ]
        assert len(followed) == len(set(followed))
        # The log's insertion order, the follower's own audit.list aside.
        assert followed == listed[: len(followed)], (followed, listed)
        assert len(listed) - len(followed) <= 1
    finally:
        call.cancel()
        reader.join(5)
        srv.stop()
