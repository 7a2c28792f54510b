"""Scheduled attestation quarantines a key the venue says can withdraw; on-behalf-of identity."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import grpc
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.support.custody import creds, make_workspace
from tests.support.errors import expect_error
from tests.support.vault import ROLES, iter_audit, start_vault
from tests.venue_stubs.binance_stub import BinanceStub


def test_scheduled_attestation_quarantines_withdrawal_capable_keys(tmp_path: Path) -> None:
    key, secret = "BNKEY" + secrets.token_hex(8), secrets.token_hex(32)
    with BinanceStub({key: secret}, permissions={key: {"enableWithdrawals": True}}) as stub:
        vault = start_vault(
            tmp_path / "home",
            signing={
                "venue_base_urls": {"binance_spot": stub.base_url},
                "attestation_interval_s": 0.3,
            },
        )
        try:
            make_workspace(vault, "ws-a")
            cred = creds(vault).CreateCredential(
                cpb.CreateCredentialRequest(
                    parent="workspaces/ws-a", credential_id="bn", broker=trading_pb2.BROKER_BINANCE_SPOT,
                    environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
                    material=credential_pb2.SecretMaterial(api_key=key, secret=secret),
                    scopes=["enableSpotAndMarginTrading"], reason="onboard",
                ),
                metadata=vault.md("onboarding"), timeout=10,
            ).credential  # fmt: skip
            assert cred.state == credential_pb2.Credential.STATE_ACTIVE
            deadline = time.monotonic() + 10
            state = cred.state
            while (
                time.monotonic() < deadline and state != credential_pb2.Credential.STATE_QUARANTINED
            ):
                time.sleep(0.1)
                state = (
                    creds(vault)
                    .GetCredential(
                        cpb.GetCredentialRequest(name=cred.name),
                        metadata=vault.md("auditor"),
                        timeout=10,
                    )
                    .credential.state
                )
            assert state == credential_pb2.Credential.STATE_QUARANTINED
            attests = [e for e in iter_audit(vault.app) if e.action == "credential.attest"]
            assert (
                attests
                and attests[0].actor_type == "system"
                and attests[0].details["result"] == "excessive"
            )
        finally:
            vault.stop()


def test_on_behalf_of_only_from_principals_allowed_to_assert_it(tmp_path: Path) -> None:
    roles = dict(ROLES)
    roles["portal"] = {
        "type": "service",
        "roles": ["security"],
        "workspaces": ["*"],
        "may_assert_on_behalf_of": True,
    }
    vault = start_vault(tmp_path / "home", roles=roles)
    try:
        stub = wgrpc.WorkspaceServiceStub(vault.channel())
        request = wpb.CreateWorkspaceRequest(workspace_id="ws-obo", reason="ticket 7")
        err = expect_error(
            stub.CreateWorkspace,
            request,
            metadata=vault.md("security", x_pipvault_on_behalf_of="alice"),
            timeout=10,
        )
        assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
        stub.CreateWorkspace(
            request, metadata=vault.md("portal", x_pipvault_on_behalf_of="alice"), timeout=10
        )
        event = [e for e in iter_audit(vault.app) if e.action == "workspace.create"][-1]
        assert (event.actor_type, event.actor_id, event.on_behalf_of) == (
            "service",
            "portal",
            "alice",
        )
    finally:
        vault.stop()
