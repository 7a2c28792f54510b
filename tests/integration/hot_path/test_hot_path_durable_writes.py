"""The durable half of the hot path: a client order id is signed at most once under 50
concurrent attempts (both stores), and an audit write failure fails every signature in its
batch - none is returned, nothing of the batch is kept - and counts against readiness."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import grpc
import psycopg
import pytest
from sqlalchemy import func, select

from tests.integration.hot_path.procs import audit_verify
from tests.support import pg
from tests.support import signing_flow as sf
from tests.support.errors import call_error
from tests.support.vault import RunningVault, inspect_db, iter_audit
from vault_server.storage.models import SignedOrder

N = 50


def _burst(n: int, call: Callable[[int], object]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock, start = threading.Lock(), threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            call(i)
            outcome = "OK"
        except grpc.RpcError as exc:
            outcome = call_error(exc).reason
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def _claims(vault: RunningVault) -> int:
    db = inspect_db(vault.app)
    try:
        with db.engine.connect() as conn:  # Core: past the ORM tenant guard, every workspace
            return int(conn.execute(select(func.count()).select_from(SignedOrder)).scalar_one())
    finally:
        if db is not vault.app.db:
            db.dispose()


def test_a_client_order_id_is_signed_at_most_once_under_50_attempts(
    vault_any_db: RunningVault,
) -> None:
    vault = vault_any_db
    sf.create_workspace(vault)
    key = sf.binance_hmac()
    cred = sf.onboard(vault, key, "bn")
    rcs = [sf.begin(vault, cred.name).name for _ in range(5)]  # five retrying router workers
    channels = [sf.signing(vault, vault.socket_target) for _ in range(10)]
    sf.sign(vault, rcs[0], sf.place_for(key, "warm-1"))  # the state is cached for the burst
    order = sf.place_for(key, "retry-50")
    outcomes = _burst(
        N,
        lambda i: channels[i % 10].SignOrder(
            sf.sign_request(rcs[i % 5], order), metadata=vault.md("router"), timeout=30
        ),
    )
    assert outcomes == Counter({"OK": 1, "DUPLICATE_CLIENT_ORDER_ID": N - 1})
    uses = [e for e in iter_audit(vault.app) if e.action == "credential.use"]
    signed = [e for e in uses if e.outcome == "success" and e.details.get("clientOrderId")]
    assert [e.details["clientOrderId"] for e in signed] == ["warm-1", "retry-50"]
    assert sum(e.error_reason == "DUPLICATE_CLIENT_ORDER_ID" for e in uses) == N - 1
    assert _claims(vault) == 2


def test_an_audit_write_failure_fails_every_signature_in_its_batch(
    vault_any_db: RunningVault,
) -> None:
    vault = vault_any_db
    sf.create_workspace(vault)
    key = sf.binance_hmac()
    cred = sf.onboard(vault, key, "bn")
    rc = sf.begin(vault, cred.name).name
    sf.sign(vault, rc, sf.place_for(key))  # warm: the next ones only need the batch
    before = _claims(vault)
    undo = _break_audit_inserts(vault)
    try:
        stubs = [sf.signing(vault, vault.socket_target) for _ in range(8)]
        outcomes = _burst(
            16,
            lambda i: stubs[i % 8].SignOrder(
                sf.sign_request(rc, sf.place_for(key)), metadata=vault.md("router"), timeout=30
            ),
        )
        assert outcomes == Counter({"AUDIT_UNAVAILABLE": 16})  # not one signature left
        assert _claims(vault) == before  # no claim of a failed batch survived
        assert vault.app.audit.consecutive_failures >= 1  # readiness accounting saw it
        assert not vault.app.is_ready()
    finally:
        undo()
    assert sf.sign(vault, rc, sf.place_for(key)).audit_event  # recovers once writes work
    assert vault.app.audit.consecutive_failures == 0
    url = pg.admin_for(vault.app.settings.resolved_database_url())
    code, report = audit_verify(url, vault.home)
    assert code == 0 and report["intact"] is True, report


def _break_audit_inserts(vault: RunningVault) -> Callable[[], None]:
    """PostgreSQL: the app role loses INSERT on audit_events. SQLite: a trigger refuses it."""
    if vault.app.db.is_postgres:
        admin = pg.admin_for(vault.app.settings.resolved_database_url())
        with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("REVOKE INSERT ON audit_events FROM pipvault_app")

        def undo_pg() -> None:
            with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute("GRANT INSERT ON audit_events TO pipvault_app")

        return undo_pg
    with vault.app.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit disk full'); END"
        )

    def undo_sqlite() -> None:
        with vault.app.db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER no_audit")

    return undo_sqlite


@pytest.mark.postgres
def test_a_client_order_id_is_signed_once_across_two_servers(
    two_servers: tuple[RunningVault, RunningVault],
) -> None:
    a, b = two_servers
    sf.create_workspace(a)
    key = sf.binance_hmac()
    cred = sf.onboard(a, key, "bn")
    servers = (a, b)
    rcs = [sf.begin(servers[i % 2], cred.name).name for i in range(4)]
    stubs = [sf.signing(servers[i % 2], servers[i % 2].socket_target) for i in range(4)]
    for i in range(2):
        sf.sign(servers[i], rcs[i], sf.place_for(key))  # both servers' states are warm
    order = sf.place_for(key, "fleet-retry")
    outcomes = _burst(
        20,
        lambda i: stubs[i % 4].SignOrder(
            sf.sign_request(rcs[i % 4], order), metadata=a.md("router"), timeout=30
        ),
    )
    assert outcomes == Counter({"OK": 1, "DUPLICATE_CLIENT_ORDER_ID": 19})
