"""Helpers for custody tests: onboarding over the real admin API."""

from __future__ import annotations

from typing import Any

from pipsync.vault.v1 import (
    credential_pb2,
    trading_pb2,
)
from pipsync.vault.v1 import (
    credential_service_pb2 as cpb,
)
from pipsync.vault.v1 import (
    credential_service_pb2_grpc as cgrpc,
)
from pipsync.vault.v1 import (
    workspace_service_pb2 as wpb,
)
from pipsync.vault.v1 import (
    workspace_service_pb2_grpc as wgrpc,
)

from tests.support.vault import RunningVault


def make_workspace(vault: RunningVault, ws: str) -> None:
    wgrpc.WorkspaceServiceStub(vault.channel()).CreateWorkspace(
        wpb.CreateWorkspaceRequest(workspace_id=ws, reason="test setup"),
        metadata=vault.md("security"),
        timeout=10,
    )


def creds(vault: RunningVault) -> cgrpc.CredentialServiceStub:
    return cgrpc.CredentialServiceStub(vault.channel())


def binance_request(
    ws: str, cred: str, api_key: str, secret: str, **extra: Any
) -> cpb.CreateCredentialRequest:
    fields: dict[str, Any] = {
        "parent": f"workspaces/{ws}",
        "credential_id": cred,
        "display_name": "binance test",
        "broker": trading_pb2.BROKER_BINANCE_SPOT,
        "environment": trading_pb2.ENVIRONMENT_LIVE,
        "key_algorithm": trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
        "material": credential_pb2.SecretMaterial(api_key=api_key, secret=secret),
        "scopes": ["enableReading", "enableSpotAndMarginTrading"],
        "reason": "onboarding test",
    }
    fields.update(extra)
    return cpb.CreateCredentialRequest(**fields)


def onboard(
    vault: RunningVault, ws: str, cred: str, api_key: str, secret: str, **extra: Any
) -> credential_pb2.Credential:
    return (
        creds(vault)
        .CreateCredential(
            binance_request(ws, cred, api_key, secret, **extra),
            metadata=vault.md("onboarding"),
            timeout=10,
        )
        .credential
    )
