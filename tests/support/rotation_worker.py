"""A separate process that onboards credentials and rotates the KEK, printing progress, so a
test can ``kill -9`` it in the middle of the rewrap. Usage: python -m tests.support.rotation_worker HOME N"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from vault_server.app import VaultApp
from vault_server.auth.policy import parse_policy
from vault_server.brokers.base import Environment, KeyAlgorithm, Venue
from vault_server.config import load_settings
from vault_server.core.secret import Secret
from vault_server.custody._material import MaterialInput
from vault_server.custody._onboarding import NewCredential
from vault_server.domain._call import system_context
from vault_server.orders._policy import OrderPolicy


def build(home: Path) -> VaultApp:
    settings = load_settings(None, mode="dev", home=str(home), log_level="ERROR")
    return VaultApp(settings, policy=parse_policy({"principals": []}))


def onboard(app: VaultApp, n: int) -> None:
    ctx = system_context("rotation test setup")
    app.prepare_storage()
    app.workspaces.create(ctx, "ws-a", "")
    for i in range(n):
        app.credentials.create(
            ctx,
            NewCredential(
                parent="workspaces/ws-a", credential_id=f"c{i}", display_name="",
                venue=Venue.BINANCE_SPOT, environment=Environment.LIVE,
                algorithm=KeyAlgorithm.HMAC_SHA256, scopes=["enableSpotAndMarginTrading"],
                policy=OrderPolicy(),
                material=MaterialInput(f"key{i:04d}" + "x" * 10, Secret(secrets.token_hex(16)),
                                       Secret(b""), Secret(b""), ""),
            ),
        )  # fmt: skip


def main() -> None:
    home, n = Path(sys.argv[1]), int(sys.argv[2])
    app = build(home)
    onboard(app, n)
    print("onboarded", flush=True)
    app.keys.rotate("local")
    print("rotated", flush=True)
    for step in app.key_admin._rewrap.rotation(
        system_context("kek rotation"), "local", batch_size=5
    ):
        print(f"progress {step.migrated}/{step.total}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
