"""Scrub a credential's secret material out of what a venue sends back.

Proxy mode exists so the caller never sees the secret, yet a venue (or anything in front of it)
may echo the request - in an error body, a debug header, a reflected ``Authorization``. So
before a proxied response leaves, every form of every secret the request carried is replaced by
``[REDACTED]``: the raw value, percent-encoded (either hex case, ``+`` for spaces), JSON-escaped
(``\\/`` and all-``\\uXXXX`` forms), hex (either case) and standard or URL-safe base64 at every
byte alignment (so ``Basic base64(user:secret)`` or a secret inside a longer base64 blob is
caught too). The secrets are the request's secret header values (the full value, e.g. ``Bearer
<token>``, and the token after its scheme), given by the caller; values shorter than
``MIN_SECRET`` are too short to find without mangling ordinary text and are not searched.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MARK = b"[REDACTED]"
MIN_SECRET = 8
_MIN_B64_CORE = 12  # shorter base64 fragments would match ordinary text


def _b64_cores(raw: bytes) -> set[bytes]:
    """The base64 characters fixed by ``raw`` alone, for each alignment it can sit at."""
    out: set[bytes] = set()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + raw)
            start = -(-pad * 8 // 6)  # first character with no bit of the padding bytes
            end = (pad + len(raw)) * 8 // 6  # last character with no bit past raw
            # Also trimmed by a character or two in front and up to a group behind: a finder
            # (or an echo that was cut or re-wrapped) may hold only the middle of the blob.
            for lead in range(3):
                for cut in range(5):
                    if end - cut - start - lead >= _MIN_B64_CORE:
                        out.add(encoded[start + lead : end - cut])
            if pad == 0:
                out.add(encoded)
                out.add(encoded.rstrip(b"="))
    return out


def forms(secret: str) -> set[bytes]:
    """Every encoding of ``secret`` this module removes."""
    raw = secret.encode("utf-8")
    pct = quote(secret, safe="").encode()
    out = {
        raw,
        pct,
        re.sub(rb"%[0-9A-F]{2}", lambda m: m.group().lower(), pct),
        quote_plus(secret, safe="").encode(),
        json.dumps(secret)[1:-1].encode(),
        json.dumps(secret)[1:-1].replace("/", "\\/").encode(),
        json.dumps(secret, ensure_ascii=False)[1:-1].encode(),
        "".join(f"\\u{ord(c):04x}" for c in secret).encode(),
        "".join(f"\\u{ord(c):04X}" for c in secret).encode(),
        raw.hex().encode(),
        raw.hex().upper().encode(),
        *_b64_cores(raw),
    }
    return {f for f in out if f}


class Scrubber:
    """Finds and replaces the forms of a fixed set of secrets (one compiled pattern)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        found: set[bytes] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET:
                found |= forms(secret)
        # Longest first, so a full ``Bearer <token>`` wins over the token inside it.
        ordered = sorted(found, key=lambda f: (-len(f), f))
        self._pattern = re.compile(b"|".join(re.escape(f) for f in ordered)) if ordered else None
        self.longest = max((len(f) for f in ordered), default=0)

    def __repr__(self) -> str:
        return "Scrubber(***)"

    def __bool__(self) -> bool:
        return self._pattern is not None

    def scrub(self, data: bytes) -> tuple[bytes, bool]:
        """``data`` with every form replaced, and whether anything was."""
        if self._pattern is None or not data:
            return data, False
        out, count = self._pattern.subn(MARK, data)
        return out, count > 0

    def scrub_text(self, text: str) -> tuple[str, bool]:
        """The same on a header name or value."""
        data, hit = self.scrub(text.encode("utf-8", errors="surrogateescape"))
        return (data.decode("utf-8", errors="surrogateescape") if hit else text), hit
