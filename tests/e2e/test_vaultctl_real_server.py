"""vaultctl as a real process against a real vault: workspaces, credentials, keys, audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.canary import find, new_canary
from tests.support.vault import RunningVault

VAULTCTL = str(Path(sys.executable).with_name("vaultctl"))


def _ctl(
    vault: RunningVault, who: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PIPVAULT_ADDR": vault.admin_target,
        "PIPVAULT_TOKEN": vault.tokens[who],
        "COLUMNS": "200",
    }
    return subprocess.run(
        [VAULTCTL, *args], input=stdin, capture_output=True, text=True, timeout=60, env=env
    )


def test_vaultctl_drives_the_admin_plane(vault: RunningVault) -> None:
    made = _ctl(vault, "security", "--json", "--reason", "new desk", "workspaces", "create", "ws-a")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["name"] == "workspaces/ws-a"
    canary = new_canary()
    created = _ctl(
        vault, "onboarding", "--json", "--reason", "onboard",
        "credentials", "create", "ws-a", "binance-main", "--broker", "binance_spot",
        "--environment", "live", "--key-algorithm", "hmac-sha256", "--api-key", "A" * 24,
        "--scope", "enableReading", "--scope", "enableSpotAndMarginTrading", "--secret-stdin",
        stdin=canary + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["state"] == "STATE_ACTIVE"
    refused = _ctl(
        vault, "onboarding", "--reason", "onboard", "credentials", "create", "ws-a", "w",
        "--broker", "binance_spot", "--environment", "live", "--key-algorithm", "hmac-sha256",
        "--api-key", "B" * 24, "--scope", "Enable Withdrawals", "--secret-stdin", stdin=canary + "\n",
    )  # fmt: skip
    assert refused.returncode == 3 and "WITHDRAWAL_SCOPE_REJECTED" in refused.stderr
    listed = _ctl(vault, "auditor", "credentials", "list", "ws-a")
    assert listed.returncode == 0 and "binance-main" in listed.stdout
    keys = _ctl(vault, "security", "--json", "keys", "status")
    assert keys.returncode == 0 and json.loads(keys.stdout)
    wrong = _ctl(vault, "auditor", "--reason", "x", "workspaces", "freeze", "ws-a")
    assert wrong.returncode == 3 and "PERMISSION_DENIED" in wrong.stderr
    verified = _ctl(vault, "auditor", "--json", "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["intact"] is True
    events = _ctl(
        vault,
        "auditor",
        "--json",
        "audit",
        "list",
        "--workspace",
        "ws-a",
        "--action",
        "credential.",
    )
    assert events.returncode == 0, events.stderr
    actions = [e["action"] for e in json.loads(events.stdout)["events"]]
    assert "credential.create" in actions and "credential.list" in actions
    for result in (made, created, refused, listed, keys, wrong, verified, events):
        assert find(canary, (result.stdout + result.stderr).encode()) == []
        assert vault.tokens["security"] not in result.stdout + result.stderr


def test_vaultctl_sessions_and_platform_applications(vault: RunningVault) -> None:
    made = _ctl(vault, "security", "--reason", "fx desk", "workspaces", "create", "ws-a")
    assert made.returncode == 0, made.stderr
    created = _ctl(
        vault, "onboarding", "--reason", "onboard",
        "credentials", "create", "ws-a", "binance-main", "--broker", "binance_spot",
        "--environment", "live", "--key-algorithm", "hmac-sha256", "--api-key", "A" * 24,
        "--scope", "enableReading", "--scope", "enableSpotAndMarginTrading", "--secret-stdin",
        stdin=new_canary() + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    # A static key has no venue session: the server's refusal, as it said it.
    reset = _ctl(
        vault, "security", "--reason", "unlock", "credentials", "reset-session", "ws-a/binance-main"
    )
    assert reset.returncode == 3, reset.stderr
    assert "FAILED_PRECONDITION OPERATION_NOT_SUPPORTED" in reset.stderr
    assert "no venue session" in reset.stderr
    shown = _ctl(vault, "auditor", "--json", "credentials", "show", "ws-a/binance-main")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["lifecycle"] == "CREDENTIAL_LIFECYCLE_STATIC"
    # The platform's cTrader application: the client secret from stdin, never shown again.
    client_secret = new_canary()
    app_args = (
        "platform-apps", "set", "--broker", "ctrader", "--environment", "live",
        "--client-id", "4711_pipsyncapp", "--secret-stdin",
    )  # fmt: skip
    denied = _ctl(vault, "onboarding", "--reason", "app", *app_args, stdin=client_secret)
    assert denied.returncode == 3 and "PERMISSION_DENIED" in denied.stderr
    stored = _ctl(vault, "security", "--json", "--reason", "app", *app_args, stdin=client_secret)
    assert stored.returncode == 0, stored.stderr
    app = json.loads(stored.stdout)
    assert app["broker"] == "BROKER_CTRADER" and app["version"] >= 1
    listed = _ctl(vault, "security", "platform-apps", "list")
    assert listed.returncode == 0, listed.stderr
    assert "ctrader" in listed.stdout and app["name"] in listed.stdout
    in_argv = _ctl(vault, "security", "--reason", "app", *app_args[:-1], "--client-secret", client_secret)  # fmt: skip
    assert in_argv.returncode == 2
    for result in (reset, shown, denied, stored, listed, in_argv):
        assert find(client_secret, (result.stdout + result.stderr).encode()) == []
        assert vault.tokens["security"] not in result.stdout + result.stderr
