"""Venue (broker) names: one canonical spelling, the server's (``binance_spot``, as in the
config's ``signing.venue_base_urls`` and the server's ``Venue`` values), and the aliases every
surface accepts (the server's config parser, vaultctl and this client):

- any case, ``-`` or ``_`` (``binance-spot``, ``Binance_Spot``),
- the proto enum name, with or without its prefix (``BROKER_BINANCE_SPOT``),
- the short forms in :data:`VENUE_ALIASES` (``binance``, ``kraken``, ``coinbase``, ``gateio``,
  ``krakenfutures``, ``matchtrader``, ``metatrader``).

The server keeps an equal table (``vault_server.brokers.base``; it may not import this
distribution); a test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import cast

from pipsync.vault.v1 import trading_pb2

__all__ = ["VENUES", "VENUE_ALIASES", "broker_value", "canonical_venue"]

_PREFIX = "broker_"

VENUES: tuple[str, ...] = tuple(
    v.name.lower().removeprefix(_PREFIX) for v in trading_pb2.Broker.DESCRIPTOR.values if v.number
)
"""Every canonical venue name, in the API's order."""

VENUE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "binance": "binance_spot",
        "kraken": "kraken_spot",
        "coinbase": "coinbase_advanced",
        "gateio": "gate",
        "gate_io": "gate",
        "krakenfutures": "kraken_futures",
        "matchtrader": "match_trader",
        "metatrader": "metaapi",
    }
)
"""Short forms people type -> the canonical name."""


def canonical_venue(value: str | int) -> str:
    """``binance-spot``, ``BROKER_BINANCE_SPOT``, ``binance``, ``trading_pb2.BROKER_BINANCE_SPOT``
    -> ``binance_spot``. Raises ``ValueError`` naming the known venues for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        found = trading_pb2.Broker.DESCRIPTOR.values_by_number.get(value)
        if found is not None and value:
            return found.name.lower().removeprefix(_PREFIX)
    elif isinstance(value, str) and value.isascii():
        key = value.strip().lower().replace("-", "_").removeprefix(_PREFIX)
        key = VENUE_ALIASES.get(key, key)
        if key in VENUES:
            return key
    raise ValueError(f"unknown venue {value!r} (known: {', '.join(VENUES)})")


def broker_value(value: str | int) -> trading_pb2.Broker:
    """The ``Broker`` enum number for any accepted spelling (``BROKER_UNSPECIFIED``, 0, passes
    through: it means "any venue" in a list filter)."""
    if (isinstance(value, int) and not isinstance(value, bool) and value == 0) or (
        isinstance(value, str) and value == "BROKER_UNSPECIFIED"
    ):
        return trading_pb2.BROKER_UNSPECIFIED
    number = trading_pb2.Broker.Value((_PREFIX + canonical_venue(value)).upper())
    return cast("trading_pb2.Broker", number)
