"""Regression (issue 19 §6.4): a credential write aimed at a workspace outside the caller's grant
was audited as ``auth.denied``, not under the write's action with outcome ``denied`` as the README
says, so an alert keyed on ``credential.rotate`` + ``denied`` missed it.

Each refused cross-workspace write is now one event under its action (``credential.rotate``, …),
outcome ``denied``, ``RESOURCE_NOT_FOUND``, with ``details.denial = auth.denied`` and the target;
on the system chain, never the other workspace's (the caller cannot see it)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from tests.security.test_c01_cross_workspace_every_rpc import METHODS, _message_class, _request
from tests.support.custody import make_workspace, onboard
from tests.support.errors import call_error
from tests.support.vault import RunningVault, iter_audit, start_vault
from vault_server.rpc.interceptor import WRITE_ACTIONS

WRITES = [m for m in METHODS if f"/{m.containing_service.full_name}/{m.name}" in WRITE_ACTIONS]


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningVault, dict[str, str]]]:
    vault = start_vault(tmp_path_factory.mktemp("xws") / "home")
    try:
        make_workspace(vault, "ws-a")
        make_workspace(vault, "ws-b")
        cred = onboard(vault, "ws-b", "c", "B" * 24, secrets.token_hex(32))
        names = {"workspace": "workspaces/ws-b", "credential": cred.name,
                 "version": f"{cred.name}/versions/1", "routing_context": ""}  # fmt: skip
        yield vault, names
    finally:
        vault.stop()


def test_every_write_method_is_covered() -> None:
    assert len(WRITES) == len(WRITE_ACTIONS) >= 7


@pytest.mark.parametrize("method", WRITES, ids=lambda m: m.name)
def test_a_refused_cross_workspace_write_is_audited_under_its_action(
    target: tuple[RunningVault, dict[str, str]], method: MethodDescriptor
) -> None:
    vault, names = target
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = _request(method, names)
    out: Any = _message_class(method, output=True)
    before = len(list(iter_audit(vault.app)))
    with pytest.raises(grpc.RpcError) as refused:
        vault.channel().unary_unary(
            path, request_serializer=type(request).SerializeToString,
            response_deserializer=out.FromString,
        )(request, metadata=vault.md("security-a"), timeout=10)  # fmt: skip
    err = call_error(refused.value)
    assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")
    new = list(iter_audit(vault.app))[before:]
    assert [(e.action, e.outcome) for e in new] == [(WRITE_ACTIONS[path], "denied")], new
    event = new[0]
    assert (event.actor_id, event.error_reason) == ("security-a", "RESOURCE_NOT_FOUND")
    assert event.details["denial"] == "auth.denied"
    assert event.details["target"].startswith("workspaces/ws-b")
    # Not written into the workspace the caller cannot see.
    assert (event.chain_id, event.workspace) == ("system", "")
    assert event.peer.startswith("127.0.0.1") and event.reason == "cross-workspace probe"
