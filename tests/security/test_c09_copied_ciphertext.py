"""Attack: a ciphertext copied to another credential or workspace row with raw SQL fails to
decrypt, yields an audited integrity error, and never plaintext."""

from __future__ import annotations

import secrets

import grpc
import pytest
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from pipsync.vault.v1 import trading_pb2
from sqlalchemy import text

from tests.support.canary import find, new_canary
from tests.support.custody import make_workspace, onboard
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, inspect_db, iter_audit


def _copy_envelope(vault: RunningVault, source: str, target: str) -> None:
    db = inspect_db(vault.app)
    with db.engine.begin() as conn:
        blob = conn.execute(
            text(
                "SELECT v.envelope FROM credential_versions v JOIN credentials c ON c.id = v.credential_id "
                "JOIN workspaces w ON w.id = c.workspace_id WHERE w.resource_id || '/' || c.resource_id = :s"
            ),
            {"s": source},
        ).scalar_one()
        conn.execute(
            text(
                "UPDATE credential_versions SET envelope = :b WHERE credential_id = (SELECT c.id FROM "
                "credentials c JOIN workspaces w ON w.id = c.workspace_id "
                "WHERE w.resource_id || '/' || c.resource_id = :t)"
            ),
            {"b": blob, "t": target},
        )


def _sign(vault: RunningVault, who: str, credential: str) -> grpc.RpcError | None:
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=credential, strategy_id="s1", reason="route"),
        metadata=vault.md(who), timeout=10,
    ).routing_context  # fmt: skip
    order = trading_pb2.Order(
        operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="LTCBTC", side=trading_pb2.ORDER_SIDE_BUY,
        type=trading_pb2.ORDER_TYPE_LIMIT, quantity="1", price="0.1",
        client_order_id=f"c{secrets.token_hex(6)}",
    )  # fmt: skip
    return expect_error(
        stub.SignOrder, spb.SignOrderRequest(routing_context=rc.name, order=order, reason="sign"),
        metadata=vault.md(who), timeout=10,
    )  # fmt: skip


@pytest.mark.parametrize(("source", "target", "who"), [
    ("ws-a/one", "ws-a/two", "router"),  # another credential, same workspace
    ("ws-a/one", "ws-b/three", "router-b"),  # another workspace
])  # fmt: skip
def test_copied_ciphertext_is_an_audited_integrity_error(
    vault_any_db: RunningVault, source: str, target: str, who: str
) -> None:
    vault = vault_any_db
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    canary = new_canary()
    onboard(vault, "ws-a", "one", "A" * 24, canary)
    onboard(vault, "ws-a", "two", "B" * 24, secrets.token_hex(32))
    onboard(vault, "ws-b", "three", "C" * 24, secrets.token_hex(32))
    _copy_envelope(vault, source, target)
    ws, cred = target.split("/")
    err = _sign(vault, who, f"workspaces/{ws}/credentials/{cred}")
    assert (err.code, err.reason) == (grpc.StatusCode.DATA_LOSS, "INTEGRITY_CHECK_FAILED")
    assert find(canary, (err.message + str(err.metadata)).encode()) == []
    failed = [e for e in iter_audit(vault.app) if e.error_reason == "INTEGRITY_CHECK_FAILED"]
    assert len(failed) == 1
    event = failed[0]
    assert (event.action, event.outcome, event.workspace) == (
        "credential.use",
        "failed",
        f"workspaces/{ws}",
    )
    assert event.routing_context.startswith(f"workspaces/{ws}/routingContexts/")
    # The untouched source still signs.
    src_ws, src_cred = source.split("/")
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=f"workspaces/{src_ws}/credentials/{src_cred}", strategy_id="s", reason="r"),
        metadata=vault.md("router"), timeout=10,
    ).routing_context  # fmt: skip
    ok = stub.SignOrder(
        spb.SignOrderRequest(
            routing_context=rc.name,
            order=trading_pb2.Order(
                operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT,
            ),
            reason="sign",
        ),
        metadata=vault.md("router"), timeout=10,
    )  # fmt: skip
    assert ok.signed_request.url.startswith("https://api.binance.com/api/v3/account?")
