"""The key-provider contract: wrap and unwrap data keys under a versioned key-encryption key.

A provider holds (or reaches) a KEK with numbered versions. Exactly one version is *active* and
wraps new DEKs; older versions are *decrypt_only* until every DEK they wrap has been rewrapped,
then *retired*. Implementations: ``LocalKeyProvider`` (keyring file or environment variable) and
``TransitKeyProvider`` (HashiCorp Vault / OpenBao transit).

Contract every implementation keeps:

- ``aad`` passed to ``wrap`` must be presented again to ``unwrap``/``rewrap``; a mismatch is
  ``IntegrityCheckFailed``. The provider additionally binds the KEK version it wrapped under (a
  version is a distinct key, and the local provider also adds it to the AES-GCM AAD), so the
  version recorded in an envelope cannot be swapped either.
- Failures are domain errors only: ``IntegrityCheckFailed`` for a wrapped key that does not
  authenticate (tampering, wrong binding, retired version), ``KeyProviderUnavailable`` when the
  provider cannot answer. Never a library exception, never a plaintext fallback.
- No key material in ``repr``, ``str`` or any error message.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Final, Protocol

from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

#: Provider ids are short, stable names from the configuration (``keys.providers``).
PROVIDER_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_provider_id(provider_id: str) -> str:
    """Return ``provider_id`` if it is a valid id, else raise ``InvalidArgument``."""
    if not isinstance(provider_id, str) or not PROVIDER_ID_RE.fullmatch(provider_id):
        raise InvalidArgument(
            "provider_id", "must be 1-64 characters of a-z, 0-9, '_', '.', '-' (starting a-z0-9)"
        )
    return provider_id


class KekState(enum.StrEnum):
    """Lifecycle of one KEK version (NIST SP 800-57 originator/recipient usage periods)."""

    ACTIVE = "active"  # wraps new DEKs (exactly one version)
    DECRYPT_ONLY = "decrypt_only"  # unwraps, never wraps; rewrap moves its DEKs forward
    RETIRED = "retired"  # neither: its census reached zero and its key is gone


@dataclass(frozen=True)
class WrappedDek:
    """A data key encrypted under ``provider_id``'s KEK version ``kek_version``.

    ``blob`` is provider-specific (local: ``nonce || ct || tag``; transit: ``vault:vN:...``) and is
    not secret, but it is not shown in ``repr`` either (only its length).
    """

    provider_id: str
    kek_version: int
    blob: bytes

    def __repr__(self) -> str:
        return (
            f"WrappedDek(provider_id={self.provider_id!r}, kek_version={self.kek_version}, "
            f"blob=<{len(self.blob)} bytes>)"
        )


@dataclass(frozen=True)
class KekVersionInfo:
    """One KEK version as the provider reports it."""

    version: int
    state: KekState
    create_time: dt.datetime | None


@dataclass(frozen=True)
class ProviderStatus:
    """What ``KeyProvider.status()`` reports (for ``GetKeyStatus``); versions newest first."""

    provider_id: str
    kind: str
    active_version: int
    versions: tuple[KekVersionInfo, ...]


class KeyProvider(Protocol):
    """Wraps data keys under a versioned KEK. See the module docstring for the contract."""

    @property
    def provider_id(self) -> str:
        """The configured id (``keys.providers`` key); recorded in every envelope."""
        ...

    @property
    def kind(self) -> str:
        """``"local"`` or ``"vault-transit"``."""
        ...

    def wrap(self, dek: Secret, aad: bytes) -> WrappedDek:
        """Encrypt ``dek`` under the active KEK version, binding ``aad``.

        Raises:
            KeyProviderUnavailable: the provider cannot answer.
        """
        ...

    def unwrap(self, wrapped: WrappedDek, aad: bytes) -> Secret:
        """Decrypt a wrapped DEK; ``aad`` must equal the one given to ``wrap``.

        Raises:
            IntegrityCheckFailed: wrong aad, modified blob, unknown or retired KEK version.
            KeyProviderUnavailable: the provider cannot answer.
        """
        ...

    def rewrap(self, wrapped: WrappedDek, aad: bytes) -> WrappedDek:
        """Re-encrypt a wrapped DEK under the active KEK version (transit never reveals the DEK).

        Raises:
            IntegrityCheckFailed: as for ``unwrap``.
            KeyProviderUnavailable: the provider cannot answer.
        """
        ...

    def rotate(self) -> int:
        """Create a new KEK version, make it active (the old one becomes decrypt_only).

        Returns:
            The new active version.
        """
        ...

    def active_version(self) -> int:
        """The version ``wrap`` would use now."""
        ...

    def status(self) -> ProviderStatus:
        """Kind, active version and every KEK version with its state and creation time."""
        ...

    def retire(self, version: int) -> None:
        """Retire a decrypt_only version: it will never unwrap again.

        Raises:
            InvalidArgument: ``version`` is the active version or does not exist.
        """
        ...
