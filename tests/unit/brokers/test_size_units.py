"""Size units: what each venue will DO with the signed request, per its documentation.

The ``reads_*`` functions below are written from the venues' documentation (cited on each one),
defaults included, and know nothing about the adapters: each takes the signed request and says
how much of what the venue would trade, as ``(amount, unit)`` with unit ``base``, ``quote`` or
``contracts``. The tables say what the router asked for; the tests build the request with the
real adapter and check that the venue's documented reading of it is exactly that.

A market buy of 0.01 BTC must buy 0.01 BTC: before the unit selectors were pinned, OKX and Bybit
read such an order as "spend 0.01 USDT".
"""

from __future__ import annotations

import base64
import json
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Side,
    SigningContext,
    Venue,
    VenueAdapter,
    VenueCredential,
)
from vault_server.brokers.venues import (
    alpaca,
    binance_spot,
    binance_usdm,
    bybit,
    coinbase,
    kraken,
    oanda,
    okx,
)
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

Reading = tuple[Decimal, str]


# --- the venues' documented readings -----------------------------------------------------------
def _json(request: PreparedRequest) -> dict[str, Any]:
    body = json.loads(request.body)
    assert isinstance(body, dict)
    return body


def reads_binance(request: PreparedRequest) -> Reading:
    """Binance Spot "New order (TRADE)" / USD-M "New Order (TRADE)": ``quantity`` is the base
    asset for every type; Spot "MARKET orders using quoteOrderQty specifies the amount the user
    wants to spend (when buying) or receive (when selling) the quote asset". USD-M has no
    quoteOrderQty. https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints
    """
    params = dict(parse_qsl(urlsplit(request.url).query or request.body.decode()))
    if "quoteOrderQty" in params:
        assert "quantity" not in params and params["type"] == "MARKET"
        assert "/api/v3/" in request.url, "USD-M has no quoteOrderQty"
        return Decimal(params["quoteOrderQty"]), "quote"
    return Decimal(params["quantity"]), "base"


def reads_kraken(request: PreparedRequest) -> Reading:
    """Kraken REST "Add Order": ``volume`` is "order quantity in terms of the base asset";
    ``oflags`` ``viqc`` = "order volume expressed in quote currency", supported only for buy
    market orders. https://docs.kraken.com/api/docs/rest-api/add-order
    """
    params = dict(parse_qsl(request.body.decode()))
    if "viqc" in params.get("oflags", "").split(","):
        assert (params["ordertype"], params["type"]) == ("market", "buy")
        return Decimal(params["volume"]), "quote"
    return Decimal(params["volume"]), "base"


def reads_bybit(request: PreparedRequest) -> Reading:
    """Bybit v5 "Place Order" ``qty``: UTA spot "Market Buy order by value by default, you can
    set marketUnit field to choose order by value or qty for market orders"; ``marketUnit``
    ``baseCoin`` / ``quoteCoin``; perps, futures and options "always order by qty" (linear: base
    coin; inverse: contracts). https://bybit-exchange.github.io/docs/v5/order/create-order
    """
    body = _json(request)
    qty = Decimal(body["qty"])
    if body["category"] == "inverse":
        return qty, "contracts"
    if body["category"] != "spot" or body["orderType"] == "Limit":
        assert "marketUnit" not in body  # "for Spot market orders" only
        return qty, "base"
    unit = body.get("marketUnit", "quoteCoin" if body["side"] == "Buy" else "baseCoin")
    return qty, {"baseCoin": "base", "quoteCoin": "quote"}[unit]


def reads_okx(request: PreparedRequest) -> Reading:
    """OKX "Place order" ``sz``: SPOT/MARGIN limit orders in base currency; "For MARGIN Buy
    Market Orders, it refers to the quantity in quote currency", sells in base; "For SPOT Market
    Orders, it is set by tgtCcy", default ``quote_ccy`` for buy and ``base_ccy`` for sell;
    FUTURES/SWAP/OPTION in contracts. https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order
    """
    body = _json(request)
    size, inst, market = Decimal(body["sz"]), body["instId"], body["ordType"] == "market"
    if inst.count("-") > 1:
        return size, "contracts"
    if not market:
        return size, "base"
    spot_default = "quote_ccy" if body["side"] == "buy" else "base_ccy"
    spot = {"base_ccy": "base", "quote_ccy": "quote"}[body.get("tgtCcy", spot_default)]
    if body["tdMode"] in ("cash", "spot_isolated"):
        return size, spot
    # cross/isolated: MARGIN (futures mode, tgtCcy not applicable) or SPOT (multi-currency
    # margin): the venue's reading is only known if both agree.
    margin = "quote" if body["side"] == "buy" else "base"
    return size, margin if margin == spot else "ambiguous"


