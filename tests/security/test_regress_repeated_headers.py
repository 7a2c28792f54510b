"""Regression (issue 19 §6.1): a call carrying the same identity or audit header twice used to be
read as its last value, so ``[junk, valid]`` authenticated and ``[auditor, security]`` ran
``CreateWorkspace`` (the auditor alone may not) with an audit event naming only ``security``.

Any repeat of ``authorization`` is now UNAUTHENTICATED, and of ``x-pipvault-on-behalf-of``,
``x-pipvault-reason`` or ``x-forwarded-for`` INVALID_ARGUMENT, each with an ``ErrorInfo`` and one
``auth.denied`` event; the servicer never runs. (A repeated ``x-forwarded-for`` never reaches the
vault: gRPC core keeps its last copy; the last test pins that.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.support.errors import CallError, expect_error
from tests.support.raw_h2 import unary_call
from tests.support.vault import ROLES, RunningVault, iter_audit, start_vault
from vault_server.core.errors import InvalidArgument
from vault_server.rpc.headers import read_headers

# A console that may name the user it acts for, so one on-behalf-of header is accepted and only
# the repeat can be what is refused.
CALLERS = {
    **ROLES,
    "console": {"type": "service", "roles": ["security"], "workspaces": ["*"],
                "may_assert_on_behalf_of": True},
}  # fmt: skip


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVault]:
    # Loopback is a trusted proxy, so x-forwarded-for is believed when it is unambiguous.
    running = start_vault(tmp_path_factory.mktemp("dup") / "home", roles=CALLERS,
                          trusted_proxies=["127.0.0.0/8"])  # fmt: skip
    try:
        yield running
    finally:
        running.stop()


def _bearer(vault: RunningVault, who: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {vault.tokens[who]}")


def _create(vault: RunningVault, ws: str, metadata: list[tuple[str, str]]) -> tuple[CallError, Any]:
    before = len(list(iter_audit(vault.app)))
    err = expect_error(
        wgrpc.WorkspaceServiceStub(vault.channel()).CreateWorkspace,
        wpb.CreateWorkspaceRequest(workspace_id=ws, reason="repeated header"),
        metadata=metadata,
        timeout=10,
    )
    new = list(iter_audit(vault.app))[before:]
    assert [(e.action, e.outcome) for e in new] == [("auth.denied", "denied")], new
    assert new[0].error_reason == err.reason
    # Nothing was created: the servicer never ran.
    listed = wgrpc.WorkspaceServiceStub(vault.channel()).ListWorkspaces(
        wpb.ListWorkspacesRequest(), metadata=vault.md("security"), timeout=10
    )
    assert ws not in [w.name.removeprefix("workspaces/") for w in listed.workspaces]
    return err, new[0]


@pytest.mark.parametrize("first", ["junk", "auditor"])
def test_two_authorization_headers_are_unauthenticated(vault: RunningVault, first: str) -> None:
    head = ("authorization", "Bearer junk") if first == "junk" else _bearer(vault, "auditor")
    err, event = _create(vault, f"dup-{first}", [head, _bearer(vault, "security")])
    assert err.code is grpc.StatusCode.UNAUTHENTICATED
    assert err.reason == "AUTHENTICATION_REQUIRED"
    assert err.metadata["header"] == "authorization"
    # No principal is believed: the event does not name the last (valid) identity.
    assert event.actor_id not in ("security", "auditor")


@pytest.mark.parametrize("header", ["x-pipvault-on-behalf-of", "x-pipvault-reason"])
def test_repeated_audit_headers_are_invalid(vault: RunningVault, header: str) -> None:
    md = [*vault.md("console"), (header, "alice"), (header, "mallory")]
    err, event = _create(vault, "dup-" + header.rsplit("-", 1)[-1], md)
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason == "INVALID_FIELD"
    assert err.metadata["field"] == header
    assert event.actor_id == "console"
    assert event.peer.startswith("127.0.0.1")


def test_single_headers_still_pass(vault: RunningVault) -> None:
    """The control: one of each is accepted (so the refusals above are about the repeat)."""
    md = [*vault.md("console"), ("x-pipvault-on-behalf-of", "alice"),
          ("x-pipvault-reason", "one"), ("x-forwarded-for", "10.0.0.1")]  # fmt: skip
    before = len(list(iter_audit(vault.app)))
    wgrpc.WorkspaceServiceStub(vault.channel()).CreateWorkspace(
        wpb.CreateWorkspaceRequest(workspace_id="single"), metadata=md, timeout=10
    )
    new = list(iter_audit(vault.app))[before:]
    assert [(e.actor_id, e.on_behalf_of, e.reason, e.peer, e.outcome) for e in new] == [
        ("console", "alice", "one", "10.0.0.1", "success")
    ]


def test_a_repeated_forwarded_for_never_audits_a_copy_the_vault_cannot_trust(
    vault: RunningVault,
) -> None:
    """x-forwarded-for repeated on the wire (a raw HTTP/2 client; gRPC clients send one copy).

    gRPC core itself keeps only the last copy of this header before any handler sees it (it is a
    known, non-repeatable header there), so the vault cannot tell the repeat apart: the interceptor
    would refuse it (INVALID_FIELD) if it ever arrived, and otherwise the copy kept is the last,
    the one the nearest proxy appended. Either way the first copy, which the client chose, is
    never audited as the peer."""
    md = [*vault.md("console"), ("x-forwarded-for", "203.0.113.7"),
          ("x-forwarded-for", "198.51.100.9")]  # fmt: skip
    before = len(list(iter_audit(vault.app)))
    request = wpb.CreateWorkspaceRequest(workspace_id="raw-xff", reason="raw")
    path = "/pipsync.vault.v1.WorkspaceService/CreateWorkspace"
    unary_call(vault.admin_target, path, request.SerializeToString(), md)
    new = list(iter_audit(vault.app))[before:]
    assert len(new) == 1, [(e.action, e.outcome) for e in new]
    event = new[0]
    if event.outcome == "denied":
        assert (event.action, event.error_reason) == ("auth.denied", "INVALID_FIELD")
        assert event.peer == "127.0.0.1"
    else:
        assert (event.action, event.peer) == ("workspace.create", "198.51.100.9")


def test_the_pipeline_refuses_a_repeated_forwarded_for_should_one_arrive() -> None:
    """The part of the defence gRPC core keeps the wire test from reaching."""
    headers = read_headers([("x-forwarded-for", "203.0.113.7"), ("x-forwarded-for", "10.0.0.2")])
    assert "x-forwarded-for" not in headers.values  # no copy is left to be believed
    with pytest.raises(InvalidArgument) as refused:
        headers.refuse_repeated()
    assert refused.value.field == "x-forwarded-for"
