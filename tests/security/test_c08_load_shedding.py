"""Limits through a real vault: the concurrency cap and per-principal rate limits shed load with
RESOURCE_EXHAUSTED + ErrorInfo, and shedding is counted, not audited."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import workspace_service_pb2 as pb
from pipsync.vault.v1 import workspace_service_pb2_grpc as rpc

from tests.support.errors import call_error, expect_error
from tests.support.vault import ROLES, iter_audit, start_vault


def test_concurrency_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = start_vault(tmp_path / "home", limits={"max_concurrent_rpcs": 2, "storage_threads": 4})
    try:
        original = vault.app.workspaces.list

        def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
            time.sleep(0.6)
            return original(*args, **kwargs)

        monkeypatch.setattr(vault.app.workspaces, "list", slow)
        stub = rpc.WorkspaceServiceStub(vault.channel())
        outcomes: list[str] = []

        def call() -> None:
            try:
                stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=vault.md(), timeout=10)
                outcomes.append("OK")
            except grpc.RpcError as exc:
                err = call_error(exc)
                outcomes.append(f"{err.code.name}:{err.reason}")

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert outcomes.count("OK") >= 2
        assert "RESOURCE_EXHAUSTED:CONCURRENCY_LIMITED" in outcomes
        assert set(outcomes) <= {"OK", "RESOURCE_EXHAUSTED:CONCURRENCY_LIMITED"}
        assert not [e for e in iter_audit(vault.app) if e.error_reason == "CONCURRENCY_LIMITED"]
    finally:
        vault.stop()


def test_per_principal_rate_limit(tmp_path: Path) -> None:
    roles = dict(ROLES)
    roles["security"] = {**ROLES["security"], "rate_limit_per_s": 1.0}
    vault = start_vault(tmp_path / "home", roles=roles)
    try:
        stub = rpc.WorkspaceServiceStub(vault.channel())
        results = []
        for _ in range(6):
            try:
                stub.ListWorkspaces(
                    pb.ListWorkspacesRequest(), metadata=vault.md("security"), timeout=5
                )
                results.append("OK")
            except grpc.RpcError as exc:
                results.append(call_error(exc).reason)
        assert results[:2] == ["OK", "OK"] and "RATE_LIMITED" in results
        # Another principal is not affected.
        stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=vault.md("auditor"), timeout=5)
        err = expect_error(
            stub.ListWorkspaces,
            pb.ListWorkspacesRequest(),
            metadata=vault.md("security"),
            timeout=5,
        )
        assert (err.code, err.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
        time.sleep(1.1)  # the bucket refills
        stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=vault.md("security"), timeout=5)
    finally:
        vault.stop()
