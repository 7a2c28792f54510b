"""Opaque, tamper-proof page tokens (AIP-158).

A token is AES-256-GCM sealed JSON holding the last key returned and a digest of the request
parameters it belongs to; a token from other parameters, another caller scope or forged bytes
is ``INVALID_PAGE_TOKEN``. The key is derived from the server key so replicas share tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault_server.core.errors import InvalidArgument, InvalidPageToken


class PageTokens:
    def __init__(self, key: bytes, *, default_size: int = 50, max_size: int = 1000) -> None:
        self._aead = AESGCM(hashlib.sha256(b"pipvault-page-token-v1" + key).digest())
        self.default_size = default_size
        self.max_size = max_size

    def page_size(self, requested: int) -> int:
        if requested < 0:
            raise InvalidArgument("page_size", "must not be negative")
        if requested == 0:
            return self.default_size
        return min(requested, self.max_size)

    def issue(self, last_key: Any, params: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        doc = json.dumps({"k": last_key, "p": _digest(params)}, separators=(",", ":"))
        sealed = self._aead.encrypt(nonce, doc.encode(), b"page-token")
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def resume(self, token: str, params: dict[str, Any]) -> Any:
        """The last key of the previous page, or None for the first page."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if len(raw) < 12 + 16 or len(raw) > 4096:
                raise ValueError("length")
            doc = json.loads(self._aead.decrypt(raw[:12], raw[12:], b"page-token"))
        except (InvalidTag, ValueError, binascii.Error, json.JSONDecodeError) as exc:
            raise InvalidPageToken("page_token is not valid for this request") from exc
        if doc.get("p") != _digest(params):
            raise InvalidPageToken("page_token was issued for different request parameters")
        return doc.get("k")


def _digest(params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
