"""Dev mode: everything on embedded defaults under one home folder.

SQLite database, a generated local keyring, a generated server key, a dev policy with one token
per role (printed, and kept 0600 in ``<home>/dev-tokens.json`` so restarts keep them), and a
``demo`` workspace. Never for production: tokens are printed on purpose.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import yaml

from vault_server.app import write_private_file
from vault_server.auth.policy import hash_token

DEV_PRINCIPALS: dict[str, dict[str, Any]] = {
    "dev-security": {"type": "user", "roles": ["security"], "workspaces": ["*"]},
    "dev-onboarding": {"type": "user", "roles": ["onboarding"], "workspaces": ["*"]},
    "dev-auditor": {"type": "user", "roles": ["auditor"], "workspaces": ["*"]},
    "dev-router": {"type": "service", "roles": ["router"], "workspaces": ["demo"]},
}


def ensure_dev_policy(home: Path) -> tuple[Path, dict[str, str]]:
    """Create (once) the dev tokens and the policy file that holds only their hashes."""
    tokens_file = home / "dev-tokens.json"
    if tokens_file.exists():
        tokens: dict[str, str] = json.loads(tokens_file.read_text())
    else:
        tokens = {pid: f"pvdev_{secrets.token_urlsafe(32)}" for pid in DEV_PRINCIPALS}
        write_private_file(tokens_file, json.dumps(tokens, indent=2).encode())
    policy = {
        "principals": [
            {"id": pid, **spec, "token_sha256": hash_token(tokens[pid])}
            for pid, spec in DEV_PRINCIPALS.items()
        ]
    }
    policy_file = home / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy, sort_keys=False))
    return policy_file, tokens


def banner(admin: str, data_socket: str, data_addr: str, tokens: dict[str, str]) -> str:
    lines = [
        "",
        "pipvault is running in DEV MODE (SQLite, local keyring; never use for real money)",
        f"  admin plane : {admin}",
        f"  data plane  : unix://{data_socket}" + (f"  and  {data_addr}" if data_addr else ""),
        "  tokens (dev only):",
        *[f"    {pid:<15} {tok}" for pid, tok in tokens.items()],
        "  try:",
        f"    export PIPVAULT_ADDR={admin} PIPVAULT_TOKEN={tokens['dev-security']}",
        "    vaultctl workspaces list",
        "  Ctrl-C stops the vault.",
        "",
    ]
    return "\n".join(lines)
