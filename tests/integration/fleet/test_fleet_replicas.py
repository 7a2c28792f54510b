"""Must show: three `pipvault serve` processes on one PostgreSQL database behave as one vault.

A credential revoked through one replica stops signing on all three within one second; a client
order id raced from many callers spread over the three is signed exactly once; every hash chain
verifies afterwards. And a `pg_dump` restored into a fresh database is a complete vault: every
credential decrypts (signs) and every chain verifies.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import credential_service_pb2_grpc as cgrpc

from tests.integration.fleet.fleet import Fleet, Replica
from tests.support import pg
from tests.support.signing_flow import coid

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(420)]


def _attempt(replica: Replica, rc: str, order_id: str) -> str:
    try:
        replica.sign(rc, order_id)
        return "SIGNED"
    except grpc.RpcError as err:
        return str(err.code().name)


def test_three_replicas_revoke_everywhere_sign_each_order_id_once(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "fleet")
    try:
        a, b, c = (fleet.start(n) for n in ("a", "b", "c"))
        replicas = [a, b, c]
        fleet.make_workspace(a, "desk")
        keep = fleet.onboard(b, "desk", "keep")
        doomed = fleet.onboard(c, "desk", "doomed")

        # Concurrent attempts with the same client order id, spread over the three replicas:
        # exactly one signature per id, the rest refused as duplicates.
        contexts = {r.name: r.begin_routing(keep) for r in replicas}
        with ThreadPoolExecutor(max_workers=12) as pool:
            for _ in range(3):
                order_id = coid("f")
                outcomes = list(
                    pool.map(
                        lambda i, oid=order_id: _attempt(
                            replicas[i % 3], contexts[replicas[i % 3].name], oid
                        ),
                        range(12),
                    )
                )
                assert outcomes.count("SIGNED") == 1, outcomes
                assert set(outcomes) == {"SIGNED", "FAILED_PRECONDITION"}, outcomes

        # Each replica signs with the credential that is about to be revoked...
        doomed_rc = {r.name: r.begin_routing(doomed) for r in replicas}
        for r in replicas:
            assert r.sign(doomed_rc[r.name], coid("d")).signed_request.url
        # ...until it is revoked through one of them: all three refuse within one second.
        cgrpc.CredentialServiceStub(a.channel(a.admin)).RevokeCredential(
            cpb.RevokeCredentialRequest(name=doomed, reason="compromised"),
            metadata=a.md("security"),
            timeout=15,
        )
        revoked_at = time.monotonic()
        refused_after: dict[str, float] = {}
        while len(refused_after) < 3 and time.monotonic() - revoked_at < 1.0:
            for r in replicas:
                if r.name not in refused_after:
                    outcome = _attempt(r, doomed_rc[r.name], coid("d"))
                    if outcome == "FAILED_PRECONDITION":
                        refused_after[r.name] = time.monotonic() - revoked_at
                    else:
                        assert outcome == "SIGNED", outcome
        assert sorted(refused_after) == ["a", "b", "c"], refused_after
        assert max(refused_after.values()) < 1.0
        # ...and stays refused (no replica's cache brings it back).
        for r in replicas:
            assert _attempt(r, doomed_rc[r.name], coid("d")) == "FAILED_PRECONDITION"
        # The other credential still signs everywhere.
        for r in replicas:
            assert r.sign(contexts[r.name], coid("k")).signed_request.url

        report = fleet.verify_chains()
        assert report["intact"] is True and report["events_checked"] > 20
    finally:
        fleet.close()


def test_pg_dump_restored_into_a_fresh_database_is_a_complete_vault(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "fleet")
    restored_admin = None
    try:
        a = fleet.start("a")
        fleet.make_workspace(a, "desk")
        fleet.make_workspace(a, "desk2")
        names = [fleet.onboard(a, ws, f"c{i}") for i, ws in enumerate(["desk", "desk", "desk2"])]
        for name in names:
            assert a.sign(a.begin_routing(name), coid("p")).signed_request.url
        a.stop()

        dump = tmp_path / "vault.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", "--file", str(dump), fleet.admin_url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        restored_admin = pg.create_database("pipvault_restore")
        subprocess.run(
            ["pg_restore", "--exit-on-error", "--dbname", restored_admin, str(dump)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

        # The restored database serves (same app role, RLS intact): every credential signs.
        b = fleet.start("b", database_url=pg.as_role(restored_admin))
        for name in names:
            assert b.sign(b.begin_routing(name), coid("r")).signed_request.url
        b.stop()
        report = fleet.verify_chains(restored_admin)
        assert report["intact"] is True and report["chains_checked"] >= 3
    finally:
        fleet.close()
        if restored_admin is not None:
            pg.drop_database(restored_admin)
