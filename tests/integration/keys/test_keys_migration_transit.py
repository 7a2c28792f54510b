"""The launch gate: an online, streamed migration from the local keyring to OpenBao transit,
then signing through transit, and a KMS outage that never falls back to plaintext."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pipsync.vault.v1 import key_service_pb2 as kpb
from pipsync.vault.v1 import key_service_pb2_grpc as kgrpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from pipsync.vault.v1 import trading_pb2

from tests.integration.crypto.openbao import start_openbao
from tests.support.custody import make_workspace, onboard
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit, start_vault


def _query(vault: RunningVault, credential: str):  # type: ignore[no-untyped-def]
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=credential, strategy_id="s", reason="r"),
        metadata=vault.md("router"), timeout=10,
    ).routing_context  # fmt: skip
    order = trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT)
    request = spb.SignOrderRequest(routing_context=rc.name, order=order, reason="r")
    return stub, request


@pytest.mark.parametrize("cache_entries", [0, 64])
def test_migrate_local_to_transit_then_sign_and_survive_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_entries: int
) -> None:
    bao = start_openbao(tmp_path / "openbao")
    vault = None
    try:
        bao.enable_transit("transit")
        bao.create_transit_key("pipvault")
        monkeypatch.setenv("PIPVAULT_TEST_TRANSIT_TOKEN", bao.root_token)
        home = tmp_path / "home"
        vault = start_vault(
            home,
            keys={
                "providers": {
                    "local": f"local://{home / 'keyring.json'}",
                    "transit": "vault-transit://transit/keys/pipvault",
                },
                "primary": "local",
                "transit_address": bao.address,
                "transit_token_env": "PIPVAULT_TEST_TRANSIT_TOKEN",
                "dek_cache_max_entries": cache_entries,
            },
            readiness_interval_s=0.2,
        )
        make_workspace(vault, "ws-a")
        names = [
            onboard(vault, "ws-a", f"c{i}", f"K{i}" * 10, secrets.token_hex(16)).name
            for i in range(5)
        ]
        keys = kgrpc.KeyServiceStub(vault.channel())
        progress = list(
            keys.MigrateKeys(kpb.MigrateKeysRequest(target_provider_id="transit", batch_size=2, reason="launch gate"),
                             metadata=vault.md(), timeout=60)
        )  # fmt: skip
        assert progress[0].total == 5 and progress[-1].done and progress[-1].migrated == 5
        assert [p.migrated for p in progress] == sorted(p.migrated for p in progress)
        status = keys.GetKeyStatus(kpb.GetKeyStatusRequest(), metadata=vault.md(), timeout=10)
        by_id = {p.provider_id: p for p in status.providers}
        assert sum(v.ciphertext_count for v in by_id["transit"].versions) == 5
        assert sum(v.ciphertext_count for v in by_id["local"].versions) == 0
        assert by_id["transit"].kind == "vault-transit" and by_id["transit"].healthy
        # Rerunning is a no-op (resumable, idempotent).
        again = list(
            keys.MigrateKeys(
                kpb.MigrateKeysRequest(target_provider_id="transit", reason="again"),
                metadata=vault.md(),
                timeout=60,
            )
        )
        assert again[-1].done and again[-1].migrated == 5
        stub, request = _query(vault, names[0])
        signed = stub.SignOrder(request, metadata=vault.md("router"), timeout=10)
        assert "signature=" in signed.signed_request.url
        events = [e for e in iter_audit(vault.app) if e.action.startswith("key.")]
        assert [(e.action, e.details["stage"]) for e in events] == [
            ("key.migrate", "started"), ("key.migrate", "finished"),
        ] * 2  # fmt: skip
        assert {k: events[1].details[k] for k in ("from", "to", "count")} == {
            "from": "local", "to": "transit:1", "count": "5",
        }  # fmt: skip
        assert events[3].details["count"] == "0"  # the rerun moved nothing

        bao.stop()  # KMS outage
        if cache_entries:
            # Steady state: the data key is cached, signing does not need the KMS.
            assert (
                "signature="
                in stub.SignOrder(
                    request, metadata=vault.md("router"), timeout=10
                ).signed_request.url
            )
            # A key never used since the outage cannot be unwrapped: refused, never plaintext.
            stub2, request2 = _query(vault, names[1])
            err = expect_error(stub2.SignOrder, request2, metadata=vault.md("router"), timeout=10)
        else:
            err = expect_error(stub.SignOrder, request, metadata=vault.md("router"), timeout=10)
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "KEY_PROVIDER_UNAVAILABLE")
        # Readiness follows whether the vault can still sign. Without a DEK cache every
        # signature needs the KMS: NOT_SERVING. With one, the cached keys still sign: the pod
        # stays in service, degraded{component="key_provider"} = 1, logged once.
        registry = vault.app.metrics.registry
        deadline = time.monotonic() + 10
        degraded = None
        while time.monotonic() < deadline:
            degraded = registry.get_sample_value("pipvault_degraded", {"component": "key_provider"})
            if degraded == 1:
                break
            time.sleep(0.1)
        assert degraded == 1
        with grpc.insecure_channel(vault.health_target) as ch:
            status = (
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            ).status
        expected = "SERVING" if cache_entries else "NOT_SERVING"
        assert health_pb2.HealthCheckResponse.ServingStatus.Name(status) == expected
        assert registry.get_sample_value("pipvault_ready") == (1 if cache_entries else 0)
        labels = {"provider": "vault-transit", "operation": "status"}
        assert (registry.get_sample_value("pipvault_kms_errors_total", labels) or 0) >= 1
        assert (
            registry.get_sample_value(
                "pipvault_kms_request_seconds_count",
                {"provider": "vault-transit", "operation": "wrap"},
            )
            or 0
        ) >= 5
    finally:
        if vault is not None:
            vault.stop()
        bao.stop()
