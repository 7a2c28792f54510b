"""Dev mode: everything on embedded defaults under one home folder.

SQLite database, a generated local keyring, a generated server key, a dev policy with one token
per role (printed, and kept 0600 in ``<home>/dev-tokens.json`` so restarts keep them), and a
``demo`` workspace. Never for production: tokens are printed on purpose.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vault_server.app import write_private_file
from vault_server.auth.policy import hash_token
from vault_server.config import Settings

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


def vaultctl_command(cwd: Path | None = None) -> str:
    """``vaultctl`` as it can be typed here: its bare name when the ``vaultctl`` on ``PATH`` is
    this environment's, else the one beside this interpreter (``.venv/bin/vaultctl``, relative
    when it is under ``cwd``), else the module run by this interpreter."""
    beside = Path(sys.executable).parent / "vaultctl"
    on_path = shutil.which("vaultctl")
    if on_path is not None and (not beside.exists() or _same_file(Path(on_path), beside)):
        return "vaultctl"
    if not beside.exists():
        return f"{shlex.quote(sys.executable)} -m vaultctl"
    here = (cwd or Path.cwd()).resolve()
    absolute = beside.parent.resolve() / beside.name  # the venv's bin, not the python it links to
    if absolute.is_relative_to(here):
        return shlex.quote(str(absolute.relative_to(here)))
    return shlex.quote(str(absolute))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def describe_storage(settings: Settings) -> str:
    """The database the settings point at, without credentials (``SQLite /abs/vault.db``)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "sqlite":
        return f"SQLite {url.database}"
    where = f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}/{url.database or ''}"
    return f"PostgreSQL {where}"


def describe_keys(settings: Settings) -> str:
    """Which key provider wraps new data keys (and which others are configured)."""
    providers = settings.resolved_key_providers()
    primary = settings.keys.primary if settings.keys.providers else next(iter(providers))
    others = [pid for pid in providers if pid != primary]
    text = f"{_describe_provider(settings, providers[primary])} (provider {primary!r})"
    return text + (f"; also configured: {', '.join(others)}" if others else "")


def _describe_provider(settings: Settings, uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    if scheme == "local":
        return f"local keyring {rest}"
    if scheme == "local+env":
        return f"local keyring from ${rest}"
    if scheme == "vault-transit":
        return f"OpenBao/Vault transit key {rest} at {settings.keys.transit_address or '-'}"
    if scheme == "aws-kms":
        return f"AWS KMS key {rest}"
    if scheme == "pkcs11":
        return f"PKCS#11 key {rest}"
    return uri


@dataclass(frozen=True)
class Endpoints:
    """Where the dev vault listens ("" for a listener that is off)."""

    admin: str
    data_socket: str
    data_address: str
    health: str
    metrics: str


def banner(settings: Settings, endpoints: Endpoints, tokens: dict[str, str], vaultctl: str) -> str:
    """What ``pipvault dev`` prints once serving: what it runs on, where it listens, the dev
    tokens and a command that can be pasted as it is."""
    data = " and ".join(
        x for x in (endpoints.data_socket and f"unix://{endpoints.data_socket}",
                    endpoints.data_address) if x
    )  # fmt: skip
    metrics = f"http://{endpoints.metrics}/metrics" if endpoints.metrics else "off"
    lines = [
        "",
        "pipvault is running in DEV MODE (never use for real money)",
        f"  storage     : {describe_storage(settings)}",
        f"  keys        : {describe_keys(settings)}",
        f"  admin plane : {endpoints.admin or 'off'}",
        f"  data plane  : {data or 'off'}",
        f"  health      : {endpoints.health or 'off'}",
        f"  metrics     : {metrics}",
        "  tokens (dev only):",
        *[f"    {pid:<15} {tok}" for pid, tok in tokens.items()],
        "  try:",
        f"    export PIPVAULT_ADDR={endpoints.admin} PIPVAULT_TOKEN={tokens['dev-security']}",
        f"    {vaultctl} workspaces list",
        "  Ctrl-C stops the vault.",
        "",
    ]
    return "\n".join(lines)
