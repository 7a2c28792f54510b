"""The audited peer behind a trusted proxy is the rightmost untrusted ``x-forwarded-for`` entry.

Found by the issue 19 §6 review: the leftmost entry was believed, but a proxy that appends to a
client's own ``x-forwarded-for`` leaves the leftmost entry under the client's control, so a
caller could choose the peer address its audit events carry (and dodge per-peer limits)."""

from __future__ import annotations

import ipaddress

import pytest

from vault_server.rpc.admission import Limits, peer_address

LIMITS = Limits(
    max_deadline_s=30,
    max_stream_deadline_s=60,
    trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")),
)
PROXY = "ipv4:10.1.2.3:55000"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),  # one proxy, one client
        ("6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the client's own spoofed entry is ignored
        ("6.6.6.6, 198.51.100.7, 10.9.9.9", "198.51.100.7"),  # two of our proxies
        ("not-an-ip, 198.51.100.7", "198.51.100.7"),  # junk left of the client does not matter
        ("198.51.100.7, junk", "10.1.2.3"),  # our proxy wrote junk: fall back to the proxy
        ("10.5.5.5, 10.9.9.9", "10.5.5.5"),  # every hop is ours: the farthest
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_rightmost_untrusted_entry_is_the_peer(forwarded: str, expected: str) -> None:
    assert peer_address(PROXY, {"x-forwarded-for": forwarded}, LIMITS) == expected


def test_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    peer = "ipv4:203.0.113.5:40000"
    assert peer_address(peer, {"x-forwarded-for": "198.51.100.7"}, LIMITS) == "203.0.113.5"
