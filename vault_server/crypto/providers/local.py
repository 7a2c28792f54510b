"""The ``local`` key provider: an application-managed, versioned KEK keyring.

The keyring comes from a private file (``local:///abs/path/keyring.json``; rotation appends a
version atomically) or from an environment variable such as a Kubernetes Secret
(``local+env://VAR``; read-only, rotate by redeploying the variable). Wrapping is AES-256-GCM
under the active KEK with associated data ``aad || u32(kek_version)``, so the version recorded in
an envelope is bound too. Old versions keep unwrapping until retired.

Several processes may share one keyring file: writes take an ``flock`` on ``<file>.lock`` and
re-read the file first, and a provider reloads when the file changed under it.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from vault_server.core.clock import Clock, Random, SystemClock, SystemRandom
from vault_server.core.errors import (
    IntegrityCheckFailed,
    InvalidArgument,
    KeyProviderUnavailable,
    OperationNotSupported,
)
from vault_server.core.secret import Secret
from vault_server.crypto.aead import AesGcm
from vault_server.crypto.providers import _keyring
from vault_server.crypto.providers.base import (
    KekState,
    KekVersionInfo,
    ProviderStatus,
    WrappedDek,
    check_provider_id,
)

KIND = "local"


def init_local_keyring(
    path: Path | str, *, clock: Clock | None = None, random: Random | None = None
) -> None:
    """Create a keyring file with one fresh active version (mode 0600).

    Raises:
        AlreadyExists: ``path`` exists; it is never overwritten.
        KeyProviderUnavailable: the file cannot be written.
    """
    ring = _keyring.new_keyring(clock or SystemClock(), random or SystemRandom())
    _keyring.write_private_file(Path(path), ring.dump(), overwrite=False)


def generate_keyring_document(
    *, clock: Clock | None = None, random: Random | None = None
) -> Secret:
    """A fresh keyring document, e.g. for ``local+env://VAR`` (base64 it into the variable)."""
    return _keyring.new_keyring(clock or SystemClock(), random or SystemRandom()).dump()


