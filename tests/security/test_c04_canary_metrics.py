"""Attack: a canary secret must not reach the Prometheus endpoint (labels, help text, values),
after successful and refused onboarding, rotation and signing, scraped over real HTTP."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
from pipsync.vault.v1 import credential_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.custody import binance_request, creds
from tests.support.vault import start_vault


def test_metrics_never_carry_the_canary(tmp_path: Path) -> None:
    vault = start_vault(tmp_path / "home", listen={"metrics_address": "127.0.0.1:0"})
    canary, canary2 = new_canary(), new_canary()
    try:
        sf.create_workspace(vault, "ws-a")
        key = sf.binance_hmac(sf.new_api_key(), canary)
        cred = sf.onboard(vault, key, "bn")
        rc = sf.begin(vault, cred.name).name
        sf.sign(vault, rc, sf.place_for(key))
        refusals = [
            binance_request("ws-a", "bn", "K" * 24, canary),  # duplicate
            binance_request("ws-a", "w", "K" * 24, canary, scopes=["enableWithdrawals"]),
            binance_request("ws-a", "r", "K" * 24, canary, reason=""),
        ]
        for request in refusals:
            try:
                creds(vault).CreateCredential(request, metadata=vault.md("onboarding"), timeout=10)
            except grpc.RpcError:
                pass
            else:
                raise AssertionError("a refused onboarding was accepted")
        creds(vault).RotateCredential(
            cpb.RotateCredentialRequest(
                name=cred.name,
                material=credential_pb2.SecretMaterial(api_key=key.api_key, secret=canary2),
                reason="rotate",
            ),
            metadata=vault.md("onboarding"),
            timeout=10,
        )
        port = vault.app.metrics_port
        assert port
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).content
        assert b"pipvault_rpc" in body  # the scrape really covers the calls above
        for secret in (canary, canary2):
            assert not find(secret, body), "the canary reached /metrics"
    finally:
        vault.stop()
