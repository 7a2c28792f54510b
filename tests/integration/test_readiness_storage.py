"""Readiness when the database goes away: NOT_SERVING with degraded{component="storage"} = 1,
logged once, and SERVING again when it is back (PostgreSQL: the app role loses CONNECT on its
database and its sessions are terminated, which is what an outage looks like to the vault)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from tests.support import pg
from tests.support.vault import RunningVault, start_vault

pytestmark = pytest.mark.postgres


def _health(vault: RunningVault, service: str = "") -> str:
    status = (
        health_pb2_grpc.HealthStub(vault.channel(vault.health_target))
        .Check(health_pb2.HealthCheckRequest(service=service), timeout=15)
        .status
    )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def _until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.1)
    assert check()


def _connect_privilege(admin: str, grant: bool) -> None:
    name = admin.rsplit("/", 1)[1]
    with psycopg.connect(pg.admin_url(), autocommit=True) as conn:
        verb = "GRANT" if grant else "REVOKE"
        direction = "TO" if grant else "FROM"
        conn.execute(
            sql.SQL(verb + " CONNECT ON DATABASE {} " + direction + " pipvault_app, PUBLIC").format(
                sql.Identifier(name)
            )
        )
        if not grant:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND usename = 'pipvault_app'",
                (name,),
            )


def test_storage_outage_is_not_serving_then_recovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin, app = pg.provisioned_database()
    vault = start_vault(tmp_path / "home", app, readiness_interval_s=0.2)
    registry = vault.app.metrics.registry
    try:
        assert _health(vault) == "SERVING"
        _connect_privilege(admin, grant=False)
        _until(lambda: _health(vault) == "NOT_SERVING")
        assert registry.get_sample_value("pipvault_degraded", {"component": "storage"}) == 1
        assert registry.get_sample_value("pipvault_ready") == 0
        assert _health(vault, "liveness") == "SERVING"  # alive: no restart for an outage
        time.sleep(0.6)  # several checks while down: still one line per transition
        _connect_privilege(admin, grant=True)
        _until(lambda: _health(vault) == "SERVING")
        assert registry.get_sample_value("pipvault_degraded", {"component": "storage"}) == 0
        captured = capsys.readouterr()
        err = captured.out + captured.err
        assert err.count("storage: the database is not answering") == 1
        assert "vault.recovered" in err
    finally:
        vault.stop()
        pg.drop_database(admin)
