"""Regression (issue 19 section 7.1): a venue that echoes the credential handed it to the router.

Proxy mode exists so the caller never sees the secret, yet when a venue echoed the request's
``Authorization`` / ``APCA-API-SECRET-KEY`` (and key id) in a response header or its body,
``ExecuteOrder`` relayed it as it was. Now every form of the request's secret material - raw, the
full header value, percent-encoded, base64 (also as ``Basic user:secret``), hex, JSON ``\\u``
escapes, inside a nested JSON string - is replaced by ``[REDACTED]`` in headers and body, the
response says ``redacted: true``, and a ``credential.use_result`` event referring to the use says
the response was scrubbed. Checked on every proxy venue (OANDA, Alpaca, Coinbase strict), with
run-time canary secrets; a venue that does not echo gets its answer unchanged (``redacted``
false, no extra event).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.signing_flow import VenueKey, Wired


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home", coinbase_strict=True) as w:
        yield w


def _strings(node: Any) -> Iterator[str]:
    """Every string in a decoded JSON document (JSON escapes undone)."""
    if isinstance(node, str):
        yield node
        try:
            inner = json.loads(node)  # a JSON document inside a string
        except ValueError:
            return
        yield from _strings(inner)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _leaks(secret: str, response: sf.spb.ExecuteOrderResponse) -> list[str]:
    decoded = "\n".join(_strings(json.loads(response.body))).encode()
    return find(secret, response.SerializeToString()) + find(secret, decoded)


def _oanda() -> tuple[VenueKey, tuple[str, ...], list[str]]:
    key = sf.oanda(new_canary())
    return key, ("authorization",), [key.secret_text, f"Bearer {key.secret_text}"]


def _alpaca() -> tuple[VenueKey, tuple[str, ...], list[str]]:
    key = sf.alpaca(new_canary())
    echoed = ("apca-api-key-id", "apca-api-secret-key")
    return key, echoed, [key.secret_text, key.api_key]


VENUES: dict[str, Callable[[], tuple[VenueKey, tuple[str, ...], list[str]]]] = {
    "oanda": _oanda,
    "alpaca": _alpaca,
}


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_an_echoed_credential_is_scrubbed_flagged_and_audited(wired: Wired, venue: str) -> None:
    key, echoed, secrets = VENUES[venue]()
    cred = wired.onboard(key, "px")
    rc = sf.begin(wired.vault, cred.name).name
    stub = wired.venues.stub_for(key)

    plain = sf.execute(wired.vault, rc, sf.place_for(key))  # an honest venue first
    assert 200 <= plain.http_status < 300 and not plain.redacted and not plain.body_truncated
    assert [h.name for h in plain.headers if h.name.lower().startswith("x-echo")] == []

    stub.echo_headers = echoed
    mark = sf.last_audit_id(wired.vault)
    done = sf.execute(wired.vault, rc, sf.place_for(key))
    assert 200 <= done.http_status < 300, done.body
    # The stub really echoed every form (its record of what it answered holds them).
    echo = json.loads(done.body)["echo"]
    assert sorted(echo) == sorted(echoed)
    assert {h.name.lower() for h in done.headers} >= {f"x-echo-{n}" for n in echoed}
    for secret in secrets:
        assert _leaks(secret, done) == [], f"the response leaked {venue}'s credential"
    assert all("[REDACTED]" in form for forms in echo.values() for form in forms.values())
    assert done.redacted and not done.body_truncated
    # The rest of the venue's answer is intact.
    assert json.loads(done.body).keys() - {"echo"}
    use, result = sf.audit_rows(wired.vault, after=mark)
    assert use.key() == ("credential.use", "success", "")
    assert result.key() == ("credential.use_result", "success", "")
    assert result.details["useEvent"] == done.audit_event
    assert (result.details["responseRedacted"], result.details["bodyTruncated"]) == (
        "true",
        "false",
    )
    audit = "\n".join(r.raw for r in sf.audit_rows(wired.vault)).encode()
    assert all(find(secret, audit) == [] for secret in secrets)


def test_coinbase_strict_scrubs_an_echoed_bearer_jwt(wired: Wired) -> None:
    """The JWT is short-lived, but it is a bearer credential the caller never gets."""
    key = sf.coinbase()
    cred = wired.onboard(key, "cb")
    rc = sf.begin(wired.vault, cred.name).name
    wired.venues.coinbase.echo_headers = ("authorization",)
    done = sf.execute(wired.vault, rc, sf.place_for(key))
    assert done.http_status == 200, done.body
    [sent] = [r for r in wired.venues.coinbase.requests if r.method == "POST"]
    jwt = sent.headers["authorization"].removeprefix("Bearer ")
    assert jwt.count(".") == 2
    assert _leaks(jwt, done) == [] and done.redacted
    assert json.loads(done.body)["success"] is True
