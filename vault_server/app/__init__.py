"""The composition root: the one place that builds the vault from its settings.

One module per subsystem's wiring - ``_keys`` (providers, DEK cache, KeyManager), ``_audit``
(reader, checkpoints, verification, SIEM sink), ``_signing`` (custody, routing, signing, the
group-committed hot path), ``_paging`` (notifier, sender), ``_identity`` (policy, identity
sources, TLS), ``_servers`` (admission, interceptors, servicers, listeners), ``_readiness`` and
``_jobs`` (what runs while serving) - and ``VaultApp`` (``_vault``) composing them.
"""

from __future__ import annotations

from vault_server.app._keys import build_key_providers, dek_cache_entries
from vault_server.app._secrets import (
    SERVER_KEY_ENV,
    derive_key,
    load_server_key,
    write_private_file,
)
from vault_server.app._vault import VaultApp, serve_until_signalled

__all__ = [
    "SERVER_KEY_ENV",
    "VaultApp",
    "build_key_providers",
    "dek_cache_entries",
    "derive_key",
    "load_server_key",
    "serve_until_signalled",
    "write_private_file",
]
