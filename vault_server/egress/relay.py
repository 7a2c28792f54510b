"""What a venue's answer becomes before it leaves the vault: capped, scrubbed, trimmed headers.

The body is read as a stream and reading stops just past the relay cap, so a huge answer costs
the cap (plus one network chunk), never its own size. It is read ``slack`` bytes past the cap -
the longest secret form - so a secret that starts before the cut is scrubbed whole before the
body is cut, and no prefix of it survives at the end of a truncated body.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from vault_server.egress.redaction import Scrubber

# Response headers never relayed: hop-by-hop, cookies, and the ones describing the wire body
# (the relayed body is decoded, maybe scrubbed or cut, so its length and coding differ).
DROP = frozenset(
    {
        "set-cookie", "connection", "keep-alive", "transfer-encoding", "upgrade",
        "proxy-authenticate", "content-length", "content-encoding",
    }
)  # fmt: skip


@dataclass(frozen=True)
class VenueResponse:
    """A venue's answer as relayed.

    Attributes:
        redacted: secret material was found in the headers or body and replaced.
        body_truncated: the venue sent more than the cap; ``body`` is its first ``cap`` bytes.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    redacted: bool = False
    body_truncated: bool = False


class Capped:
    """Collects a body up to ``cap + slack`` bytes and says whether more was sent."""

    def __init__(self, cap: int, slack: int) -> None:
        self.cap = cap
        self._limit = cap + slack
        self._buf = bytearray()
        self.more = False

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; False once the limit is passed (stop reading)."""
        room = self._limit - len(self._buf)
        if len(chunk) > room:
            self._buf += chunk[:room]
            self.more = True
            return False
        self._buf += chunk
        return True

    def raw(self) -> bytes:
        return bytes(self._buf)


def read_sync(chunks: Iterator[bytes], body: Capped, deadline: float) -> bool:
    """Fill ``body`` from a blocking stream; False if ``deadline`` (monotonic) passed first."""
    for chunk in chunks:
        if not body.add(chunk):
            break
        if time.monotonic() > deadline:
            return False
    return True


async def read_async(chunks: AsyncIterator[bytes], body: Capped) -> None:
    """Fill ``body`` from a stream (the caller bounds the whole exchange in time)."""
    async for chunk in chunks:
        if not body.add(chunk):
            break


def relay(
    status: int, headers: Iterable[tuple[str, str]], body: Capped, scrubber: Scrubber
) -> VenueResponse:
    """Scrub headers and body, then cut the body to the cap."""
    redacted = False
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() in DROP:
            continue
        clean_name, hit_name = scrubber.scrub_text(name)
        clean_value, hit_value = scrubber.scrub_text(value)
        redacted = redacted or hit_name or hit_value
        kept.append((clean_name, clean_value))
    raw = body.raw()
    data, hit = scrubber.scrub(raw)
    truncated = body.more or len(raw) > body.cap or len(data) > body.cap
    return VenueResponse(status, tuple(kept), data[: body.cap], redacted or hit, truncated)


def scrubbed(response: VenueResponse, secrets: Iterable[str]) -> VenueResponse:
    """An answer that did not come through ``relay`` (a persistent transport's), scrubbed of
    ``secrets`` the same way."""
    scrubber = Scrubber(secrets)
    body = Capped(len(response.body), 0)
    body.add(response.body)
    done = relay(response.status, response.headers, body, scrubber)
    return VenueResponse(
        done.status, done.headers, done.body, done.redacted or response.redacted,
        response.body_truncated,
    )  # fmt: skip
