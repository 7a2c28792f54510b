"""What a prepared request reveals: the secret values its headers carry.

Venue modules wrap every header value that carries secret material in ``RedactedHeader`` (the
OANDA bearer token, the Alpaca key id and secret key, the Coinbase JWT, the OKX passphrase).
Proxy mode scrubs these values - and the token after a ``<scheme> `` prefix - from the venue's
answer, so a venue that echoes the request cannot hand the secret to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

from vault_server.brokers._http_common import RedactedHeader


def secret_values(headers: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Every ``RedactedHeader`` value, and for a ``<scheme> <token>`` value the token too."""
    out: list[str] = []
    for _, value in headers:
        if isinstance(value, RedactedHeader):
            out.append(str(value))
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha():
                out.append(token)
    return tuple(out)
