"""The proxy scrubber (egress/redaction.py) and the relay cap (egress/relay.py), on their own."""

from __future__ import annotations

import base64
import json
import re
import secrets
from urllib.parse import quote

import pytest

from tests.support.canary import find, forms, new_canary
from vault_server.egress.redaction import MARK, Scrubber
from vault_server.egress.relay import Capped, relay


def _secret() -> str:
    # Characters that encode differently in every scheme: / + = space-free, as header secrets are.
    return f"{secrets.token_urlsafe(24)}/+={secrets.token_hex(4)}"


def test_every_canary_form_is_scrubbed_anywhere_in_a_body() -> None:
    canary = new_canary()
    scrubber = Scrubber([canary])
    for form in forms(canary):
        out, hit = scrubber.scrub(b'{"x":"<' + form + b'>"}')
        assert hit and find(canary, out) == [] and MARK in out, form


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: quote(s, safe=""),
        lambda s: re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(s, safe="")),
        lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
        lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
        lambda s: base64.b64encode(f"user:{s}".encode()).decode(),
        lambda s: base64.urlsafe_b64encode(f"ab{s}tail".encode()).decode(),
        lambda s: s.encode().hex().upper(),
    ],
    ids=["raw", "pct", "pct-lower", "json-slash", "json-u", "basic", "b64url-mid", "hex"],
)
def test_encodings_of_a_secret_are_scrubbed(encode: object) -> None:
    secret = _secret()
    text = encode(secret)  # type: ignore[operator]
    out, hit = Scrubber([secret]).scrub(f"before {text} after".encode())
    assert hit and out.startswith(b"before ") and out.endswith(b" after"), out
    assert text.encode() not in out and secret.encode() not in out


def test_short_values_and_clean_bodies_are_left_alone() -> None:
    scrubber = Scrubber(["abc"])
    assert not scrubber and scrubber.scrub(b"abc abc") == (b"abc abc", False)
    body = json.dumps({"order": {"id": "6372", "units": "100"}}).encode()
    assert Scrubber([_secret()]).scrub(body) == (body, False)


def test_a_secret_straddling_the_cap_is_scrubbed_before_the_cut() -> None:
    secret = _secret()
    scrubber = Scrubber([secret])
    cap = 64
    data = b"x" * (cap - 10) + secret.encode() + b"y" * (scrubber.longest + 100)
    body = Capped(cap, scrubber.longest)
    assert body.add(data) is False  # past cap + slack: stop reading
    out = relay(200, [("X-Echo", secret), ("Content-Length", "999")], body, scrubber)
    assert out.body_truncated and out.redacted and len(out.body) == cap
    assert secret[:8].encode() not in out.body and out.body.endswith(MARK[:10])
    assert out.headers == (("X-Echo", MARK.decode()),)  # wire-length header dropped


def test_a_body_under_the_cap_is_whole_and_not_flagged() -> None:
    body = Capped(64, 0)
    assert body.add(b"a" * 64)
    out = relay(201, [], body, Scrubber([]))
    assert (out.body, out.body_truncated, out.redacted) == (b"a" * 64, False, False)
