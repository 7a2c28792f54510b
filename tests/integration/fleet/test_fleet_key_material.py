"""Key material for a fleet has one source of truth (the database's KEK state): a replica whose
own keyring copy lacks the KEK version the database says is primary refuses to serve, and never
wraps with the retired version, until it gets the current keyring."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import grpc
import psycopg
import pytest
from pipsync.vault.v1 import credential_service_pb2_grpc as cgrpc
from pipsync.vault.v1 import key_service_pb2 as kpb
from pipsync.vault.v1 import key_service_pb2_grpc as kgrpc
from pipsync.vault.v1 import signing_service_pb2 as spb

from tests.integration.fleet.fleet import Fleet
from tests.support.custody import binance_request
from tests.support.errors import expect_error
from tests.support.signing_flow import coid, place

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


def _versions(admin_url: str) -> dict[int, int]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT kek_version, count(*) FROM credential_versions GROUP BY kek_version"
        ).fetchall()
    return {int(v): int(n) for v, n in rows}


def test_a_replica_behind_the_primary_kek_is_not_ready_until_it_has_the_keyring(
    tmp_path: Path,
) -> None:
    fleet = Fleet.create(tmp_path / "fleet")
    try:
        a = fleet.start("a", own_keyring=True)
        b = fleet.start("b", own_keyring=True)
        fleet.make_workspace(a, "desk")
        old = fleet.onboard(b, "desk", "old")
        assert _versions(fleet.admin_url) == {1: 1}

        rotated = kgrpc.KeyServiceStub(a.channel(a.admin)).RotateKeyEncryptionKey(
            kpb.RotateKeyEncryptionKeyRequest(reason="scheduled rotation"),
            metadata=a.md("security"),
            timeout=15,
        )
        assert max(v.version for v in rotated.provider.versions) == 2
        new = fleet.onboard(a, "desk", "new")  # sealed under version 2 by A
        assert _versions(fleet.admin_url) == {2: 2}  # the rotation rewrapped the old one too

        # B's keyring copy missed the rotation: it stops saying SERVING, with one clear line.
        b.wait_health("NOT_SERVING", timeout=15)
        log = b.output()
        assert "vault.not_ready" in log and "KEK version 2 is primary" in log
        assert log.count("KEK version 2 is primary") == 1  # logged per transition, not per check
        assert a.health() == "SERVING"

        # Calls that still reach B never encrypt with the retired version...
        err = expect_error(
            cgrpc.CredentialServiceStub(b.channel(b.admin)).CreateCredential,
            binance_request("desk", "stale", "KSTALE" + "x" * 20, "s" * 32),
            metadata=b.md("onboarding"),
            timeout=15,
        )
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "KEY_PROVIDER_UNAVAILABLE")
        assert _versions(fleet.admin_url) == {2: 2}
        # ...and a credential sealed under the new version is UNAVAILABLE there, not DATA_LOSS.
        err = expect_error(
            b.signing().SignOrder,
            spb.SignOrderRequest(
                routing_context=a.begin_routing(new),
                order=place("LTCBTC", coid("n")),
                reason="fleet",
            ),
            metadata=b.md("router"),
            timeout=15,
        )
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "KEY_PROVIDER_UNAVAILABLE")

        # The operator copies the current keyring: B becomes ready again, without a restart.
        shutil.copy2(a.home / "keyring.json", b.home / "keyring.json")
        b.wait_health("SERVING", timeout=15)
        for name in (old, new):
            assert b.sign(b.begin_routing(name), coid("n")).signed_request.url
        fleet.onboard(b, "desk", "fresh")
        assert _versions(fleet.admin_url) == {2: 3}
        time.sleep(0.5)
        assert "vault.recovered" in b.output()
    finally:
        fleet.close()
