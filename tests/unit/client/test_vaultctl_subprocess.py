"""The installed ``vaultctl`` console script, run as a real process against the fake server."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import secrets
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, credential_service_pb2, trading_pb2
from test_client_fakes import FakeVault, reply, running_fake_vault

_SCRIPT = pathlib.Path(sys.executable).parent / "vaultctl"
# The console script of the installed distribution (python -m vaultctl where it is missing).
VAULTCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "vaultctl"]


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with running_fake_vault() as fake:
        yield fake


def _run(vault: FakeVault, args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPVAULT_")}
    env.update(PIPVAULT_ADDR=vault.unix_address, PIPVAULT_TOKEN="proc-token", COLUMNS="200")
    return subprocess.run(
        [*VAULTCTL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_console_script_create_credential_from_stdin(vault: FakeVault) -> None:
    canary = "canary-" + secrets.token_hex(20)
    vault.on(
        "CreateCredential",
        reply(
            credential_service_pb2.CreateCredentialResponse(
                credential=credential_pb2.Credential(
                    name="workspaces/desk/credentials/bybit1",
                    broker=trading_pb2.BROKER_BYBIT,
                    api_key_hint="AbCd…WxYz",
                )
            )
        ),
    )
    result = _run(
        vault,
        [
            "--json",
            "credentials",
            "create",
            "desk",
            "bybit1",
            "--broker",
            "bybit",
            "--environment",
            "testnet",
            "--key-algorithm",
            "hmac-sha256",
            "--api-key",
            "AbCdWxYz",
            "--scope",
            "ContractTrade",
            "--secret-stdin",
            "--reason",
            "onboard bybit testnet",
        ],
        stdin=json.dumps({"secret": canary}),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "workspaces/desk/credentials/bybit1"
    call = vault.last("CreateCredential")
    assert call.request.material.secret == canary
    assert call.metadata["authorization"] == "Bearer proc-token"
    assert call.time_remaining is not None
    raw = canary.encode()
    for form in (canary, raw.hex(), base64.b64encode(raw).decode()):
        assert form not in result.stdout and form not in result.stderr
    assert "proc-token" not in result.stdout + result.stderr


def test_console_script_exit_codes(vault: FakeVault) -> None:
    usage = _run(vault, ["credentials", "create", "desk", "x", "--secret", "hunter2"])
    assert usage.returncode == 2
    assert "hunter2" not in usage.stdout + usage.stderr
    vault.on(
        "VerifyAuditLog",
        lambda req, ctx: ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "no"),
    )
    denied = _run(vault, ["audit", "verify"])
    assert denied.returncode == 3
    assert denied.stderr.startswith("error: PERMISSION_DENIED")
    assert vault.calls_to("VerifyAuditLog")
