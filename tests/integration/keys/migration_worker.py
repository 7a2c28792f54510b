"""A separate process that onboards credentials under the primary key provider and migrates
them to another, printing progress, so a test can ``kill -9`` it mid-migration.

Usage: python -m tests.integration.keys.migration_worker HOME KEYS_JSON N TARGET
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.support.rotation_worker import onboard
from vault_server.app import VaultApp
from vault_server.auth.policy import parse_policy
from vault_server.config import load_settings
from vault_server.domain._call import system_context


def build(home: Path, keys: dict[str, object]) -> VaultApp:
    settings = load_settings(None, mode="dev", home=str(home), log_level="ERROR", keys=keys)
    return VaultApp(settings, policy=parse_policy({"principals": []}))


def main() -> None:
    home, keys, n, target = (
        Path(sys.argv[1]),
        json.loads(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
    )
    app = build(home, keys)
    onboard(app, n)
    print("onboarded", flush=True)
    for step in app.key_admin._rewrap.migration(system_context("migration"), target, batch_size=1):
        print(f"progress {step.migrated}/{step.total}", flush=True)
        time.sleep(0.05)  # leaves the test time to kill the process mid-migration
    print("done", flush=True)


if __name__ == "__main__":
    main()
