"""Venue -> adapter lookup. Modules are imported on first use."""

from __future__ import annotations

import importlib
from typing import cast

from vault_server.brokers.base import Venue, VenueAdapter
from vault_server.core.errors import OperationNotSupported

_MODULES = {
    Venue.BINANCE_SPOT: "vault_server.brokers.venues.binance_spot",
    Venue.BINANCE_USDM: "vault_server.brokers.venues.binance_usdm",
    Venue.KRAKEN_SPOT: "vault_server.brokers.venues.kraken",
    Venue.BYBIT: "vault_server.brokers.venues.bybit",
    Venue.OKX: "vault_server.brokers.venues.okx",
    Venue.COINBASE_ADVANCED: "vault_server.brokers.venues.coinbase",
    Venue.OANDA: "vault_server.brokers.venues.oanda",
    Venue.ALPACA: "vault_server.brokers.venues.alpaca",
    Venue.IG: "vault_server.brokers.venues.ig",
    Venue.BITGET: "vault_server.brokers.venues.bitget",
    Venue.DERIBIT: "vault_server.brokers.venues.deribit",
    Venue.KRAKEN_FUTURES: "vault_server.brokers.venues.kraken_futures",
    Venue.GATE: "vault_server.brokers.venues.gate",
    Venue.KUCOIN: "vault_server.brokers.venues.kucoin",
    Venue.HYPERLIQUID: "vault_server.brokers.venues.hyperliquid",
    Venue.METAAPI: "vault_server.brokers.venues.metaapi",
    Venue.MATCH_TRADER: "vault_server.brokers.venues.match_trader",
    Venue.TRADELOCKER: "vault_server.brokers.venues.tradelocker",
    Venue.DXTRADE: "vault_server.brokers.venues.dxtrade",
    Venue.CTRADER: "vault_server.brokers.venues.ctrader",
}


# In the API and the Venue enum, not implemented yet: onboarding and signing refuse them.
PLANNED: frozenset[Venue] = frozenset()


def supported_venues() -> tuple[Venue, ...]:
    """The venues this build implements, in the API's order."""
    return tuple(venue for venue in Venue if venue in _MODULES)


def adapter_for(venue: Venue, *, coinbase_strict: bool = False) -> VenueAdapter:
    """The adapter for ``venue`` (Coinbase: the proxy-only one when configured strict).

    Raises ``OperationNotSupported`` for a venue this build does not implement (the planned
    ones among them), so onboarding refuses it before anything is stored.
    """
    if venue in PLANNED:
        raise OperationNotSupported(
            "this broker is declared in the API but not implemented yet",
            metadata={"broker": venue.value},
        )
    try:
        module = importlib.import_module(_MODULES[venue])
    except (KeyError, ModuleNotFoundError) as exc:
        raise OperationNotSupported(
            "this broker is not supported by this server build", metadata={"broker": venue.value}
        ) from exc
    name = "STRICT_ADAPTER" if venue is Venue.COINBASE_ADVANCED and coinbase_strict else "ADAPTER"
    return cast(VenueAdapter, getattr(module, name))
