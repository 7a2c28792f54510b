"""Binance request signing shared by the Spot and USD-M Futures adapters.

Signed payload (reference §1.2): ``query_string + body`` with no separator, ``signature`` appended
as the last parameter, key id in ``X-MBX-APIKEY``. HMAC keys sign to lowercase hex; Ed25519 and
RSA (PKCS#1 v1.5, SHA-256) keys sign to base64, which is then percent-encoded.

Placement: every parameter goes in the **query string** and the body is empty, for every method
(the form of the official final request in §1.3). An adapter built with ``body_params=True`` puts
POST/PUT parameters in an ``application/x-www-form-urlencoded`` body instead (USD-M Example 2);
the signed bytes are identical either way. Mixed placement (§2.3 Example 3) is never produced.

Parameter order, fixed so the official vectors reproduce byte for byte:
core fields in ``BinanceMarket.place_order`` order (Spot §1.3: symbol, side, type, timeInForce,
quantity, price; USD-M §2.2: symbol, side, type, quantity, price, timeInForce), then stopPrice,
newClientOrderId, then the validated extras sorted by name, then ``recvWindow``, ``timestamp``
and finally ``signature``. Values are UTF-8 percent-encoded before signing (§1.3 vector b).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, unquote

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PermissionReport,
    PreparedRequest,
    Scope,
    SigningContext,
    TimeInForce,
    Venue,
    VenueCredential,
    deny_endpoint,
    normalize_scope_token,
)
from vault_server.core.errors import InvalidArgument, OperationNotSupported

PERMISSION_PATH = "/sapi/v1/account/apiRestrictions"
PERMISSION_HOST = "https://api.binance.com"  # the permission query lives on Spot, also for USD-M
RESERVED = frozenset(
    {"symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price", "stopPrice",
     "newClientOrderId",
     "orderId", "origClientOrderId", "newQty", "recvWindow", "timestamp", "signature"}
)  # fmt: skip
# Words that mark fund-moving or key-management paths; checked on the decoded, folded path.
_BLOCKED_WORDS = ("withdraw", "transfer", "sub-account", "subaccount", "giftcard", "dust",
                  "capital", "apirestrictions/", "/asset/")  # fmt: skip
_DECIMAL = r"(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?"

_S, _T, _W, _X = (frozenset({Scope.READ}), frozenset({Scope.TRADE}),
                  frozenset({Scope.WITHDRAW}), frozenset({Scope.TRANSFER}))  # fmt: skip
SCOPE_VOCABULARY: Mapping[str, frozenset[Scope]] = {
    normalize_scope_token(token): scopes
    for token, scopes in {
        "read": _S, "enableReading": _S, "enableFixReadOnly": _S,
        "trade": _T, "enableSpotAndMarginTrading": _T, "Enable Spot & Margin Trading": _T,
        "enableFutures": _T, "enableMargin": _T, "enableVanillaOptions": _T,
        "Enable European Options": _T, "enablePortfolioMarginTrading": _T, "enableFixApiTrade": _T,
        "enableWithdrawals": _W, "enableInternalTransfer": _X, "permitsUniversalTransfer": _X,
        "Enable Margin Loan, Repay & Transfer": _X,
    }.items()
}  # fmt: skip


@dataclass(frozen=True)
class BinanceMarket:
    """What differs between Binance Spot and USD-M Futures."""

    venue: Venue
    live_url: str
    testnet_url: str
    order_path: str
    open_orders_path: str
    account_path: str
    amend_method: str
    amend_path: str
    amend_keeps_priority: bool  # Spot: quantity-only keepPriority amend; USD-M: side+qty+price
    place_order: tuple[str, ...]
    type_names: Mapping[OrderType, str]
    tif_names: Mapping[TimeInForce, str]
    place_extras: Mapping[str, sc.ExtraRule]
    trade_flag: str  # apiRestrictions field that grants trading on this market
    algorithms: frozenset[KeyAlgorithm]
    generatable: frozenset[KeyAlgorithm]
    allowed: frozenset[tuple[str, str]]


def _decimal_or_none(value: Decimal | None, field: str) -> str | None:
    return None if value is None else sc.positive_decimal(value, field)


class BinanceAdapter:
    """A Binance market (Spot or USD-M) as a :class:`~vault_server.brokers.base.VenueAdapter`."""

    proxy_only = False
    single_permission_tier = False
    needs_nonce = False

    def __init__(self, market: BinanceMarket, *, body_params: bool = False) -> None:
        self.market = market
        self.venue = market.venue
        self.algorithms = market.algorithms
        self.generatable = market.generatable
        self.scope_vocabulary = SCOPE_VOCABULARY
        self.body_params = body_params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(venue={self.venue.value})"

    def default_base_url(self, environment: Environment) -> str:
        if environment is Environment.LIVE:
            return self.market.live_url
        if environment is Environment.TESTNET:
            return self.market.testnet_url
        raise OperationNotSupported(
            "Binance has no paper environment; use testnet",
            metadata={"venue": self.venue.value, "environment": environment.value},
        )

    # --- endpoints ----------------------------------------------------------------------------
    def check_endpoint(self, method: str, path: str) -> None:
        clean = path.split("?", 1)[0]
        folded = unquote(clean).lower()
        key = (method.upper(), clean)
        blocked = any(word in folded for word in _BLOCKED_WORDS) or (
            "/sapi/" in folded and key != ("GET", PERMISSION_PATH)
        )
        if blocked or key not in self.market.allowed:
            raise deny_endpoint(method, path)

    # --- signing ------------------------------------------------------------------------------
    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        sc.check_credential(self.venue, self.algorithms, credential)
        method, path, params = self._operation(order)
        env_url = self.default_base_url(credential.environment)
        base = sc.base_url(ctx, env_url)
        return self._signed(method, base, path, params, credential=credential, ctx=ctx)

    def _signed(
        self,
        method: str,
        base: str,
        path: str,
        params: list[tuple[str, str]],
        *,
        credential: VenueCredential,
        ctx: SigningContext,
    ) -> PreparedRequest:
        self.check_endpoint(method, path)
        window, now = sc.recv_window_ms(ctx), sc.now_ms(ctx)
        payload = sc.percent_encode([*params, ("recvWindow", str(window)), ("timestamp", str(now))])
        signed = f"{payload}&signature={self._signature(credential, payload.encode('ascii'))}"
        headers = [("X-MBX-APIKEY", credential.api_key)]
        if self.body_params and method in ("POST", "PUT"):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            url, body = f"{base}{path}", signed.encode("ascii")
        else:
            url, body = f"{base}{path}?{signed}", b""
        return PreparedRequest(method, url, tuple(headers), body, expire_at_ms=now + window)

    @staticmethod
    def _signature(credential: VenueCredential, payload: bytes) -> str:
        if credential.algorithm is KeyAlgorithm.HMAC_SHA256:
            secret = sc.require_secret(credential.secret, "credential.secret")
            return sc.hmac_sha256_hex(secret, payload)
        pem = sc.require_secret(credential.private_key_pem, "credential.private_key_pem")
        if credential.algorithm is KeyAlgorithm.ED25519:
            raw = sc.ed25519_sign(pem, payload)
        else:
            raw = sc.rsa_pkcs1_sha256(pem, payload)
        return quote(base64.b64encode(raw).decode("ascii"), safe="")

    # --- operations ---------------------------------------------------------------------------
    def _operation(self, order: OrderSpec) -> tuple[str, str, list[tuple[str, str]]]:
        m, op = self.market, order.operation
        if op is Operation.PLACE_ORDER:
            return "POST", m.order_path, self._place(order)
        sc.no_extras(order)
        if op is Operation.CANCEL_ORDER:
            return "DELETE", m.order_path, self._target(order)
        if op is Operation.QUERY_ORDER:
            return "GET", m.order_path, self._target(order)
        if op is Operation.AMEND_ORDER:
            return m.amend_method, m.amend_path, self._amend(order)
        if op is Operation.QUERY_OPEN_ORDERS:
            name = sc.symbol(order, required=False)
            return "GET", m.open_orders_path, [("symbol", name)] if name else []
        if op is Operation.QUERY_ACCOUNT:
            return "GET", m.account_path, []
        raise OperationNotSupported("operation not supported", metadata={"operation": op.value})

    def _place(self, order: OrderSpec) -> list[tuple[str, str]]:
        kind = sc.check_place_shape(order)
        assert order.side is not None  # checked by check_place_shape
        if order.quote_quantity is not None and (
            kind is not OrderType.MARKET or "quoteOrderQty" not in self.market.place_order
        ):
            sc.no_quote_size(order, "Binance takes quoteOrderQty on Spot MARKET orders only")
        fields: dict[str, str | None] = {
            "symbol": sc.symbol(order),
            "side": order.side.value.upper(),
            "type": self.market.type_names[kind],
            "timeInForce": self._tif(order) if kind in sc.LIMIT_PRICED else None,
            # Base units: Binance has no unit selector, the parameter name is the unit.
            "quantity": _decimal_or_none(order.quantity, "order.quantity"),
            "quoteOrderQty": _decimal_or_none(order.quote_quantity, "order.quote_quantity"),
            "price": _decimal_or_none(order.price, "order.price"),
            "stopPrice": _decimal_or_none(order.stop_price, "order.stop_price"),
            "newClientOrderId": sc.order_id(order.client_order_id, "order.client_order_id"),
        }
        core = [(name, value) for name in self.market.place_order if (value := fields[name])]
        extras = sc.checked_extras(order.extras, self.market.place_extras, RESERVED)
        if order.time_in_force is TimeInForce.GTD and "goodTillDate" not in dict(extras):
            raise InvalidArgument("order.extras", "goodTillDate is required for GTD orders")
        return core + extras

    def _tif(self, order: OrderSpec) -> str:
        tif = order.time_in_force or TimeInForce.GTC  # Binance requires one; GTC is its default
        name = self.market.tif_names.get(tif)
        if name is None:
            raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered by Binance")
        return name

    @staticmethod
    def _target(order: OrderSpec) -> list[tuple[str, str]]:
        params = [("symbol", sc.symbol(order) or "")]
        venue_id = sc.order_id(order.venue_order_id, "order.venue_order_id")
        client_id = sc.order_id(order.client_order_id, "order.client_order_id")
        if venue_id is not None:
            if not venue_id.isdigit():
                raise InvalidArgument("order.venue_order_id", "must be a Binance numeric order id")
            params.append(("orderId", venue_id))
        if client_id is not None:
            params.append(("origClientOrderId", client_id))
        if venue_id is None and client_id is None:
            raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")
        return params

    def _amend(self, order: OrderSpec) -> list[tuple[str, str]]:
        params = self._target(order)
        if order.stop_price is not None:
            raise InvalidArgument("order.stop_price", "cannot be amended on Binance")
        quantity = sc.positive_decimal(order.quantity, "order.quantity")
        if self.market.amend_keeps_priority:
            if order.price is not None:
                raise InvalidArgument("order.price", "Spot amends change quantity only")
            return [*params, ("newQty", quantity)]
        if order.side is None:
            raise InvalidArgument("order.side", "is required to modify a USD-M order")
        price = sc.positive_decimal(order.price, "order.price")
        side = order.side.value.upper()
        return [*params, ("side", side), ("quantity", quantity), ("price", price)]

    # --- permissions --------------------------------------------------------------------------
    def permission_base_url(self, environment: Environment) -> str:
        """Where ``permission_request`` goes: Spot's host for both markets (egress allow-list)."""
        return PERMISSION_HOST

    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        sc.check_credential(self.venue, self.algorithms, credential)
        if ctx.base_url is None and credential.environment is not Environment.LIVE:
            return None  # the testnets serve no /sapi endpoints
        base = sc.base_url(ctx, PERMISSION_HOST)
        return self._signed("GET", base, PERMISSION_PATH, [], credential=credential, ctx=ctx)

    def parse_permissions(self, status: int, body: bytes) -> PermissionReport:
        data = sc.json_object(status, body)
        if status != 200 or "enableReading" not in data:
            code = str(data.get("code", ""))
            raise sc.venue_error("venue refused the permission query", status, code)
        scopes: set[Scope] = set()
        if sc.flag(data, "enableReading", status):
            scopes.add(Scope.READ)
        if sc.flag(data, self.market.trade_flag, status):
            scopes.add(Scope.TRADE)
        if sc.flag(data, "enableWithdrawals", status):
            scopes.add(Scope.WITHDRAW)
        transfer = sc.flag(data, "enableInternalTransfer", status)
        if sc.flag(data, "permitsUniversalTransfer", status) or transfer:
            scopes.add(Scope.TRANSFER)
        raw = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in data.items()
            if isinstance(value, bool | int) and len(key) <= 64
        }
        return PermissionReport(scopes=frozenset(scopes), raw=raw)
