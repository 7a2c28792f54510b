"""Helpers of the transit provider: the optional hvac import, ciphertext and answer parsing,
and the mapping of hvac / requests exceptions to a short, non-secret ``cause`` string."""

from __future__ import annotations

import base64
import datetime as dt
import re
from types import ModuleType
from typing import Any, Final

from vault_server.core.errors import KeyProviderUnavailable
from vault_server.crypto.providers.base import KekState, KekVersionInfo

#: ``vault:v<N>:<base64>``: what transit returns for encrypt and rewrap.
CIPHERTEXT_RE: Final = re.compile(r"^vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}$")


def import_hvac() -> ModuleType:
    """``hvac`` (an optional dependency), or a clear error saying how to get it."""
    try:
        import hvac
    except ImportError:
        raise KeyProviderUnavailable(
            "vault-transit key providers need hvac: install pipvault[transit] (or hvac)"
        ) from None
    return hvac  # type: ignore[no-any-return]


def failure_cause(
    hvac: ModuleType, requests: ModuleType, error: BaseException, default: str = ""
) -> str:
    exc = hvac.exceptions
    table: list[tuple[Any, str]] = [
        (requests.exceptions.Timeout, "timeout"),
        (requests.exceptions.SSLError, "tls"),
        (requests.exceptions.ConnectionError, "unreachable"),
        (exc.InvalidPath, "not_found"),
        ((exc.Forbidden, exc.Unauthorized), "permission_denied"),
        (exc.RateLimitExceeded, "rate_limited"),
        ((exc.VaultDown, exc.VaultNotInitialized), "sealed_or_down"),
    ]
    for kind, name in table:
        if isinstance(error, kind):
            return name
    return default or "server_error"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def created_time(value: Any) -> dt.datetime | None:
    """Creation time of a key version: a Unix time, or ``{"creation_time": ISO}``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, dict) and isinstance(value.get("creation_time"), str):
        try:
            return dt.datetime.fromisoformat(value["creation_time"].replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def kek_versions(key: dict[str, Any]) -> tuple[KekVersionInfo, ...]:
    """KEK versions (newest first) from a transit ``read_key`` answer.

    The latest version is active; versions below ``min_decryption_version`` are retired (listed
    even when trimmed away); the rest are decrypt-only.
    """
    latest = as_int(key.get("latest_version"))
    min_decrypt = as_int(key.get("min_decryption_version"))
    raw_keys = key.get("keys")
    created: dict[str, Any] = raw_keys if isinstance(raw_keys, dict) else {}
    versions = []
    for v in range(latest, 0, -1):
        if v == latest:
            state = KekState.ACTIVE
        elif v < min_decrypt:
            state = KekState.RETIRED
        else:
            state = KekState.DECRYPT_ONLY
        if str(v) in created or state == KekState.RETIRED:
            versions.append(KekVersionInfo(v, state, created_time(created.get(str(v)))))
    return tuple(versions)
