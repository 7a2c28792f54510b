"""Table-driven: every RPC that touches a credential writes exactly the expected audit event,
with actor, peer, reason and outcome (attestation writes its read before decrypting, then its
result: two events by design)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc

from tests.support.custody import binance_request, creds, make_workspace
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit

State = dict[str, Any]


def test_every_credential_rpc_writes_its_event(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    make_workspace(vault, "ws-a")
    admin = creds(vault)
    data = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    state: State = {}

    def md(who: str) -> Any:
        return vault.md(who)

    steps: list[tuple[str, str, str, Callable[[], Any], list[tuple[str, str]]]] = [
        ("onboarding", "127.0.0.1", "create it", lambda: state.update(cred=admin.CreateCredential(
            binance_request("ws-a", "c1", "K" * 24, secrets.token_hex(32), reason="create it"),
            metadata=md("onboarding"), timeout=10).credential), [("credential.create", "success")]),
        ("auditor", "127.0.0.1", "", lambda: admin.GetCredential(
            cpb.GetCredentialRequest(name=state["cred"].name), metadata=md("auditor"), timeout=10),
            [("credential.get", "success")]),
        ("auditor", "127.0.0.1", "", lambda: admin.ListCredentials(
            cpb.ListCredentialsRequest(parent="workspaces/ws-a"), metadata=md("auditor"), timeout=10),
            [("credential.list", "success")]),
        ("onboarding", "127.0.0.1", "policy", lambda: admin.UpdateCredentialPolicy(
            cpb.UpdateCredentialPolicyRequest(name=state["cred"].name, reason="policy",
                policy=credential_pb2.OrderPolicy(allowed_symbols=["LTCBTC"])),
            metadata=md("onboarding"), timeout=10), [("credential.policy_update", "success")]),
        ("onboarding", "127.0.0.1", "rotate", lambda: state.update(rot=admin.RotateCredential(
            cpb.RotateCredentialRequest(name=state["cred"].name, reason="rotate",
                material=credential_pb2.SecretMaterial(api_key="L" * 24, secret=secrets.token_hex(32))),
            metadata=md("onboarding"), timeout=10)), [("credential.rotate", "success")]),
        ("onboarding", "127.0.0.1", "promote", lambda: admin.PromoteCredentialVersion(
            cpb.PromoteCredentialVersionRequest(name=state["rot"].version.name, reason="promote"),
            metadata=md("onboarding"), timeout=10), [("credential.promote", "success")]),
        ("router", "unix", "open", lambda: state.update(rc=data.BeginRouting(
            spb.BeginRoutingRequest(credential=state["cred"].name, strategy_id="s1", reason="open"),
            metadata=md("router"), timeout=10).routing_context), [("routing.begin", "success")]),
        ("router", "unix", "renew", lambda: data.RenewRouting(
            spb.RenewRoutingRequest(name=state["rc"].name, reason="renew"), metadata=md("router"), timeout=10),
            [("routing.renew", "success")]),
        ("router", "unix", "sign", lambda: data.SignOrder(
            spb.SignOrderRequest(routing_context=state["rc"].name, reason="sign", order=trading_pb2.Order(
                operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="LTCBTC", side=trading_pb2.ORDER_SIDE_BUY,
                type=trading_pb2.ORDER_TYPE_LIMIT, quantity="1", price="0.1", client_order_id="o-1")),
            metadata=md("router"), timeout=10), [("credential.use", "success")]),
        ("router", "unix", "too big", lambda: expect_error(data.SignOrder,
            spb.SignOrderRequest(routing_context=state["rc"].name, reason="too big", order=trading_pb2.Order(
                operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="ETHBTC", side=trading_pb2.ORDER_SIDE_BUY,
                type=trading_pb2.ORDER_TYPE_LIMIT, quantity="1", price="0.1", client_order_id="o-2")),
            metadata=md("router"), timeout=10), [("credential.use", "denied")]),
        ("router", "unix", "no context", lambda: expect_error(data.SignOrder,
            spb.SignOrderRequest(credential=state["cred"].name, reason="no context",
                order=trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT)),
            metadata=md("router"), timeout=10), [("credential.read", "denied")]),
        ("router", "unix", "close", lambda: data.EndRouting(
            spb.EndRoutingRequest(name=state["rc"].name, reason="close"), metadata=md("router"), timeout=10),
            [("routing.end", "success")]),
        ("security", "127.0.0.1", "attest", lambda: admin.AttestCredentialPermissions(
            cpb.AttestCredentialPermissionsRequest(name=state["cred"].name, reason="attest"),
            metadata=md("security"), timeout=10),
            [("credential.read", "success"), ("credential.attest", "failed")]),  # no venue here
        ("security", "127.0.0.1", "leaked", lambda: admin.RevokeCredential(
            cpb.RevokeCredentialRequest(name=state["cred"].name, reason="leaked"), metadata=md("security"), timeout=10),
            [("credential.revoke", "success")]),
    ]  # fmt: skip
    for actor, peer, reason, call, expected in steps:
        before = len(list(iter_audit(vault.app)))
        call()
        new = list(iter_audit(vault.app))[before:]
        assert [(e.action, e.outcome) for e in new] == expected, f"{reason or expected}"
        for event in new:
            assert (event.actor_id, event.peer, event.reason) == (actor, peer, reason), event.action
            assert event.request_id and event.method.startswith("/pipsync.vault.v1.")
            assert event.workspace == "workspaces/ws-a"
            if event.action.startswith("credential.") and event.action != "credential.list":
                assert event.credential == state["cred"].name
