"""Regression (issue 19 §6.5): ``signing.venue_base_urls`` accepted any value
(``http://evil.example.com``, ``not a url``), so OANDA and Alpaca bearer tokens and every signed
request could leave over plaintext HTTP. Each URL must now be ``https://``, or ``http://`` on
loopback only (the stubs tests use), like every other outbound endpoint; start-up stops with a
config error naming the setting and the venue, never echoing the URL."""

from __future__ import annotations

import pytest

from vault_server.config import ConfigError, load_settings


def _load(venue: str, url: str) -> dict[str, str]:
    settings = load_settings(None, mode="dev", signing={"venue_base_urls": {venue: url}})
    return dict(settings.signing.venue_base_urls)


@pytest.mark.parametrize(
    "url",
    ["http://evil.example.com", "not a url", "http://10.0.0.1:8080", "http://127.0.0.1.evil.com",
     "ftp://api.oanda.com", "//api.oanda.com", "https://", "https://api.oanda.com?x=1",
     "https://user:pw@api.oanda.com", "http://0.0.0.0:80", ""],
)  # fmt: skip
@pytest.mark.parametrize("venue", ["oanda", "alpaca", "binance_spot"])
def test_a_plaintext_or_malformed_venue_url_stops_start_up(venue: str, url: str) -> None:
    with pytest.raises(ConfigError, match=rf"signing\.venue_base_urls: .*{venue}: ") as refused:
        _load(venue, url)
    if url:
        assert url not in str(refused.value)  # (a URL may carry a user and password)


@pytest.mark.parametrize(
    "url",
    ["https://api-fxpractice.oanda.com", "https://demo-api.ig.com/gateway/deal",
     "http://127.0.0.1:9", "http://127.8.9.10:1234", "http://[::1]:8080", "http://localhost:80"],
)  # fmt: skip
def test_https_and_loopback_urls_are_accepted(url: str) -> None:
    assert _load("oanda", url) == {"oanda": url}
