"""Fail closed: when the audit event cannot be written, the action does not happen."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from pipsync.vault.v1 import trading_pb2

from tests.support import pg
from tests.support.custody import make_workspace, onboard
from tests.support.errors import call_error
from tests.support.vault import RunningVault, start_vault


@pytest.fixture
def pg_vault(tmp_path: Path) -> Iterator[tuple[RunningVault, str]]:
    admin, app = pg.provisioned_database()
    vault = start_vault(
        tmp_path / "home", app, readiness_interval_s=0.2, audit={"failures_before_not_serving": 2}
    )
    try:
        yield vault, admin
    finally:
        vault.stop()
        pg.drop_database(admin)


def _admin_sql(admin: str, sql: str) -> None:
    with psycopg.connect(
        admin.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(sql)


def _health(vault: RunningVault) -> int:
    with grpc.insecure_channel(vault.health_target) as ch:
        return (
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        )


def test_audit_insert_revoked_means_no_signature(pg_vault: tuple[RunningVault, str]) -> None:
    vault, admin = pg_vault
    make_workspace(vault, "ws-a")
    cred = onboard(vault, "ws-a", "c", "K" * 24, secrets.token_hex(32))
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=cred.name, strategy_id="s", reason="r"),
        metadata=vault.md("router"),
        timeout=10,
    ).routing_context
    order = trading_pb2.Order(
        operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="LTCBTC", side=trading_pb2.ORDER_SIDE_BUY,
        type=trading_pb2.ORDER_TYPE_LIMIT, quantity="1", price="0.1", client_order_id="coid-1",
    )  # fmt: skip
    _admin_sql(admin, "REVOKE INSERT ON audit_events FROM pipvault_app")
    started = time.monotonic()
    results = []
    for _attempt in range(3):
        try:
            stub.SignOrder(spb.SignOrderRequest(routing_context=rc.name, order=order, reason="r"),
                           metadata=vault.md("router"), timeout=3)  # fmt: skip
            results.append("SIGNED")
        except grpc.RpcError as exc:
            err = call_error(exc)
            results.append(f"{err.code.name}:{err.reason}")
    assert results == ["UNAVAILABLE:AUDIT_UNAVAILABLE"] * 3
    assert time.monotonic() - started < 9  # within the deadlines
    # Repeated audit failures flip readiness; it comes back when audit works again.
    deadline = time.monotonic() + 5
    while (
        time.monotonic() < deadline and _health(vault) != health_pb2.HealthCheckResponse.NOT_SERVING
    ):
        time.sleep(0.1)
    assert _health(vault) == health_pb2.HealthCheckResponse.NOT_SERVING
    _admin_sql(admin, "GRANT INSERT ON audit_events TO pipvault_app")
    signed = stub.SignOrder(spb.SignOrderRequest(routing_context=rc.name, order=order, reason="r"),
                            metadata=vault.md("router"), timeout=5)  # fmt: skip
    assert "signature=" in signed.signed_request.url  # the client order id was never claimed
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _health(vault) != health_pb2.HealthCheckResponse.SERVING:
        time.sleep(0.1)
    assert _health(vault) == health_pb2.HealthCheckResponse.SERVING


def test_database_down_means_unavailable_within_the_deadline(
    pg_vault: tuple[RunningVault, str],
) -> None:
    vault, admin = pg_vault
    make_workspace(vault, "ws-a")
    cred = onboard(vault, "ws-a", "c", "K" * 24, secrets.token_hex(32))
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=cred.name, strategy_id="s", reason="r"),
        metadata=vault.md("router"),
        timeout=10,
    ).routing_context
    # Hold a lock on the chain head so the audit append cannot proceed: the call must give up
    # inside its deadline instead of hanging.
    conn = psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://"))
    try:
        conn.execute("LOCK TABLE audit_chain_heads IN ACCESS EXCLUSIVE MODE")
        order = trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT)
        started = time.monotonic()
        try:
            stub.SignOrder(spb.SignOrderRequest(routing_context=rc.name, order=order, reason="r"),
                           metadata=vault.md("router"), timeout=1.5)  # fmt: skip
            outcome = "SIGNED"
        except grpc.RpcError as exc:
            outcome = exc.code().name
        elapsed = time.monotonic() - started
    finally:
        conn.rollback()
        conn.close()
    assert outcome in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and elapsed < 3
