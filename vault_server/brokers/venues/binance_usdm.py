"""Binance USD-M Futures (``fapi.binance.com``): HMAC-SHA256 and RSA keys, detached signing.

=================  =========================================  ===========================
operation          request                                    parameters (in this order)
=================  =========================================  ===========================
place              ``POST /fapi/v1/order``                    symbol, side, type, quantity,
                                                              price, timeInForce, stopPrice,
                                                              newClientOrderId
cancel             ``DELETE /fapi/v1/order``                  symbol, orderId,
                                                              origClientOrderId
amend              ``PUT /fapi/v1/order``                     symbol, orderId,
                                                              origClientOrderId, side,
                                                              quantity, price
query order        ``GET /fapi/v1/order``                     symbol, orderId,
                                                              origClientOrderId
open orders        ``GET /fapi/v1/openOrders``                [symbol]
account            ``GET /fapi/v3/account``                   -
permissions        ``GET /sapi/v1/account/apiRestrictions``   - (on api.binance.com)
=================  =========================================  ===========================

The parameter order of ``place`` is the one of the official USD-M vectors (§2.2). Ed25519 on
``fapi`` is not confirmed by the futures documentation, so Ed25519 keys are not accepted here.
Leverage, margin-type and position-mode settings are deliberately not on the allow-list.
Units (USD-M "New Order"): ``quantity`` is base units for every type and side (BTCUSDT: BTC);
USD-M has no quote-sized order, so ``OrderSpec.quote_quantity`` is refused.
"""

from __future__ import annotations

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import KeyAlgorithm, OrderType, TimeInForce, Venue
from vault_server.brokers.spec import SpecAdapter
from vault_server.brokers.venues import binance as bn

ALLOWED = frozenset(
    {
        ("POST", "/fapi/v1/order"), ("PUT", "/fapi/v1/order"), ("DELETE", "/fapi/v1/order"),
        ("POST", "/fapi/v1/batchOrders"), ("PUT", "/fapi/v1/batchOrders"),
        ("DELETE", "/fapi/v1/batchOrders"), ("DELETE", "/fapi/v1/allOpenOrders"),
        ("POST", "/fapi/v1/countdownCancelAll"), ("GET", "/fapi/v1/order"),
        ("GET", "/fapi/v1/openOrder"), ("GET", "/fapi/v1/openOrders"),
        ("GET", "/fapi/v3/account"), ("GET", "/fapi/v2/account"), ("GET", "/fapi/v3/balance"),
        ("GET", "/fapi/v2/balance"), ("GET", "/fapi/v3/positionRisk"),
        ("GET", "/fapi/v2/positionRisk"),
    }
)  # fmt: skip

ORDERS = bn.BinanceOrders(
    order_path="/fapi/v1/order",
    open_orders_path="/fapi/v1/openOrders",
    account_path="/fapi/v3/account",
    amend_method="PUT",
    amend_path="/fapi/v1/order",
    amend_keeps_priority=False,
    place_order=("symbol", "side", "type", "quantity", "price", "timeInForce", "stopPrice",
                 "newClientOrderId"),
    type_names={
        OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP_LOSS: "STOP_MARKET",
        OrderType.STOP_LIMIT: "STOP", OrderType.TAKE_PROFIT: "TAKE_PROFIT_MARKET",
        OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT",
    },
    tif_names={TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK",
               TimeInForce.GTD: "GTD"},
    place_extras={
        "newOrderRespType": frozenset({"ACK", "RESULT"}),
        "selfTradePreventionMode": frozenset(
            {"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"}
        ),
        "positionSide": frozenset({"BOTH", "LONG", "SHORT"}),
        "reduceOnly": frozenset({"true", "false"}),
        "workingType": frozenset({"MARK_PRICE", "CONTRACT_PRICE"}),
        "priceProtect": frozenset({"TRUE", "FALSE"}),
        "goodTillDate": sc.matches(r"[1-9][0-9]{12}"),
    },
)  # fmt: skip

SPEC = bn.market_spec(
    Venue.BINANCE_USDM,
    live_url="https://fapi.binance.com",
    testnet_url="https://testnet.binancefuture.com",
    allowed=ALLOWED,
    orders=ORDERS,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.RSA}),
    generatable=frozenset({KeyAlgorithm.RSA}),
    trade_flag="enableFutures",
)
ADAPTER = SpecAdapter(SPEC)


def BinanceUsdmAdapter(*, body_params: bool = False) -> SpecAdapter:  # noqa: N802 - was a class
    """Binance USD-M; ``body_params=True`` moves POST/PUT parameters into a form body."""
    return bn.with_body_params(ADAPTER, body_params)
