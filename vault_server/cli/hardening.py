"""Process hygiene for the long-running commands (``serve``, ``dev``), applied before anything
is read or written.

- **No core dumps**: ``RLIMIT_CORE`` 0 (soft and hard) and, on Linux, ``PR_SET_DUMPABLE`` 0, so
  a crash writes no memory image and other processes of the same user cannot ptrace the vault
  or read its ``/proc/<pid>/{environ,mem,maps}`` (those files become root-owned).
- **umask 077**: every file the server creates (SQLite database and WAL, keyring, keys,
  checkpoints, dev tokens and policy) is owner-only; the data socket's mode is set explicitly
  afterwards (``listen.socket_mode``, 0660 for the pod's shared group).
- **No secret in the environment block**: ``/proc/<pid>/environ`` shows the block the process was
  started with, which ``os.environ`` cannot change. So when a secret arrives by environment
  (``$PIPVAULT_SERVER_KEY``, the pager keys, the transit token, ``local+env://`` keyrings, a
  ``$PIPVAULT_DATABASE_URL`` with a password), the process re-executes itself (same pid) with
  those variables removed and hands their values over through an anonymous memory file
  (``memfd``, Linux). After start-up they are removed from ``os.environ`` too. Secrets never
  travel in argv (no flag takes one). Elsewhere (not Linux) the re-exec is skipped.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import resource
import sys
from collections.abc import Iterable

from vault_server.config import Settings

HANDOFF_ENV = "PIPVAULT_SECRETS_FD"
UMASK = 0o077
_PR_SET_DUMPABLE, _PR_GET_DUMPABLE = 4, 3
_MAX_HANDOFF = 1 << 20
_state = {"handed_over": False}  # this process image was started by reexec_without


def harden_process() -> dict[str, str]:
    """Disable core dumps, make the process non-dumpable and set the umask; returns what was set
    (for the start-up log line)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(UMASK)
    dumpable = "unsupported"
    libc = _libc()
    if libc is not None:
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        dumpable = str(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0))
    core = resource.getrlimit(resource.RLIMIT_CORE)
    return {"core_limit": f"{core[0]}/{core[1]}", "dumpable": dumpable, "umask": f"{UMASK:04o}"}


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def secret_env_names(settings: Settings) -> list[str]:
    """Every environment variable this configuration may read a secret from."""
    from vault_server.app import SERVER_KEY_ENV

    names = [
        SERVER_KEY_ENV,
        settings.paging.routing_key_env,
        settings.paging.webhook_signing_key_env,
        settings.keys.transit_token_env,
        "PIPVAULT_DATABASE_URL",
    ]
    for uri in settings.keys.providers.values():
        if uri.startswith("local+env://"):
            names.append(uri.removeprefix("local+env://"))
    return sorted(set(names))


def restore_handed_over() -> None:
    """In the re-executed process: read the secrets handed over and put them in ``os.environ``
    (heap only: they are not in this process's environment block)."""
    fd_text = os.environ.pop(HANDOFF_ENV, "")
    if not fd_text:
        return
    _state["handed_over"] = True  # never re-execute again, whatever happens below
    fd = int(fd_text)
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            values = json.loads(fh.read(_MAX_HANDOFF).decode())
    except (OSError, ValueError):
        return
    for name, value in values.items():
        os.environ[str(name)] = str(value)


def reexec_without(names: Iterable[str]) -> None:
    """Re-execute this command without the secret variables in its environment block (they go
    through a memfd instead). Returns only when there is nothing to do or no way to do it."""
    present = {n: os.environ[n] for n in names if os.environ.get(n)}
    if (
        not present
        or _state["handed_over"]
        or not hasattr(os, "memfd_create")
        or not sys.platform.startswith("linux")
    ):
        return
    fd = os.memfd_create("pipvault-handoff", 0)
    try:
        os.set_inheritable(fd, True)  # the new image reads it, then closes it
        os.write(fd, json.dumps(present).encode())
        os.lseek(fd, 0, os.SEEK_SET)
        env = {k: v for k, v in os.environ.items() if k not in present}
        env[HANDOFF_ENV] = str(fd)
        argv = [sys.executable, "-m", "vault_server.cli.main", *sys.argv[1:]]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)  # noqa: S606 - re-run ourselves, no shell involved
    except OSError:
        with contextlib.suppress(OSError):
            os.close(fd)


def scrub_environ(names: Iterable[str]) -> None:
    """Drop the secret variables from ``os.environ`` once everything that needs them is built."""
    for name in names:
        os.environ.pop(name, None)