class LocalKeyProvider:
    """A ``KeyProvider`` over a local keyring (build it with ``from_file`` or ``from_env``)."""

    def __init__(
        self,
        provider_id: str,
        keyring: _keyring.Keyring,
        *,
        path: Path | None,
        source: str,
        clock: Clock,
        random: Random,
    ) -> None:
        self._id = check_provider_id(provider_id)
        self._ring = keyring
        self._path = path
        self._source = source
        self._clock = clock
        self._random = random
        self._lock = threading.RLock()
        self._identity = _keyring.file_identity(path) if path is not None else None

    @classmethod
    def from_file(
        cls,
        provider_id: str,
        path: Path,
        *,
        clock: Clock | None = None,
        random: Random | None = None,
    ) -> LocalKeyProvider:
        """Load ``path`` (must be absolute, a regular file, mode 0600 or stricter)."""
        if not path.is_absolute():
            raise InvalidArgument(f"keys.providers.{provider_id}", "keyring path must be absolute")
        ring = _keyring.parse_keyring(_keyring.read_private_file(path), str(path))
        return cls(
            provider_id,
            ring,
            path=path,
            source=str(path),
            clock=clock or SystemClock(),
            random=random or SystemRandom(),
        )

    @classmethod
    def from_env(
        cls,
        provider_id: str,
        variable: str,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        random: Random | None = None,
    ) -> LocalKeyProvider:
        """Load a read-only keyring from ``$variable`` (the JSON document, raw or base64)."""
        value = (os.environ if environ is None else environ).get(variable, "").strip()
        source = f"${variable}"
        if not value:
            raise KeyProviderUnavailable(f"local keyring {source}: variable is not set")
        if value.startswith("{"):
            raw = value.encode()
        else:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise KeyProviderUnavailable(
                    f"local keyring {source}: neither JSON nor base64 JSON"
                ) from None
        ring = _keyring.parse_keyring(Secret(raw), source)
        return cls(
            provider_id,
            ring,
            path=None,
            source=source,
            clock=clock or SystemClock(),
            random=random or SystemRandom(),
        )

    @property
    def provider_id(self) -> str:
        return self._id

    @property
    def kind(self) -> str:
        return KIND

    @property
    def read_only(self) -> bool:
        return self._path is None

    def wrap(self, dek: Secret, aad: bytes) -> WrappedDek:
        with self._lock:
            self._reload_if_changed()
            kek = self._ring.active
        assert kek.key is not None  # the active version always has its key (parse_keyring)
        blob = AesGcm(kek.key, self._random).encrypt(dek.reveal(), _aad(aad, kek.version))
        return WrappedDek(self._id, kek.version, blob)

    def unwrap(self, wrapped: WrappedDek, aad: bytes) -> Secret:
        if wrapped.provider_id != self._id:
            raise IntegrityCheckFailed("wrapped key belongs to another key provider")
        with self._lock:
            kek = self._ring.get(wrapped.kek_version)
            if kek is None:
                self._reload_if_changed()
                kek = self._ring.get(wrapped.kek_version)
        if kek is None:
            raise IntegrityCheckFailed("wrapped key names an unknown KEK version")
        if kek.key is None:
            raise IntegrityCheckFailed("wrapped key's KEK version is retired")
        try:
            plain = AesGcm(kek.key, self._random).decrypt(wrapped.blob, _aad(aad, kek.version))
        except IntegrityCheckFailed:
            raise IntegrityCheckFailed("wrapped key failed authentication") from None
        return Secret(plain)

    def rewrap(self, wrapped: WrappedDek, aad: bytes) -> WrappedDek:
        return self.wrap(self.unwrap(wrapped, aad), aad)

    def rotate(self) -> int:
        with self._writing() as ring:
            new = ring.rotated(_keyring.fresh_key(self._random), self._clock.now())
            self._store(new)
            return new.active.version

    def retire(self, version: int) -> None:
        with self._writing() as ring:
            kek = ring.get(version)
            if kek is None:
                raise InvalidArgument("version", "no such KEK version")
            if kek.state == KekState.ACTIVE:
                raise InvalidArgument("version", "is the active KEK version; rotate first")
            if kek.state != KekState.RETIRED:
                self._store(ring.retired(version))

    def active_version(self) -> int:
        with self._lock:
            self._reload_if_changed()
            return self._ring.active.version

    def status(self) -> ProviderStatus:
        with self._lock:
            self._reload_if_changed()
            ring = self._ring
        versions = tuple(
            KekVersionInfo(k.version, k.state, k.created) for k in reversed(ring.versions)
        )
        return ProviderStatus(self._id, KIND, ring.active.version, versions)

    def __repr__(self) -> str:
        return (
            f"LocalKeyProvider(provider_id={self._id!r}, source={self._source!r}, "
            f"versions={[k.version for k in self._ring.versions]})"
        )

    # --- internals --------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[_keyring.Keyring]:
        """Serialize writers (threads and processes) and yield the keyring as on disk now."""
        if self._path is None:
            raise OperationNotSupported(
                f"key provider {self._id!r} reads its keyring from {self._source} and is "
                "read-only: rotate by deploying a new keyring document there",
                metadata={"providerId": self._id},
            )
        path = self._path
        with self._lock, _keyring.file_lock(path):
            self._load(path)
            yield self._ring

    def _store(self, ring: _keyring.Keyring) -> None:
        assert self._path is not None
        _keyring.write_private_file(self._path, ring.dump(), overwrite=True)
        self._ring = ring
        self._identity = _keyring.file_identity(self._path)

    def _load(self, path: Path) -> None:
        identity = _keyring.file_identity(path)
        self._ring = _keyring.parse_keyring(_keyring.read_private_file(path), str(path))
        self._identity = identity

    def _reload_if_changed(self) -> None:
        if self._path is not None and _keyring.file_identity(self._path) != self._identity:
            self._load(self._path)


def _aad(aad: bytes, version: int) -> bytes:
    return aad + struct.pack(">I", version)
