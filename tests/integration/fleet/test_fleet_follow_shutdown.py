"""Shutting down a real ``pipvault serve`` with an ``audit tail --follow`` stream open: the
follow stream ends at once with a clean status (the follower resumes from its cursor elsewhere),
so the process exits well inside the grace period instead of holding it for the whole of it."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import audit_service_pb2 as pb
from pipsync.vault.v1 import audit_service_pb2_grpc as agrpc

from tests.integration.fleet.fleet import Fleet

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]
GRACE_S = 10.0


def test_sigterm_ends_follow_streams_at_once_and_exits_inside_the_grace(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "fleet")
    try:
        a = fleet.start("a", listen={"grace_period_s": GRACE_S})
        fleet.make_workspace(a, "desk")
        call: Any = agrpc.AuditServiceStub(a.channel(a.admin)).StreamAuditEvents(
            pb.StreamAuditEventsRequest(follow=True), metadata=a.md("auditor"), timeout=120
        )
        got: list[str] = []
        ended: dict[str, Any] = {}

        def consume() -> None:
            try:
                for msg in call:
                    got.append(msg.event.name)
            except grpc.RpcError as err:
                ended["error"] = err.code()
            ended["at"] = time.monotonic()

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        deadline = time.monotonic() + 20
        while not any(n.startswith("workspaces/desk/") for n in got):
            assert time.monotonic() < deadline, f"the stream delivered nothing: {got}"
            time.sleep(0.05)
        time.sleep(1.0)  # the stream is now idle, between polls: what a tail mostly is

        sent = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        a.proc.wait(timeout=GRACE_S + 10)
        exited = time.monotonic() - sent
        reader.join(5)
        assert not reader.is_alive()
        assert exited < 3.0, f"shutdown took {exited:.1f}s with a follow stream open"
        assert "error" not in ended, f"the stream ended with {ended.get('error')}"
        assert call.code() == grpc.StatusCode.OK
        assert ended["at"] - sent < 3.0
        assert a.proc.returncode == 0, a.output()[-2000:]
    finally:
        fleet.close()
