"""Attack: mass assignment and identifier smuggling — a caller tries to set what only the server
decides (workspace, state, scopes, ids) or to name something it may not.

- fields the request does not declare (sent as unknown wire fields with the resource's own field
  numbers shifted out of the request's range, or as a whole serialized ``Credential``) are
  ignored: the credential is created ACTIVE, in the parent's workspace, with its own scopes;
- ids smuggle nothing: path separators, the ``*`` grant wildcard, AIP's ``-`` wildcard, trailing
  newlines (``$`` in a regex matches before one) and look-alikes are INVALID_ARGUMENT;
- ``UpdateCredentialPolicy`` changes the policy and nothing else (no state, no scopes);
- a workspace-scoped principal cannot create into, list, or wildcard another workspace.
"""

from __future__ import annotations

import secrets

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.support.custody import binance_request, creds, make_workspace, onboard
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit

SMUGGLED_IDS = [
    "ws-a\n",
    "ws-a\r\n",
    "*",
    "-",
    "ws-a/credentials/x",
    "../ws-b",
    "ws\u2010a",  # Unicode hyphen
    "WS-A",
    "ws-a ",
    " ws-a",
    "ws-a\x00",
    "",
    "a" * 64,
]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


@pytest.mark.parametrize("bad", SMUGGLED_IDS, ids=repr)
def test_smuggled_workspace_ids_are_refused(vault: RunningVault, bad: str) -> None:
    stub = wgrpc.WorkspaceServiceStub(vault.channel())
    before = len(list(iter_audit(vault.app)))
    err = expect_error(
        stub.CreateWorkspace,
        wpb.CreateWorkspaceRequest(workspace_id=bad, reason="smuggle"),
        metadata=vault.md("security"),
        timeout=10,
    )
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    listed = stub.ListWorkspaces(wpb.ListWorkspacesRequest(), metadata=vault.md(), timeout=10)
    assert [w.name for w in listed.workspaces] == []
    assert len(list(iter_audit(vault.app))) >= before  # refusals may be audited, never removed


@pytest.mark.parametrize("bad", SMUGGLED_IDS, ids=repr)
def test_smuggled_credential_ids_and_names_are_refused(vault: RunningVault, bad: str) -> None:
    make_workspace(vault, "ws-a")
    err = expect_error(
        creds(vault).CreateCredential,
        binance_request("ws-a", bad, "K" * 24, secrets.token_hex(16)),
        metadata=vault.md("onboarding"),
        timeout=10,
    )
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    for name in (f"workspaces/{bad}", f"workspaces/ws-a/credentials/{bad}"):
        err = expect_error(
            creds(vault).GetCredential,
            cpb.GetCredentialRequest(name=name),
            metadata=vault.md("security"),
            timeout=10,
        )
        assert err.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), name


def test_undeclared_fields_cannot_set_state_workspace_or_scopes(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    request = binance_request("ws-a", "mass", "K" * 24, secrets.token_hex(16))
    forged = credential_pb2.Credential(
        name="workspaces/ws-b/credentials/mass",
        state=credential_pb2.Credential.State.Value("STATE_REVOKED"),
        scopes=[trading_pb2.SCOPE_WITHDRAW, trading_pb2.SCOPE_TRANSFER],
        venue_scopes=["enableWithdrawals"],
    )
    raw = request.SerializeToString()
    forged_raw = forged.SerializeToString()
    raw += _varint(900 << 3 | 2) + _varint(len(forged_raw)) + forged_raw  # a whole resource
    for number in range(13, 40):  # every number the request does not declare, as a varint 1
        raw += _varint(number << 3) + b"\x01"
    call = vault.channel().unary_unary(
        "/pipsync.vault.v1.CredentialService/CreateCredential",
        request_serializer=lambda b: b,
        response_deserializer=cpb.CreateCredentialResponse.FromString,
    )
    cred = call(raw, metadata=vault.md("onboarding"), timeout=10).credential
    assert cred.name == "workspaces/ws-a/credentials/mass"
    assert cred.state == credential_pb2.Credential.State.Value("STATE_ACTIVE")
    assert not {trading_pb2.SCOPE_WITHDRAW, trading_pb2.SCOPE_TRANSFER} & set(cred.scopes)
    assert "enableWithdrawals" not in cred.venue_scopes
    # Nothing of the smuggled resource exists in ws-b.
    listed = creds(vault).ListCredentials(
        cpb.ListCredentialsRequest(parent="workspaces/ws-b"), metadata=vault.md(), timeout=10
    )
    assert list(listed.credentials) == []


def test_policy_update_changes_only_the_policy(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    cred = onboard(vault, "ws-a", "pol", "K" * 24, secrets.token_hex(16))
    updated = (
        creds(vault)
        .UpdateCredentialPolicy(
            cpb.UpdateCredentialPolicyRequest(
                name=cred.name,
                policy=credential_pb2.OrderPolicy(allowed_symbols=["BTCUSDT"]),
                etag=cred.etag,
                reason="tighten",
            ),
            metadata=vault.md("onboarding"),
            timeout=10,
        )
        .credential
    )
    assert list(updated.policy.allowed_symbols) == ["BTCUSDT"]
    assert (updated.name, updated.state, list(updated.scopes)) == (
        cred.name,
        cred.state,
        list(cred.scopes),
    )
    assert updated.etag != cred.etag


def test_a_scoped_principal_cannot_create_list_or_wildcard_elsewhere(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    onboard(vault, "ws-b", "theirs", "K" * 24, secrets.token_hex(16))
    err = expect_error(
        creds(vault).CreateCredential,
        binance_request("ws-b", "mine", "K" * 24, secrets.token_hex(16)),
        metadata=vault.md("security-a"),
        timeout=10,
    )
    assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")
    for parent in ("workspaces/ws-b", "workspaces/*", "workspaces/-", "workspaces/", ""):
        err = expect_error(
            creds(vault).ListCredentials,
            cpb.ListCredentialsRequest(parent=parent),
            metadata=vault.md("security-a"),
            timeout=10,
        )
        assert err.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), parent
        assert "theirs" not in err.message
    listed = wgrpc.WorkspaceServiceStub(vault.channel()).ListWorkspaces(
        wpb.ListWorkspacesRequest(), metadata=vault.md("security-a"), timeout=10
    )
    assert [w.name for w in listed.workspaces] == ["workspaces/ws-a"]
