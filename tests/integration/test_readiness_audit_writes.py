"""Issue 19 §5: readiness says NOT_SERVING while nothing can be made durable.

Before the fix, on SQLite with a full disk every signature failed `AUDIT_UNAVAILABLE` for
seconds while health stayed SERVING: each failed signature's "failed" audit event flushed (which
reset the consecutive-failure count) and then failed to commit; and readiness was only looked at
every `readiness_interval_s`. Now the count is of durable commits, crossing
`audit.failures_before_not_serving` re-checks readiness at once, and while it is crossed each
readiness check tries one durable write of its own (so a replica nobody sends signatures to
still comes back).

Real faults: a small tmpfs filled to the last byte (SQLite), and a PostgreSQL database switched
to read-only with the vault's sessions terminated.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from tests.support import pg
from tests.support import signing_flow as sf
from tests.support.errors import call_error
from tests.support.vault import RunningVault, iter_audit, start_vault

# The periodic check is far away: only the alarm on crossing the threshold can make the vault
# NOT_SERVING within the few seconds these tests allow.
SLOW_POLL_S = 60.0


def _health(vault: RunningVault) -> str:
    status = (
        health_pb2_grpc.HealthStub(vault.channel(vault.health_target))
        .Check(health_pb2.HealthCheckRequest(), timeout=10)
        .status
    )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"mounting a tmpfs needs root (CI runs as root): {result}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(volume: Path) -> Path:
    """Write until the volume refuses another byte."""
    filler = volume / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
        with pytest.raises(OSError) as full:
            os.write(fd, b"\0")
        assert full.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _outcome(vault: RunningVault, stub: object, rc: str, key: sf.VenueKey) -> str:
    try:
        stub.SignOrder(  # type: ignore[attr-defined]
            sf.sign_request(rc, sf.place_for(key)), metadata=vault.md("router"), timeout=10
        )
        return "OK"
    except grpc.RpcError as err:
        error = call_error(err)
        return error.reasons[0] if error.reasons else error.code.name


def _outage_is_not_serving(
    vault: RunningVault, break_writes: Callable[[], None], restore: Callable[[], None]
) -> None:
    registry = vault.app.metrics.registry
    sf.create_workspace(vault)
    key = sf.binance_hmac()
    cred = sf.onboard(vault, key, "bn")
    rc = sf.begin(vault, cred.name).name
    stub = sf.signing(vault, vault.socket_target)
    assert _outcome(vault, stub, rc, key) == "OK"
    assert _health(vault) == "SERVING"

    break_writes()
    outcomes = []
    broke_at = time.monotonic()
    not_serving_after = None
    while time.monotonic() - broke_at < 4.0:
        outcomes.append(_outcome(vault, stub, rc, key))
        if not_serving_after is None and _health(vault) == "NOT_SERVING":
            not_serving_after = time.monotonic() - broke_at
    # (SQLite may still fit a few events in WAL pages it already has; those are durable.)
    assert set(outcomes) <= {"OK", "AUDIT_UNAVAILABLE"}, set(outcomes)
    assert outcomes.count("AUDIT_UNAVAILABLE") >= 5, outcomes[:20]
    assert not_serving_after is not None, f"SERVING through {len(outcomes)} failed signatures"
    assert registry.get_sample_value("pipvault_ready") == 0
    assert registry.get_sample_value("pipvault_degraded", {"component": "audit"}) == 1
    assert (
        vault.app.audit.consecutive_failures >= vault.app.settings.audit.failures_before_not_serving
    )

    # Writes work again: with no signature sent (the load balancer took the replica out), the
    # readiness check's own durable write brings it back.
    restore()
    assert _until(vault.app.is_ready, timeout=15), "never ready again"
    assert _until(lambda: _health(vault) == "SERVING", timeout=5)
    assert registry.get_sample_value("pipvault_degraded", {"component": "audit"}) == 0
    recovered = [e for e in iter_audit(vault.app) if e.action == "audit.write_recovered"]
    assert len(recovered) == 1 and recovered[0].chain_id == "system", recovered
    assert int(recovered[0].details["failed_writes"]) >= 1
    assert _outcome(vault, stub, rc, key) == "OK"
    # Every signature that was returned has its event; none of the failed ones does.
    uses = [e for e in iter_audit(vault.app) if e.action == "credential.use"]
    assert sum(e.outcome == "success" for e in uses) == 2 + outcomes.count("OK")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root; CI runs as root")
def test_sqlite_full_volume_is_not_serving_then_recovers(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "volume", "24m") as volume:
        vault = start_vault(volume / "home", readiness_interval_s=SLOW_POLL_S)
        filler: list[Path] = []
        try:
            _outage_is_not_serving(
                vault,
                break_writes=lambda: filler.append(_fill(volume)),
                restore=lambda: filler[0].unlink(),  # noqa: PLW0108 - set later
            )
        finally:
            vault.stop()


def _read_only(admin: str, on: bool) -> None:
    name = admin.rsplit("/", 1)[1]
    with psycopg.connect(pg.admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                sql.Identifier(name), sql.SQL("on" if on else "off")
            )
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND usename = 'pipvault_app'",
            (name,),
        )


@pytest.mark.postgres
def test_postgres_refusing_writes_is_not_serving_then_recovers(tmp_path: Path) -> None:
    admin, app = pg.provisioned_database()
    vault = start_vault(tmp_path / "home", app, readiness_interval_s=SLOW_POLL_S)
    try:
        _outage_is_not_serving(
            vault,
            break_writes=lambda: _read_only(admin, on=True),
            restore=lambda: _read_only(admin, on=False),
        )
    finally:
        vault.stop()
        pg.drop_database(admin)
