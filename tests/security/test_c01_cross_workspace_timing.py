"""Attack: tell another workspace's objects from missing ones by status or by latency.

Workspace B's principals probe A's real names and names that exist nowhere, interleaved, over
several RPCs on both planes. The answers must be identical (code, reason, message shape, ErrorInfo
metadata keys) and both audited alike; latency distributions are compared loosely (medians within
a generous factor plus slack): this catches an oracle such as a decrypt or a second query on one
path only, never asserts speed, and tolerates a shared 2-core machine.
"""

from __future__ import annotations

import re
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

import grpc
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import workspace_service_pb2 as wpb

from tests.support import signing_flow as sf
from tests.support.custody import make_workspace, onboard
from tests.support.errors import call_error
from tests.support.vault import RunningVault, iter_audit

ROUNDS = 15
FACTOR, SLACK_S = 3.0, 0.005


def _probe(fn: Callable[..., Any], request: Any, md: list[tuple[str, str]]) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        fn(request, metadata=md, timeout=10)
        shape = "OK"
    except grpc.RpcError as exc:
        err = call_error(exc)
        # The message shape with the probed name blanked out: it may echo the caller's own input.
        message = re.sub(r"workspaces/\S*", "<name>", err.message)
        shape = f"{err.code.name}:{err.reasons}:{sorted(err.metadata)}:{message}"
    return shape, time.perf_counter() - started


def test_existing_and_missing_ids_are_indistinguishable(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    cred = onboard(vault, "ws-a", "real", "A" * 24, secrets.token_hex(32))
    rc = sf.begin(vault, cred.name).name
    missing_rc = f"workspaces/ws-a/routingContexts/{secrets.token_hex(8)}"
    ws = sf.workspaces(vault)
    cr = sf.credentials(vault)
    sg = sf.signing(vault)
    order = sf.place_for(sf.binance_hmac(), "t1")
    cases: dict[str, tuple[Callable[..., Any], Any, Any, str]] = {
        "GetWorkspace": (
            ws.GetWorkspace,
            wpb.GetWorkspaceRequest(name="workspaces/ws-a"),
            wpb.GetWorkspaceRequest(name="workspaces/ws-nowhere"),
            "security-b",
        ),
        "GetCredential": (
            cr.GetCredential,
            cpb.GetCredentialRequest(name=cred.name),
            cpb.GetCredentialRequest(name="workspaces/ws-a/credentials/nowhere"),
            "security-b",
        ),
        "GetCredential-in-own-workspace": (
            cr.GetCredential,
            cpb.GetCredentialRequest(name="workspaces/ws-b/credentials/real"),
            cpb.GetCredentialRequest(name="workspaces/ws-b/credentials/nowhere"),
            "security-b",
        ),
        "ListCredentials": (
            cr.ListCredentials,
            cpb.ListCredentialsRequest(parent="workspaces/ws-a"),
            cpb.ListCredentialsRequest(parent="workspaces/ws-nowhere"),
            "security-b",
        ),
        "SignOrder": (
            sg.SignOrder,
            spb.SignOrderRequest(routing_context=rc, order=order, reason="probe"),
            spb.SignOrderRequest(routing_context=missing_rc, order=order, reason="probe"),
            "router-b",
        ),
        "BeginRouting": (
            sg.BeginRouting,
            spb.BeginRoutingRequest(credential=cred.name, strategy_id="p", reason="probe"),
            spb.BeginRoutingRequest(
                credential="workspaces/ws-a/credentials/nowhere", strategy_id="p", reason="probe"
            ),
            "router-b",
        ),
    }
    for label, (fn, existing, missing, who) in cases.items():
        md = vault.md(who)
        _probe(fn, existing, md), _probe(fn, missing, md)  # warm both paths
        shapes: dict[str, set[str]] = {"existing": set(), "missing": set()}
        times: dict[str, list[float]] = {"existing": [], "missing": []}
        audits: dict[str, int] = {}
        for kind, request in (("existing", existing), ("missing", missing)):
            before = len(list(iter_audit(vault.app)))
            shape, _ = _probe(fn, request, md)
            audits[kind] = len(list(iter_audit(vault.app))) - before
            shapes[kind].add(shape)
        for _ in range(ROUNDS):
            for kind, request in (("existing", existing), ("missing", missing)):
                shape, elapsed = _probe(fn, request, md)
                shapes[kind].add(shape)
                times[kind].append(elapsed)
        assert shapes["existing"] == shapes["missing"], (label, shapes)
        assert len(shapes["existing"]) == 1 and "NOT_FOUND" in next(iter(shapes["existing"])), (
            label,
            shapes,
        )
        assert audits["existing"] == audits["missing"], (label, audits)
        fast, slow = sorted(statistics.median(t) for t in times.values())
        assert slow <= fast * FACTOR + SLACK_S, (
            label,
            {k: statistics.median(v) for k, v in times.items()},
        )