def reads_coinbase(request: PreparedRequest) -> Reading:
    """Coinbase Advanced "Create Order": ``base_size`` "the amount of the first Asset in the
    Trading Pair", ``quote_size`` "the amount of the second Asset"; "To buy a product, provide a
    quote_size or base_size; to sell, provide a base_size".
    https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/orders/create-order
    """
    body = _json(request)
    ((name, config),) = body["order_configuration"].items()
    if "quote_size" in config:
        assert "base_size" not in config
        assert (name, body["side"]) == ("market_market_ioc", "BUY")
        return Decimal(config["quote_size"]), "quote"
    return Decimal(config["base_size"]), "base"


def reads_alpaca(request: PreparedRequest) -> Reading:
    """Alpaca "Create an Order": ``qty`` "number of shares to trade"; ``notional`` "dollar
    amount to trade. Cannot work with qty. Can only work for market order types".
    https://docs.alpaca.markets/reference/postorder
    """
    body = _json(request)
    if "notional" in body:
        assert "qty" not in body and body["type"] == "market"
        return Decimal(body["notional"]), "quote"
    return Decimal(body["qty"]), "base"


def reads_oanda(request: PreparedRequest) -> Reading:
    """OANDA v20 "OrderRequest": ``units`` is "the quantity requested to be filled"; positive
    units are long (buy), negative short (sell); units are of the instrument's base currency.
    https://developer.oanda.com/rest-live-v20/order-df/
    """
    units = Decimal(_json(request)["order"]["units"])
    return abs(units), "base"


# --- building the requests ---------------------------------------------------------------------
def _ec_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip


def _hmac(venue: Venue, **more: Any) -> VenueCredential:
    return VenueCredential(
        venue, Environment.LIVE, KeyAlgorithm.HMAC_SHA256, "key-" + secrets.token_hex(4),
        secret=Secret(secrets.token_hex(16)), **more,
    )  # fmt: skip


CREDENTIALS: dict[Venue, VenueCredential] = {
    Venue.BINANCE_SPOT: _hmac(Venue.BINANCE_SPOT),
    Venue.BINANCE_USDM: _hmac(Venue.BINANCE_USDM),
    Venue.BYBIT: _hmac(Venue.BYBIT),
    Venue.OKX: _hmac(Venue.OKX, passphrase=Secret("Pp" + secrets.token_hex(6))),
    Venue.KRAKEN_SPOT: VenueCredential(
        Venue.KRAKEN_SPOT, Environment.LIVE, KeyAlgorithm.HMAC_SHA512, "kr-key",
        secret=Secret(base64.b64encode(secrets.token_bytes(64))),
    ),
    Venue.COINBASE_ADVANCED: VenueCredential(
        Venue.COINBASE_ADVANCED, Environment.LIVE, KeyAlgorithm.ECDSA_P256,
        "organizations/o/apiKeys/k", private_key_pem=Secret(_ec_pem()),
    ),
    Venue.ALPACA: VenueCredential(
        Venue.ALPACA, Environment.PAPER, KeyAlgorithm.STATIC_HEADERS, "PKTEST",
        secret=Secret(secrets.token_urlsafe(24)),
    ),
    Venue.OANDA: VenueCredential(
        Venue.OANDA, Environment.LIVE, KeyAlgorithm.BEARER, "token",
        secret=Secret(secrets.token_hex(16)), account_id="101-004-1234567-001",
    ),
}  # fmt: skip
CTX = SigningContext(now_ms=1_700_000_000_000, nonce=1_700_000_000_000, random_hex="ab" * 16)


