"""Canary secrets and every encoding they could leak in."""

from __future__ import annotations

import base64
import uuid


def new_canary() -> str:
    return f"CANARY-{uuid.uuid4().hex}"


def forms(canary: str) -> list[bytes]:
    """Raw, hex (both cases) and base64/urlsafe-base64 at every byte alignment."""
    raw = canary.encode()
    out = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for pad in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = enc(b"\x00" * pad + raw)
            # Drop the characters that mix padding bytes or the tail in: the core is stable.
            start = (pad * 4 + 2) // 3 + (1 if pad else 0)
            core = encoded[start : len(encoded) - 4]
            if len(core) >= 16:
                out.append(core)
    return out


def find(canary: str, blob: bytes) -> list[str]:
    """The encodings of ``canary`` present in ``blob`` (empty when clean)."""
    return [f.decode(errors="replace")[:24] for f in forms(canary) if f in blob]
