"""The current access policy, reloadable without a restart, shared by every identity source.

Every identity source (static tokens, mTLS SPIFFE, JWT) asks the one ``PolicyStore`` for the
current ``Policy`` on each call, so a reload applies to all of them at once: a principal added to
the file can call with any of its identities, and a removed one stops working everywhere.

A reload that fails (unreadable file, invalid YAML, a policy ``parse_policy`` refuses, or a policy
with no principals at all, the usual sign of a half-written file) keeps the previous policy and
reports why. Write the policy file by rename (``mv policy.new policy.yaml``, as Kubernetes
ConfigMap mounts do) so that a reader never sees a half-written file.

``FileWatch`` (change detection by mtime, size and content hash) is shared with the TLS and JWKS
loaders.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Protocol

import yaml

from vault_server.auth.policy import Policy, PolicyError, parse_policy
from vault_server.observability.logging import get_logger

_log = get_logger("pipvault.auth.policy")
MAX_FILE_BYTES = 4 * 1024 * 1024
_RACY_NS = 2_000_000_000  # mtimes this close to our last read may hide a same-size rewrite


class PolicyProvider(Protocol):
    """What identity sources need: the policy in force right now."""

    def current(self) -> Policy: ...


class FileWatch:
    """Notices when a file's content changes.

    ``poll()`` stats the file; an unchanged (mtime, size, inode) whose mtime is safely older than
    our last read is taken as unchanged without reading. Otherwise the file is read and its
    SHA-256 compared with the last content seen, so a ``touch`` is not a change, and a same-size
    rewrite within the file system's timestamp granularity is still noticed.
    """

    def __init__(self, path: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.path = path
        self._max = max_bytes
        self._sig: tuple[int, int, int, int] | None = None
        self._read_at_ns = 0
        self._digest = b""
        self.data = b""

    def poll(self) -> bool:
        """True when the content differs from the last poll (always True on the first).

        Raises:
            OSError: the file cannot be read, or is larger than the limit (``EFBIG``).
        """
        st = os.stat(self.path)
        sig = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
        if sig == self._sig and st.st_mtime_ns < self._read_at_ns - _RACY_NS:
            return False
        read_at = time.time_ns()
        with open(self.path, "rb") as fh:
            data = fh.read(self._max + 1)
        if len(data) > self._max:
            raise OSError(errno.EFBIG, f"larger than {self._max} bytes", str(self.path))
        self._sig, self._read_at_ns = sig, read_at
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return False
        self._digest, self.data = digest, data
        return True


def parse_policy_bytes(data: bytes) -> Policy:
    """Parse YAML policy text.

    Raises:
        PolicyError: not YAML, invalid, or without a single principal.
    """
    try:
        loaded = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise PolicyError(f"invalid policy: not YAML ({exc.__class__.__name__})") from exc
    policy = parse_policy(loaded)
    if not policy.entries:
        raise PolicyError("invalid policy: no principals (a half-written file?)")
    return policy


class PolicyStore:
    """Holds the policy in force; ``reload_if_changed()`` swaps in a new valid one atomically.

    ``PolicyStore(policy)`` holds a fixed policy (tests, dev); ``PolicyStore.load(path)`` one
    that follows its file.
    """

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._path: Path | None = None
        self._watch: FileWatch | None = None
        self._lock = threading.Lock()
        self._last_error: str | None = None
        self.generation = 0

    @classmethod
    def load(cls, path: Path) -> PolicyStore:
        """Read and validate ``path`` (start-up); later ``reload_if_changed()`` re-reads it.

        Raises:
            PolicyError: unreadable or invalid; the message names the problem.
        """
        watch = FileWatch(path)
        try:
            watch.poll()
        except OSError as exc:
            raise PolicyError(_describe(path, exc)) from exc
        store = cls(parse_policy_bytes(watch.data))
        store._path, store._watch = path, watch
        return store

    def current(self) -> Policy:
        return self._policy

    def reload_if_changed(self) -> str | None:
        """Re-read the file if it changed.

        Returns None when nothing changed or the new policy is now in force; otherwise why the
        change was refused (the old policy stays). Invalid content is reported once per change;
        an unreadable file on every call, but logged only when the error changes.
        """
        if self._watch is None:
            return None
        with self._lock:
            try:
                if not self._watch.poll():
                    return None
                policy = parse_policy_bytes(self._watch.data)
            except (OSError, PolicyError) as exc:
                error = _describe(self._path, exc)
                if error != self._last_error:
                    _log.warning("policy.reload_refused", path=str(self._path), error=error)
                    self._last_error = error
                return error
            self._policy = policy
            self._last_error = None
            self.generation += 1
        _log.info(
            "policy.reloaded",
            path=str(self._path),
            principals=len(policy.entries),
            generation=self.generation,
        )
        return None


def _describe(path: Path | None, exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"policy file {path}: {exc.strerror or exc}"
    return f"policy file {path}: {exc}"
