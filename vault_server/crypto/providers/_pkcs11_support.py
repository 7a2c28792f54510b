"""Helpers of the pkcs11 provider: the optional python-pkcs11 import, one loaded library and one
call lock per module path and process, the PIN source, and the mapping of PKCS#11 errors to a
short, non-secret ``cause``."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Final

from vault_server.core.errors import KeyProviderUnavailable
from vault_server.core.secret import Secret

MAX_PIN_BYTES: Final = 256
_LIBS: dict[str, Any] = {}
_LOCKS: dict[str, threading.Lock] = {}
_LIBS_LOCK = threading.Lock()


def import_pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise KeyProviderUnavailable(
            "pkcs11 key providers need python-pkcs11: install pipvault[hsm] (or python-pkcs11)"
        ) from None
    return pkcs11


def call_lock(module: str) -> threading.Lock:
    """The lock that serializes calls into one PKCS#11 library in this process.

    python-pkcs11 calls ``C_Initialize(NULL)``, which tells the library that it will not be
    entered by several threads at once (SoftHSM2 then disables its own locking), so the
    provider keeps that promise; the session pool still keeps every session open and logged in.
    """
    with _LIBS_LOCK:
        return _LOCKS.setdefault(module, threading.Lock())


def load_lib(pkcs11: Any, module: str) -> Any:
    """One loaded library per path and process (PKCS#11 ``C_Initialize`` is per process)."""
    with _LIBS_LOCK:
        if module not in _LIBS:
            _LIBS[module] = pkcs11.lib(module)
        return _LIBS[module]


def read_pin(setting: str, pin_file: Path | None, pin_env: str | None) -> Secret:
    """The user PIN from a file (first line) or an environment variable."""
    if pin_file is not None:
        try:
            with pin_file.open("rb") as fh:
                raw = fh.read(MAX_PIN_BYTES + 1)
        except OSError as exc:
            raise KeyProviderUnavailable(
                f"{setting}.pin_file {pin_file}: cannot be read ({exc.strerror or 'error'})"
            ) from None
        pin = raw.split(b"\n", 1)[0].strip()
    else:
        assert pin_env is not None
        pin = os.environ.get(pin_env, "").strip().encode()
    if not pin or len(pin) > MAX_PIN_BYTES:
        where = f"{setting}.pin_file" if pin_file is not None else f"${pin_env}"
        raise KeyProviderUnavailable(f"{where}: no PKCS#11 PIN there")
    return Secret(pin)


def failure_cause(pk: Any, error: BaseException) -> str:
    errors = pk.exceptions
    table: list[tuple[Any, str]] = [
        ((errors.NoSuchKey, errors.ObjectHandleInvalid, errors.KeyHandleInvalid), "no_key"),
        ((errors.TokenNotPresent, errors.DeviceRemoved, errors.NoSuchToken), "no_token"),
        ((errors.PinIncorrect, errors.PinLocked, errors.UserNotLoggedIn), "pin_refused"),
        ((errors.SessionHandleInvalid, errors.SessionClosed), "session_lost"),
    ]
    for kind, name in table:
        if isinstance(error, kind):
            return name
    return "device_error"
