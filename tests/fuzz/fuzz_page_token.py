"""Atheris target: the page-token decoder (``vault_server.domain._pagination.PageTokens``).

Arbitrary text as a token only ever yields ``InvalidPageToken`` (or the first page for an empty
token); a genuine token with any byte changed is refused, never resumed at another key.
"""

from __future__ import annotations

import base64
import sys

import atheris

with atheris.instrument_imports():
    from vault_server.core.errors import InvalidPageToken
    from vault_server.domain._pagination import PageTokens

TOKENS = PageTokens(b"k" * 32)
PARAMS = {"parent": "workspaces/ws-a", "filter": "x"}
GENUINE = TOKENS.issue(["ws-a", 42], PARAMS)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:  # arbitrary text
        token = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    elif mode == 1:  # arbitrary bytes, well-formed base64
        token = base64.urlsafe_b64encode(fdp.ConsumeBytes(fdp.remaining_bytes())).decode()
    else:  # a genuine token with bytes flipped
        raw = bytearray(base64.urlsafe_b64decode(GENUINE + "=" * (-len(GENUINE) % 4)))
        flips = fdp.ConsumeIntInRange(1, 4)
        for _ in range(flips):
            pos = fdp.ConsumeIntInRange(0, len(raw) - 1)
            raw[pos] ^= fdp.ConsumeIntInRange(1, 255)
        token = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    try:
        key = TOKENS.resume(token, PARAMS)
    except InvalidPageToken:
        return
    if token and key != ["ws-a", 42]:
        raise AssertionError(f"a forged token resumed at {key!r}")
    if token and token.rstrip("=") != GENUINE:
        # base64 decoding ignores nothing here: only the genuine token may be accepted.
        raise AssertionError("a token other than the genuine one was accepted")


if __name__ == "__main__":
    if "--seeds" in sys.argv:
        one_input(b"\x00abc")
        one_input(b"\x02\x01\x05\x07")
        sys.exit(0)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
