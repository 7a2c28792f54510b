"""The server key and the keys derived from it, and how key files are written (0600)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from vault_server.config import ConfigError, Settings

SERVER_KEY_ENV = "PIPVAULT_SERVER_KEY"


def derive_key(server_key: bytes, purpose: str) -> bytes:
    """HKDF-style single-block expansion: one independent 32-byte key per purpose."""
    prk = hmac.new(b"pipvault-v1", server_key, hashlib.sha256).digest()
    return hmac.new(prk, purpose.encode() + b"\x01", hashlib.sha256).digest()


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def load_server_key(settings: Settings) -> bytes:
    path = settings.server_key_file
    if path is None and settings.mode == "dev":
        path = settings.home / "server.key"
        if not path.exists():
            write_private_file(path, base64.b64encode(secrets.token_bytes(32)))
    raw: bytes | None = None
    if path is not None:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"server_key_file: {path} must not be readable by group or others")
        raw = path.read_bytes().strip()
    elif os.environ.get(SERVER_KEY_ENV):
        raw = os.environ[SERVER_KEY_ENV].encode()
    if raw is None:
        raise ConfigError(f"server_key_file: required in production mode (or ${SERVER_KEY_ENV})")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("server_key_file: must hold base64") from exc
    if len(key) < 32:
        raise ConfigError("server_key_file: must hold at least 32 random bytes")
    return key
