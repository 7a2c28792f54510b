"""The local keyring document and the private-file I/O around it.

Document (JSON, UTF-8)::

    {"format": "pipvault-keyring-v1",
     "versions": [{"version": 1, "state": "decrypt_only", "created": "2025-01-02T03:04:05Z",
                   "key": "<base64 of 32 random bytes>"},
                  {"version": 2, "state": "active", ...}]}

Exactly one version is active and it is the newest; retired versions keep their number and
creation time but their key is erased (``"key": null``). Parse errors name the source (a path or
an environment variable) and the problem, never a key.

Files are private: created 0600 through a temporary file in the same directory (fsync, atomic
rename, directory fsync), and a file readable or writable by group or others is refused.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from vault_server.core.clock import Clock, Random
from vault_server.core.errors import AlreadyExists, KeyProviderUnavailable
from vault_server.core.secret import Secret
from vault_server.crypto.providers.base import KekState

FORMAT: Final = "pipvault-keyring-v1"
KEY_SIZE: Final = 32
MAX_FILE_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class Kek:
    version: int
    state: KekState
    created: dt.datetime
    key: Secret | None  # None once retired


@dataclass(frozen=True)
class Keyring:
    """An immutable snapshot; changes return a new ``Keyring``."""

    versions: tuple[Kek, ...]  # ascending by version

    @property
    def active(self) -> Kek:
        return self.versions[-1]

    def get(self, version: int) -> Kek | None:
        return next((k for k in self.versions if k.version == version), None)

    def rotated(self, key: Secret, created: dt.datetime) -> Keyring:
        demoted = replace(self.active, state=KekState.DECRYPT_ONLY)
        fresh = Kek(self.active.version + 1, KekState.ACTIVE, created, key)
        return Keyring((*self.versions[:-1], demoted, fresh))

    def retired(self, version: int) -> Keyring:
        return Keyring(
            tuple(
                replace(k, state=KekState.RETIRED, key=None) if k.version == version else k
                for k in self.versions
            )
        )

    def dump(self) -> Secret:
        doc = {
            "format": FORMAT,
            "versions": [
                {
                    "version": k.version,
                    "state": k.state.value,
                    "created": k.created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                    "key": None if k.key is None else base64.b64encode(k.key.reveal()).decode(),
                }
                for k in self.versions
            ],
        }
        return Secret(json.dumps(doc, indent=2).encode() + b"\n")


def new_keyring(clock: Clock, random: Random) -> Keyring:
    """A keyring with one fresh active version."""
    return Keyring((Kek(1, KekState.ACTIVE, clock.now(), fresh_key(random)),))


def fresh_key(random: Random) -> Secret:
    """32 random bytes for a new KEK version."""
    raw = random.bytes(KEY_SIZE)
    if len(raw) != KEY_SIZE:
        raise KeyProviderUnavailable("random source returned a short key")
    return Secret(raw)


def parse_keyring(data: Secret, source: str) -> Keyring:
    """Validate a keyring document; ``source`` names where it came from (for errors)."""

    def bad(problem: str) -> KeyProviderUnavailable:
        return KeyProviderUnavailable(f"local keyring {source}: {problem}")

    try:
        doc: Any = json.loads(data.reveal())
    except (UnicodeDecodeError, ValueError):
        raise bad("is not a JSON keyring document") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad(f"format must be {FORMAT!r}")
    entries = doc.get("versions")
    if not isinstance(entries, list) or not entries:
        raise bad("versions must be a non-empty list")
    keks = sorted((_parse_kek(e, bad) for e in entries), key=lambda k: k.version)
    numbers = [k.version for k in keks]
    if len(set(numbers)) != len(numbers):
        raise bad("versions must be unique")
    if [k.state for k in keks].count(KekState.ACTIVE) != 1 or keks[-1].state != KekState.ACTIVE:
        raise bad("exactly one version, the newest, must be active")
    return Keyring(tuple(keks))


def _parse_kek(entry: Any, bad: Callable[[str], KeyProviderUnavailable]) -> Kek:
    if not isinstance(entry, dict):
        raise bad("each version must be an object")
    version = entry.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 1 << 32:
        raise bad("version numbers must be integers in 1..2^32-1")
    try:
        state = KekState(str(entry.get("state")))
        created = dt.datetime.fromisoformat(str(entry.get("created")).replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"version {version}: bad state or created time") from None
    if created.tzinfo is None:
        raise bad(f"version {version}: created time needs a UTC offset")
    raw_key = entry.get("key")
    if state == KekState.RETIRED:
        if raw_key is not None:
            raise bad(f"version {version}: a retired version must not keep its key")
        return Kek(version, state, created, None)
    try:
        key = base64.b64decode(str(raw_key), validate=True) if isinstance(raw_key, str) else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        raise bad(f"version {version}: key must be base64 of {KEY_SIZE} bytes")
    return Kek(version, state, created, Secret(key))


# --- private files --------------------------------------------------------------------------------
def read_private_file(path: Path) -> Secret:
    """Read a keyring file, refusing anything but a regular file private to its owner."""
    try:
        # O_NONBLOCK: a FIFO planted at the path must not hang the server at start.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise KeyProviderUnavailable(
            f"local keyring {path}: cannot be opened ({exc.strerror or 'error'})"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyProviderUnavailable(f"local keyring {path}: is not a regular file")
        if info.st_mode & 0o077:
            raise KeyProviderUnavailable(
                f"local keyring {path}: mode {stat.S_IMODE(info.st_mode):04o} lets group or "
                "others in; chmod 600 it"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyProviderUnavailable(
            f"local keyring {path}: cannot be read ({exc.strerror or 'error'})"
        ) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise KeyProviderUnavailable(f"local keyring {path}: larger than {MAX_FILE_BYTES} bytes")
    return Secret(data)


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size): changes when another process replaces the file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def write_private_file(path: Path, data: Secret, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` as 0600, atomically.

    Args:
        overwrite: replace an existing file (rotation); if False an existing file is refused
            (``AlreadyExists``) without ever being touched (hard-link, not rename).
    """
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise KeyProviderUnavailable(
            f"local keyring {path}: cannot write ({exc.strerror or 'error'})"
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data.reveal())
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise AlreadyExists(str(path)) from None
        _fsync_dir(directory)
    except OSError as exc:
        raise KeyProviderUnavailable(
            f"local keyring {path}: cannot write ({exc.strerror or 'error'})"
        ) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``<path>.lock`` (0600), serializing writers across processes."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KeyProviderUnavailable(
            f"local keyring {path}: cannot lock ({exc.strerror or 'error'})"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
