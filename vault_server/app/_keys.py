"""Wiring of the key subsystem: the configured key providers, metered, behind one KeyManager
with its DEK cache."""

from __future__ import annotations

import os
from pathlib import Path

from vault_server.config import ConfigError, Settings
from vault_server.core.clock import Clock, Random
from vault_server.core.errors import VaultError
from vault_server.crypto.dek_cache import DekCache
from vault_server.crypto.metered import MeteredKeyProvider
from vault_server.crypto.providers import KeyProvider, init_local_keyring, new_key_provider
from vault_server.key_settings import key_provider_options, key_setting_name
from vault_server.keys import KeyManager
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics
from vault_server.storage.database import Database

_log = get_logger("pipvault.app")


def build_key_providers(settings: Settings, clock: Clock, random: Random) -> dict[str, KeyProvider]:
    """One provider per ``keys.providers`` entry. Dev mode creates its local keyring, loudly;
    production never creates key material silently (``pipvault keys init-local``)."""
    providers: dict[str, KeyProvider] = {}
    for provider_id, uri in settings.resolved_key_providers().items():
        options: dict[str, object] = {"clock": clock}
        if uri.startswith("local"):
            options["random"] = random
            path = Path(uri.removeprefix("local://"))
            if settings.mode == "dev" and uri.startswith("local:///") and not path.exists():
                init_local_keyring(path, clock=clock, random=random)
                _log.warning(
                    "keys.dev_keyring_created",
                    path=str(path),
                    note="DEV MODE generated a local keyring; never use it for real money",
                )
        else:
            options.update(
                key_provider_options(
                    settings.keys, uri, settings.limits.storage_threads, dict(os.environ)
                )
            )
        try:
            providers[provider_id] = new_key_provider(uri, provider_id, **options)
        except VaultError as exc:
            raw = str(exc.metadata.get("field", "keys.providers"))
            problem = exc.message.removeprefix(f"{raw}: ")
            raise ConfigError(f"{key_setting_name(uri, raw)}: {problem}") from exc
    return providers


def dek_cache_entries(settings: Settings) -> int:
    if settings.keys.dek_cache_max_entries is not None:
        return settings.keys.dek_cache_max_entries
    remote = any(not u.startswith("local") for u in settings.resolved_key_providers().values())
    return 1024 if remote else 0


def build_key_manager(
    settings: Settings, db: Database, metrics: Metrics, clock: Clock, random: Random
) -> KeyManager:
    """Every provider wrapped in metrics, the primary chosen, the DEK cache sized."""
    keys_cfg = settings.keys
    providers = build_key_providers(settings, clock, random)
    return KeyManager(
        db,
        {pid: MeteredKeyProvider(p, metrics) for pid, p in providers.items()},
        keys_cfg.primary if keys_cfg.providers else "local",
        wrap_limit=keys_cfg.wrap_limit,
        clock=clock,
        random=random,
        cache=DekCache(
            max_entries=dek_cache_entries(settings),
            max_age_s=keys_cfg.dek_cache_max_age_s,
            max_uses=keys_cfg.dek_cache_max_uses,
            clock=clock,
            on_hit=metrics.dek_cache_hits.inc,
            on_miss=metrics.dek_cache_misses.inc,
        ),
    )
