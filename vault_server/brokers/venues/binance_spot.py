"""Binance Spot (``api.binance.com``): HMAC-SHA256, Ed25519 and RSA keys, detached signing.

=================  =========================================  ===========================
operation          request                                    parameters (in this order)
=================  =========================================  ===========================
place              ``POST /api/v3/order``                     symbol, side, type,
                                                              timeInForce, quantity,
                                                              quoteOrderQty, price,
                                                              stopPrice, newClientOrderId
cancel             ``DELETE /api/v3/order``                   symbol, orderId,
                                                              origClientOrderId
amend              ``PUT /api/v3/order/amend/keepPriority``   symbol, orderId,
                                                              origClientOrderId, newQty
query order        ``GET /api/v3/order``                      symbol, orderId,
                                                              origClientOrderId
open orders        ``GET /api/v3/openOrders``                 [symbol]
account            ``GET /api/v3/account``                    -
permissions        ``GET /sapi/v1/account/apiRestrictions``   -
=================  =========================================  ===========================

Every request then carries the sorted extras (place only), ``recvWindow``, ``timestamp`` and
``signature``. ``timeInForce`` defaults to GTC for limit-priced orders (Binance requires one).
Units (Binance "New order"): ``quantity`` is base units for every type and side; a quote-sized
order is a MARKET order with ``quoteOrderQty`` (buy: spend that much quote; sell: receive it).
"""

from __future__ import annotations

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import KeyAlgorithm, OrderType, TimeInForce, Venue
from vault_server.brokers.spec import SpecAdapter
from vault_server.brokers.venues import binance as bn

ALLOWED = frozenset(
    {
        ("POST", "/api/v3/order"), ("POST", "/api/v3/order/test"), ("DELETE", "/api/v3/order"),
        ("DELETE", "/api/v3/openOrders"), ("POST", "/api/v3/order/cancelReplace"),
        ("PUT", "/api/v3/order/amend/keepPriority"), ("POST", "/api/v3/orderList/oco"),
        ("POST", "/api/v3/orderList/oto"), ("POST", "/api/v3/orderList/otoco"),
        ("POST", "/api/v3/orderList/opo"), ("POST", "/api/v3/orderList/opoco"),
        ("DELETE", "/api/v3/orderList"), ("POST", "/api/v3/sor/order"),
        ("GET", "/api/v3/order"), ("GET", "/api/v3/openOrders"), ("GET", "/api/v3/account"),
        ("GET", "/api/v3/order/amendments"),
    }
)  # fmt: skip

ORDERS = bn.BinanceOrders(
    order_path="/api/v3/order",
    open_orders_path="/api/v3/openOrders",
    account_path="/api/v3/account",
    amend_method="PUT",
    amend_path="/api/v3/order/amend/keepPriority",
    amend_keeps_priority=True,
    place_order=("symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
                 "stopPrice", "newClientOrderId"),
    type_names={
        OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP_LOSS: "STOP_LOSS",
        OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT", OrderType.TAKE_PROFIT: "TAKE_PROFIT",
        OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
    },
    tif_names={TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"},
    place_extras={
        "newOrderRespType": frozenset({"ACK", "RESULT", "FULL"}),
        "selfTradePreventionMode": frozenset(
            {"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"}
        ),
        "icebergQty": sc.matches(bn.DECIMAL),
        "strategyId": sc.matches(r"[1-9][0-9]{0,18}"),
        "strategyType": sc.matches(r"[1-9][0-9]{6,18}"),  # Binance: values below 1000000 reserved
    },
)  # fmt: skip

SPEC = bn.market_spec(
    Venue.BINANCE_SPOT,
    live_url="https://api.binance.com",
    testnet_url="https://testnet.binance.vision",
    allowed=ALLOWED,
    orders=ORDERS,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.ED25519, KeyAlgorithm.RSA}),
    generatable=frozenset({KeyAlgorithm.ED25519, KeyAlgorithm.RSA}),
    trade_flag="enableSpotAndMarginTrading",
)
ADAPTER = SpecAdapter(SPEC)


def BinanceSpotAdapter(*, body_params: bool = False) -> SpecAdapter:  # noqa: N802 - was a class
    """Binance Spot; ``body_params=True`` moves POST/PUT parameters into a form body."""
    return bn.with_body_params(ADAPTER, body_params)
