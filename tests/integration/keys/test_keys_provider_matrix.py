"""Every key provider end to end, in one matrix where each kind is a source once and a target once:

local -> aws-kms -> pkcs11 -> vault-transit (AppRole) -> local.

Per pair: onboard, sign, rotate the source (online rewrap), migrate to the target while 8 callers
sign (zero failed signatures), take the target down (KEY_PROVIDER_UNAVAILABLE inside the deadline,
never plaintext: canary scan of the database and the KMS's log), and in a second test ``kill -9``
a process mid-migration and resume it. Small credential counts keep it lean.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import key_service_pb2 as kpb
from pipsync.vault.v1 import key_service_pb2_grpc as kgrpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from pipsync.vault.v1 import trading_pb2

from tests.integration.keys.backends import start_backends
from tests.integration.keys.kms_fixtures import SoftHsmToken
from tests.integration.keys.migration_worker import build
from tests.support.canary import find, new_canary
from tests.support.custody import make_workspace, onboard
from tests.support.errors import call_error, expect_error
from tests.support.vault import RunningVault, start_vault

ROOT = Path(__file__).resolve().parents[3]
PAIRS = [("local", "aws"), ("aws", "hsm"), ("hsm", "transit"), ("transit", "local")]
KIND = {"local": "local", "aws": "aws-kms", "hsm": "pkcs11", "transit": "vault-transit"}
N_CREDS = 4
SIGNERS = 8


def routing(vault: RunningVault, credential: str) -> tuple[Any, Any]:
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=credential, strategy_id="s", reason="r"),
        metadata=vault.md("router"), timeout=10,
    ).routing_context  # fmt: skip
    order = trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT)
    return stub, spb.SignOrderRequest(routing_context=rc.name, order=order, reason="r")


def _census(vault: RunningVault) -> dict[str, dict[int, int]]:
    status = kgrpc.KeyServiceStub(vault.channel()).GetKeyStatus(
        kpb.GetKeyStatusRequest(), metadata=vault.md(), timeout=10
    )
    return {
        p.provider_id: {v.version: v.ciphertext_count for v in p.versions} for p in status.providers
    }


def _needs_hsm(pair: tuple[str, str], request: pytest.FixtureRequest) -> SoftHsmToken | None:
    return request.getfixturevalue("hsm_token") if "hsm" in pair else None


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_onboard_sign_rotate_migrate_under_load_and_outage(
    tmp_path: Path, pair: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    source, target = pair
    home = tmp_path / "home"
    backends = start_backends(pair, home, source, _needs_hsm(pair, request))
    vault = None
    try:
        # The DEK cache stays at its default (on with a remote provider), as in production.
        vault = start_vault(home, keys=backends.keys, readiness_interval_s=0.2)
        make_workspace(vault, "ws-a")
        canaries = [new_canary() for _ in range(N_CREDS)]
        names = [
            onboard(vault, "ws-a", f"c{i}", f"K{i}" * 10, canaries[i]).name for i in range(N_CREDS)
        ]
        assert _census(vault)[source] == {1: N_CREDS}
        stub, req = routing(vault, names[0])
        assert (
            "signature="
            in stub.SignOrder(req, metadata=vault.md("router"), timeout=10).signed_request.url
        )

        keys = kgrpc.KeyServiceStub(vault.channel())
        rotated = keys.RotateKeyEncryptionKey(
            kpb.RotateKeyEncryptionKeyRequest(provider_id=source, reason="rotate"),
            metadata=vault.md(), timeout=60,
        )  # fmt: skip
        assert rotated.new_version == 2 and rotated.rewrapped == N_CREDS
        assert rotated.provider.kind == KIND[source]
        assert _census(vault)[source] == {2: N_CREDS, 1: 0}

        # Migrate while 8 callers keep signing: not one signature may fail.
        stop = threading.Event()
        signed = [0] * SIGNERS
        failures: list[str] = []
        # The last credential is kept unused, so the outage below meets a cold cache.
        routes = [routing(vault, names[i % (N_CREDS - 1)]) for i in range(SIGNERS)]

        def signer(i: int) -> None:
            stub_i, req_i = routes[i]
            while not stop.is_set() or signed[i] < 2:
                try:
                    stub_i.SignOrder(req_i, metadata=vault.md("router"), timeout=10)
                    signed[i] += 1
                    time.sleep(0.005)
                except grpc.RpcError as exc:
                    err = call_error(exc)
                    failures.append(f"{err.code} {err.reasons} {err.message}")
                    return

        threads = [threading.Thread(target=signer, args=(i,)) for i in range(SIGNERS)]
        for t in threads:
            t.start()
        try:
            progress = list(
                keys.MigrateKeys(
                    kpb.MigrateKeysRequest(target_provider_id=target, batch_size=1, reason="move"),
                    metadata=vault.md(), timeout=120,
                )
            )  # fmt: skip
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert failures == [] and all(n >= 2 for n in signed)
        assert progress[-1].done and progress[-1].migrated == N_CREDS == progress[-1].total
        census = _census(vault)
        assert sum(census[target].values()) == N_CREDS and sum(census[source].values()) == 0

        # Outage. A remote target down: refused inside the deadline, never plaintext. When the
        # target is the local keyring or the HSM (its outage: test_hsm_outage_over_the_api), the
        # old KMS going down no longer matters to signing.
        down = target if target in backends.outages else source
        backends.outages[down]()
        stub, req = routing(vault, names[-1])
        started = time.monotonic()
        if down == target:
            err = expect_error(stub.SignOrder, req, metadata=vault.md("router"), timeout=10)
            assert (err.code, err.reason) == (
                grpc.StatusCode.UNAVAILABLE, "KEY_PROVIDER_UNAVAILABLE",
            )  # fmt: skip
            assert time.monotonic() - started < 8  # the provider's own bounds, not the deadline
        else:
            assert (
                "signature="
                in stub.SignOrder(req, metadata=vault.md("router"), timeout=10).signed_request.url
            )
    finally:
        if vault is not None:
            vault.stop()
        backends.stop()
    leaked = []
    scanned = [*sorted(home.glob("vault.db*")), *backends.logs]
    for path in scanned:
        blob = path.read_bytes()
        leaked += [(path.name, c) for c in canaries if find(c, blob)]
    assert scanned and leaked == []


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_kill_9_mid_migration_then_resume(
    tmp_path: Path, pair: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    source, target = pair
    home = tmp_path / "home"
    n = 12
    backends = start_backends(pair, home, source, _needs_hsm(pair, request))
    try:
        keys = {**backends.keys, "dek_cache_max_entries": 0}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.keys.migration_worker", str(home),
             json.dumps(keys), str(n), target],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert proc.stdout is not None
        killed_at = None
        for line in proc.stdout:
            if line.startswith("progress "):
                migrated = int(line.split()[1].split("/")[0])
                if 0 < migrated < n:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_at = migrated
                    break
        proc.wait(30)
        assert killed_at is not None, "the worker finished before it could be killed"
        app = build(home, keys)
        try:
            census = app.keys.census()
            assert sum(census.values()) == n  # nothing lost, nothing half-written
            assert census.get((target, 1), 0) >= killed_at and census.get((source, 1), 0) > 0
            assert _all_open(app) == n  # a mix of old and new, all readable
            steps = list(app.key_admin._rewrap.migration(_ctx(), target))
            assert steps[-1].done and steps[-1].migrated == n
            assert app.keys.census() == {(target, 1): n}
            assert _all_open(app) == n
        finally:
            app.db.dispose()
    finally:
        backends.stop()


def _ctx() -> Any:
    from vault_server.domain._call import system_context

    return system_context("resume migration")


def _all_open(app: Any) -> int:
    from sqlalchemy import select

    from vault_server.crypto.envelope import EnvelopeBinding
    from vault_server.storage.models import CredentialVersion
    from vault_server.storage.repositories import workspaces as ws_repo
    from vault_server.storage.tenant import bind_workspace

    opened = 0
    with app.db.transaction() as session:
        workspaces = ws_repo.all_ids(session)
    for uid, _rid in workspaces:
        with app.db.transaction() as session:
            bind_workspace(session, uid)
            for v in session.execute(
                select(CredentialVersion).where(CredentialVersion.envelope.is_not(None))
            ).scalars():
                app.keys.open(v.envelope, EnvelopeBinding(uid, v.credential_id, v.version))
                opened += 1
    return opened


def test_hsm_outage_over_the_api(tmp_path: Path, hsm_token: SoftHsmToken) -> None:
    home = tmp_path / "home"
    backends = start_backends(("hsm",), home, "hsm", hsm_token)
    canary = new_canary()
    probe = subprocess.run(
        [sys.executable, "-m", "tests.integration.keys.hsm_outage_probe", str(home),
         json.dumps(backends.keys), str(hsm_token.directory), canary],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-2000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["kek_reference"] == "hsm:1" and result["signed_before"] is True
    assert result["outage"] == ["UNAVAILABLE", "KEY_PROVIDER_UNAVAILABLE"]
    assert result["elapsed_s"] < 8
    assert hsm_token.directory.is_dir()  # put back for the rest of the run
    blobs = [p.read_bytes() for p in sorted(home.glob("vault.db*"))]
    assert blobs and not [b for b in blobs if find(canary, b)]
    assert not find(canary, (probe.stdout + probe.stderr).encode())
