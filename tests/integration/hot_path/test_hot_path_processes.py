"""Real server processes: ``kill -9`` in the middle of a stream of concurrent signatures leaves
no returned signature without its durable ``credential.use`` event and every chain verifies; and
two server processes on one PostgreSQL - a revocation or freeze through one refuses the very next
signature on the other."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.hot_path.procs import ProcVault, ServerProcess, audit_verify, replica_of
from tests.support import pg
from tests.support import signing_flow as sf
from tests.support.errors import call_error

WS = "demo"  # the dev workspace the dev router may use


def _stream_then_kill(server: ServerProcess, vault: Any, rc: str, key: sf.VenueKey) -> list[str]:
    """16 callers sign as fast as they can; the server is killed with SIGKILL mid-stream.
    Returns the audit event name of every signature a caller received."""
    successes: list[str] = []
    lock, stop = threading.Lock(), threading.Event()
    stubs = [sf.signing(vault) for _ in range(4)]

    def caller(i: int) -> None:
        while not stop.is_set():
            try:
                got = stubs[i % 4].SignOrder(
                    sf.sign_request(rc, sf.place_for(key)), metadata=vault.md("router"), timeout=5
                )
            except grpc.RpcError:
                if server.proc is not None and server.proc.poll() is not None:
                    return
                continue
            with lock:
                successes.append(got.audit_event)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if len(successes) >= 150:
                break
        time.sleep(0.02)
    server.kill9()  # while callers are mid-flight
    stop.set()
    for t in threads:
        t.join(timeout=30)
    return successes


def test_kill_9_during_a_stream_leaves_every_success_audited(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", None).start()
    vault = ProcVault(server)
    try:
        key = sf.binance_hmac()
        cred = sf.onboard(vault, key, "bn", ws=WS)  # type: ignore[arg-type]
        rc = sf.begin(vault, cred.name).name  # type: ignore[arg-type]
        successes = _stream_then_kill(server, vault, rc, key)
        assert len(successes) >= 20
        # The callers' channels saw the socket refuse connections; gRPC shares subchannels
        # (and their reconnect backoff) between channels to the same address, so a new channel
        # to the same socket path could fail fast with that stale "Connection refused" even
        # once the restarted server listens. Close them, restart, wait for SERVING (start()
        # does), and let the first call wait for the connection rather than for a fixed time.
        vault.close()
        server.start()  # the same home: restart after the crash
        with sqlite3.connect(tmp_path / "home" / "vault.db") as db:
            rows = db.execute(
                "SELECT workspace, seq FROM audit_events "
                "WHERE action = 'credential.use' AND outcome = 'success'"
            ).fetchall()
        events = {f"{w}/auditEvents/{seq}" for w, seq in rows}
        missing = [s for s in successes if s not in events]
        assert missing == [], f"{len(missing)} signatures returned without a durable event"
        assert len(set(successes)) == len(successes)  # one event per signature
        code, report = audit_verify(f"sqlite:///{tmp_path / 'home' / 'vault.db'}", server.home)
        assert code == 0 and report["intact"] is True, report
        after = sf.signing(vault).SignOrder(  # type: ignore[arg-type]
            sf.sign_request(rc, sf.place_for(key)),
            metadata=vault.md("router"),
            timeout=30,
            wait_for_ready=True,
        )
        assert after.audit_event not in successes  # the chain continues where it was durable
    finally:
        vault.close()
        server.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[ProcVault, ProcVault]]:
    admin, app_url = pg.provisioned_database()
    servers: list[ServerProcess] = []
    vaults: list[ProcVault] = []
    try:
        a = ServerProcess(tmp_path / "a", app_url).start()
        servers.append(a)
        b = replica_of(a, tmp_path / "b").start()
        servers.append(b)
        vaults = [ProcVault(a), ProcVault(b)]
        yield vaults[0], vaults[1]
    finally:
        for v in vaults:
            v.close()
        for s in servers:
            s.stop()
        pg.drop_database(admin)


@pytest.mark.postgres
def test_two_server_processes_revoke_and_freeze_refuse_the_next_signature(
    fleet: tuple[ProcVault, ProcVault],
) -> None:
    a, b = fleet
    key = sf.binance_hmac()
    cred = sf.onboard(a, key, "bn", ws=WS)  # type: ignore[arg-type]
    other = sf.onboard(a, sf.binance_hmac(), "bn2", ws=WS)  # type: ignore[arg-type]
    rc = sf.begin(b, cred.name).name  # type: ignore[arg-type]
    rc_other = sf.begin(b, other.name).name  # type: ignore[arg-type]
    for _ in range(3):  # B's caches are warm
        sf.sign(b, rc, sf.place_for(key))  # type: ignore[arg-type]
        sf.sign(b, rc_other, sf.place_for(key))  # type: ignore[arg-type]

    sf.revoke(a, cred.name)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as revoked:
        sf.sign(b, rc, sf.place_for(key))  # type: ignore[arg-type]
    assert call_error(revoked.value).reason == "CREDENTIAL_REVOKED"
    assert sf.sign(b, rc_other, sf.place_for(key)).audit_event  # type: ignore[arg-type]

    sf.freeze(a, WS)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as frozen:
        sf.sign(b, rc_other, sf.place_for(key))  # type: ignore[arg-type]
    assert call_error(frozen.value).reason == "WORKSPACE_FROZEN"