class Case:
    """One venue market: its adapter, symbol, extras and documented reading."""

    def __init__(
        self, name: str, adapter: VenueAdapter, symbol: str, reads: Any,
        extras: dict[str, str] | None = None, quote_sized: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:  # fmt: skip
        self.name, self.adapter, self.symbol, self.reads = name, adapter, symbol, reads
        self.extras = extras or {}
        self.quote_sized = quote_sized  # (type, side) pairs the venue documents a quote size for

    def __repr__(self) -> str:
        return self.name

    def build(self, kind: str, side: str, **size: Decimal) -> PreparedRequest:
        order = OrderSpec(
            Operation.PLACE_ORDER, symbol=self.symbol, side=Side(side),
            order_type=OrderType(kind), price=Decimal("30000") if kind == "limit" else None,
            client_order_id="units1", extras=self.extras, **size,
        )  # fmt: skip
        return self.adapter.build(order, CREDENTIALS[self.adapter.venue], CTX)


MARKET_BOTH = frozenset({("market", "buy"), ("market", "sell")})
MARKET_BUY = frozenset({("market", "buy")})
# What each venue documents as quote-sizable (type, side); everything else must be refused.
CASES = [
    Case("binance-spot", binance_spot.ADAPTER, "BTCUSDT", reads_binance, quote_sized=MARKET_BOTH),
    Case("binance-usdm", binance_usdm.ADAPTER, "BTCUSDT", reads_binance),
    Case("kraken", kraken.ADAPTER, "XBTUSD", reads_kraken, quote_sized=MARKET_BUY),
    Case("bybit-spot", bybit.ADAPTER, "BTCUSDT", reads_bybit, {"category": "spot"}, MARKET_BOTH),
    Case("bybit-linear", bybit.ADAPTER, "BTCUSDT", reads_bybit, {"category": "linear"}),
    Case("okx-spot", okx.ADAPTER, "BTC-USDT", reads_okx, quote_sized=MARKET_BOTH),
    Case("okx-spot-isolated", okx.ADAPTER, "BTC-USDT", reads_okx, {"tdMode": "spot_isolated"},
         MARKET_BOTH),
    Case("coinbase", coinbase.ADAPTER, "BTC-USD", reads_coinbase, quote_sized=MARKET_BUY),
    Case("alpaca", alpaca.ADAPTER, "AAPL", reads_alpaca, quote_sized=MARKET_BOTH),
    Case("oanda", oanda.ADAPTER, "EUR_USD", reads_oanda),
]  # fmt: skip
SHAPES = [(kind, side) for kind in ("market", "limit") for side in ("buy", "sell")]


@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.parametrize(("kind", "side"), SHAPES)
def test_quantity_is_read_in_base_units(case: Case, kind: str, side: str) -> None:
    request = case.build(kind, side, quantity=Decimal("0.01"))
    assert case.reads(request) == (Decimal("0.01"), "base")


@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.parametrize(("kind", "side"), SHAPES)
def test_quote_quantity_is_read_in_quote_units_or_refused(case: Case, kind: str, side: str) -> None:
    if (kind, side) in case.quote_sized:
        request = case.build(kind, side, quote_quantity=Decimal("250"))
        assert case.reads(request) == (Decimal("250"), "quote")
        return
    with pytest.raises(InvalidArgument) as refused:
        case.build(kind, side, quote_quantity=Decimal("250"))
    assert refused.value.field == "order.quote_quantity"


@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.parametrize(
    ("sizes", "field"),
    [
        ({"quantity": Decimal("1"), "quote_quantity": Decimal("1")}, "order.quote_quantity"),
        ({}, "order.quantity"),
    ],
    ids=["both", "neither"],
)
def test_exactly_one_size(case: Case, sizes: dict[str, Decimal], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        case.build("market", "buy", **sizes)
    assert refused.value.field == field


def test_selectors_are_explicit_on_the_orders_that_have_one() -> None:
    """Not relying on a venue default: the selector is in the signed bytes."""
    okx_spot, bybit_spot = CASES[5], CASES[3]
    for side in ("buy", "sell"):
        assert _json(okx_spot.build("market", side, quantity=Decimal("1")))["tgtCcy"] == "base_ccy"
        body = _json(bybit_spot.build("market", side, quantity=Decimal("1")))
        assert body["marketUnit"] == "baseCoin"
    stop = OrderSpec(
        Operation.PLACE_ORDER, symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.STOP_LOSS,
        quantity=Decimal("0.01"), stop_price=Decimal("31000"), extras={"category": "spot"},
    )  # fmt: skip
    triggered = _json(bybit.ADAPTER.build(stop, CREDENTIALS[Venue.BYBIT], CTX))
    assert (triggered["orderFilter"], triggered["marketUnit"]) == ("StopOrder", "baseCoin")
    assert reads_bybit(bybit.ADAPTER.build(stop, CREDENTIALS[Venue.BYBIT], CTX))[1] == "base"


def test_kraken_keeps_the_router_flags_and_adds_viqc_only_for_quote_sizes() -> None:
    case = CASES[2]
    case.extras = {"oflags": "fciq"}
    try:
        quote = dict(parse_qsl(case.build("market", "buy", quote_quantity=Decimal("5")).body))
        base = dict(parse_qsl(case.build("market", "buy", quantity=Decimal("5")).body))
    finally:
        case.extras = {}
    assert quote[b"oflags"] == b"fciq,viqc" and base[b"oflags"] == b"fciq"


@pytest.mark.parametrize(
    ("adapter", "extras"),
    [
        (okx.ADAPTER, {"tgtCcy": "quote_ccy"}),
        (bybit.ADAPTER, {"category": "spot", "marketUnit": "quoteCoin"}),
        (kraken.ADAPTER, {"oflags": "viqc"}),
        (binance_spot.ADAPTER, {"quoteOrderQty": "100"}),
        (alpaca.ADAPTER, {"notional": "100"}),
        (oanda.ADAPTER, {"units": "-100"}),
    ],
    ids=["okx", "bybit", "kraken", "binance", "alpaca", "oanda"],
)
def test_a_router_cannot_flip_the_unit_through_extras(
    adapter: VenueAdapter, extras: dict[str, str]
) -> None:
    symbol = {Venue.OKX: "BTC-USDT", Venue.KRAKEN_SPOT: "XBTUSD", Venue.ALPACA: "AAPL",
              Venue.OANDA: "EUR_USD"}.get(adapter.venue, "BTCUSDT")  # fmt: skip
    order = OrderSpec(
        Operation.PLACE_ORDER, symbol=symbol, side=Side.BUY, order_type=OrderType.MARKET,
        quantity=Decimal("0.01"), client_order_id="units2", extras=extras,
    )  # fmt: skip
    with pytest.raises(InvalidArgument) as refused:
        adapter.build(order, CREDENTIALS[adapter.venue], CTX)
    assert refused.value.field == "order.extras"


# --- OKX margin modes: only the sizes every reading agrees on ----------------------------------
@pytest.mark.parametrize("td_mode", ["cross", "isolated"])
def test_okx_margin_market_orders_accept_only_unambiguous_sizes(td_mode: str) -> None:
    case = Case("okx-margin", okx.ADAPTER, "BTC-USDT", reads_okx, {"tdMode": td_mode})
    assert reads_okx(case.build("market", "sell", quantity=Decimal("0.01"))) == (
        Decimal("0.01"), "base",
    )  # fmt: skip
    assert reads_okx(case.build("market", "buy", quote_quantity=Decimal("300"))) == (
        Decimal("300"), "quote",
    )  # fmt: skip
    assert reads_okx(case.build("limit", "buy", quantity=Decimal("0.01")))[1] == "base"
    with pytest.raises(InvalidArgument) as buy:
        case.build("market", "buy", quantity=Decimal("0.01"))  # MARGIN would spend 0.01 USDT
    with pytest.raises(InvalidArgument) as sell:
        case.build("market", "sell", quote_quantity=Decimal("300"))  # MARGIN: sell 300 BTC
    assert (buy.value.field, sell.value.field) == ("order.quantity", "order.quote_quantity")


def test_okx_derivatives_are_contracts_and_take_no_quote_size() -> None:
    case = Case("okx-swap", okx.ADAPTER, "BTC-USDT-SWAP", reads_okx, {"tdMode": "cross"})
    request = case.build("market", "buy", quantity=Decimal("3"))
    assert reads_okx(request) == (Decimal("3"), "contracts") and "tgtCcy" not in _json(request)
    with pytest.raises(InvalidArgument) as refused:
        case.build("market", "buy", quote_quantity=Decimal("3"))
    assert refused.value.field == "order.quote_quantity"


# --- OKX freshness: what is signed and what is not --------------------------------------------
def test_okx_exptime_is_outside_the_signature_and_the_signed_timestamp_bounds_the_order() -> None:
    """A router can drop ``expTime``: the signature still verifies, so the vault's guarantee is
    the signed OK-ACCESS-TIMESTAMP, which OKX refuses once it is more than 30 s old."""
    case = CASES[5]
    request = case.build("market", "buy", quantity=Decimal("0.01"))
    headers = dict(request.headers)
    path = urlsplit(request.url).path
    secret = CREDENTIALS[Venue.OKX].secret
    assert secret is not None
    stripped = {k: v for k, v in headers.items() if k != "expTime"}
    resigned = okx.okx_signature(
        secret, stripped["OK-ACCESS-TIMESTAMP"], "POST", path, request.body
    )
    assert "expTime" in headers and resigned == stripped["OK-ACCESS-SIGN"]
    assert stripped["OK-ACCESS-TIMESTAMP"] == okx.okx_timestamp(CTX.now_ms)
    assert int(headers["expTime"]) == request.expire_at_ms <= CTX.now_ms + 30_000
    long_window = SigningContext(now_ms=CTX.now_ms, recv_window_ms=60_000)
    order = OrderSpec(
        Operation.PLACE_ORDER, symbol="BTC-USDT", side=Side.BUY, order_type=OrderType.MARKET,
        quantity=Decimal("0.01"),
    )  # fmt: skip
    capped = okx.ADAPTER.build(order, CREDENTIALS[Venue.OKX], long_window)
    assert capped.expire_at_ms == CTX.now_ms + okx.MAX_TIMESTAMP_AGE_MS
