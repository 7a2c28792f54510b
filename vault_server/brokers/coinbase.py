"""Coinbase Advanced Trade (``api.coinbase.com/api/v3/brokerage``): CDP JWT per request.

Every request carries ``Authorization: Bearer <JWT>`` (ES256 for EC P-256 keys, EdDSA for
Ed25519 keys; see ``_jwt_coinbase``) with ``uri = "<METHOD> api.coinbase.com<path>"`` (no query)
and ``exp = nbf + 120``; ``expire_at_ms = nbf * 1000 + 120000``. The header ``nonce`` is
``SigningContext.random_hex``.

**The JWT does not bind the body or the query** (reference §4.3): for 120 s a token minted for
``POST /api/v3/brokerage/orders`` authorises *any* order body on that path, any number of times.
So the adapter comes in two flavours:

* ``ADAPTER`` (``strict=False``): detached signing allowed; the caller could change the order.
* ``STRICT_ADAPTER`` (``strict=True``): ``proxy_only`` is True, so only ExecuteOrder may use it
  and the vault itself sends exactly the bytes it approved.

=================  ==================================================  ========================
operation          request                                             body / query
=================  ==================================================  ========================
place              ``POST /api/v3/brokerage/orders``                   client_order_id,
                                                                       product_id, side,
                                                                       order_configuration
cancel             ``POST /api/v3/brokerage/orders/batch_cancel``      {"order_ids": [id]}
amend              ``POST /api/v3/brokerage/orders/edit``              order_id, price, size
query order        ``GET /api/v3/brokerage/orders/historical/{id}``    -
open orders        ``GET /api/v3/brokerage/orders/historical/batch``   order_status=OPEN
                                                                       [&product_ids=...]
account            ``GET /api/v3/brokerage/accounts``                  -
permissions        ``GET /api/v3/brokerage/key_permissions``           -
=================  ==================================================  ========================

``order_configuration`` from the order type and TIF: market → ``market_market_ioc``; limit
GTC → ``limit_limit_gtc``, GTD → ``limit_limit_gtd`` (extra ``end_time``), FOK →
``limit_limit_fok``, IOC → ``sor_limit_ioc``; stop-limit / take-profit-limit →
``stop_limit_stop_limit_gtc|gtd`` with ``stop_direction``. Units: ``quantity`` is always
``base_size`` (market buys too, although many clients size those with ``quote_size``);
``quote_quantity`` is ``quote_size``, only on ``market_market_ioc`` buys (Coinbase: "to sell,
provide a base_size"), and the order policy bounds it as notional. Coinbase requires a unique
``client_order_id``. Keys are created by Coinbase, so nothing is generatable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _jwt_coinbase as cj
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
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueCredential,
    deny_endpoint,
    normalize_scope_token,
)
from vault_server.core.errors import InvalidArgument, OperationNotSupported

URLS = {
    Environment.LIVE: "https://api.coinbase.com",
    # Coinbase's static Advanced Trade sandbox: unauthenticated, mocked, production-shaped.
    Environment.PAPER: "https://api-sandbox.coinbase.com",
    Environment.TESTNET: "https://api-sandbox.coinbase.com",
}
P = "/api/v3/brokerage"
PERMISSION_PATH = P + "/key_permissions"
_ALLOWED = frozenset(
    {("POST", P + p) for p in ("/orders", "/orders/batch_cancel", "/orders/edit",
                               "/orders/edit_preview", "/orders/preview", "/orders/close_position")}
    | {("GET", P + p) for p in ("/orders/historical/batch", "/orders/historical/fills",
                                "/accounts", "/key_permissions")}
)  # fmt: skip
_GET_PATTERNS = (re.compile(P + r"/orders/historical/[A-Za-z0-9-]{1,64}"),
                 re.compile(P + r"/accounts/[A-Za-z0-9-]{1,64}"))  # fmt: skip
_BLOCKED_WORDS = ("/v2/", "move_funds", "portfolios", "allocate", "sweeps", "convert", "withdraw",
                  "deposit", "transfer", "transaction", "payment", "address")  # fmt: skip
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "post_only": frozenset({"true", "false"}), "end_time": hc.is_rfc3339_utc,
}  # fmt: skip
_LIMITS = (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)

SCOPE_VOCABULARY: Mapping[str, frozenset[Scope]] = {
    normalize_scope_token(token): frozenset(scopes)
    for token, scopes in {
        "view": {Scope.READ}, "can_view": {Scope.READ}, "trade": {Scope.TRADE},
        "can_trade": {Scope.TRADE}, "transfer": {Scope.TRANSFER}, "can_transfer": {Scope.TRANSFER},
    }.items()
}  # fmt: skip


class CoinbaseAdvancedAdapter:
    """Coinbase Advanced Trade with CDP API keys (ES256 or EdDSA JWT)."""

    venue = Venue.COINBASE_ADVANCED
    single_permission_tier = False
    needs_nonce = False
    algorithms = frozenset({KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ED25519})
    generatable: frozenset[KeyAlgorithm] = frozenset()
    scope_vocabulary = SCOPE_VOCABULARY

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.proxy_only: bool = strict  # the JWT does not bind the body (reference §4.3)

    def __repr__(self) -> str:
        return f"CoinbaseAdvancedAdapter(strict={self.strict})"

    def default_base_url(self, environment: Environment) -> str:
        return URLS[environment]

    def check_endpoint(self, method: str, path: str) -> None:
        clean, verb = path.split("?", 1)[0], method.upper()
        folded = clean.lower()
        listed = (verb, clean) in _ALLOWED or (
            verb == "GET" and any(p.fullmatch(clean) for p in _GET_PATTERNS)
        )
        if not listed or any(word in folded for word in _BLOCKED_WORDS):
            raise deny_endpoint(method, path)

    # --- signing ------------------------------------------------------------------------------
    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        sc.check_credential(self.venue, self.algorithms, credential)
        method, path, query, payload = self._operation(order)
        return self._signed(method, path, query, payload, credential=credential, ctx=ctx)

    def _signed(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        payload: Mapping[str, Any] | None,
        *,
        credential: VenueCredential,
        ctx: SigningContext,
    ) -> PreparedRequest:
        self.check_endpoint(method, path)
        nbf = sc.now_ms(ctx) // 1000
        alg, key = cj.load_signing_key(credential)
        token = cj.mint(
            credential.api_key, alg, key, method=method, path=path, nbf=nbf, nonce=ctx.random_hex
        )
        url = sc.base_url(ctx, self.default_base_url(credential.environment)) + path
        if query:
            url += "?" + sc.percent_encode(query)
        headers = (
            ("Authorization", hc.RedactedHeader(f"Bearer {token}")),
            ("Content-Type", "application/json"),
        )
        body = hc.compact_json(payload) if payload is not None else b""
        return PreparedRequest(
            method, url, headers, body, expire_at_ms=(nbf + cj.LIFETIME_S) * 1000
        )

    # --- operations ---------------------------------------------------------------------------
    def _operation(
        self, order: OrderSpec
    ) -> tuple[str, str, list[tuple[str, str]], dict[str, Any] | None]:
        op = order.operation
        if op is Operation.PLACE_ORDER:
            return "POST", P + "/orders", [], self._place(order)
        sc.no_extras(order)
        if op is Operation.QUERY_ACCOUNT:
            return "GET", P + "/accounts", [], None
        if op is Operation.QUERY_OPEN_ORDERS:
            query = [("order_status", "OPEN")]
            if (name := sc.symbol(order, required=False)) is not None:
                query.append(("product_ids", name))
            return "GET", P + "/orders/historical/batch", query, None
        venue_id = hc.path_id(order.venue_order_id, "order.venue_order_id")
        assert venue_id is not None  # required=True
        if op is Operation.QUERY_ORDER:
            return "GET", f"{P}/orders/historical/{venue_id}", [], None
        if op is Operation.CANCEL_ORDER:
            return "POST", P + "/orders/batch_cancel", [], {"order_ids": [venue_id]}
        if op is Operation.AMEND_ORDER:
            edit: dict[str, Any] = {"order_id": venue_id}
            if order.price is not None:
                edit["price"] = sc.positive_decimal(order.price, "order.price")
            if order.quantity is not None:
                edit["size"] = sc.positive_decimal(order.quantity, "order.quantity")
            if len(edit) == 1:
                raise InvalidArgument("order.quantity", "or order.price is required to amend")
            return "POST", P + "/orders/edit", [], edit
        raise OperationNotSupported("operation not supported", metadata={"operation": op.value})

    @staticmethod
    def _place(order: OrderSpec) -> dict[str, Any]:
        kind = sc.check_place_shape(order)
        extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, ()))
        client_id = sc.order_id(order.client_order_id, "order.client_order_id")
        if client_id is None:
            raise InvalidArgument("order.client_order_id", "is required by Coinbase")
        return {
            "client_order_id": client_id,
            "product_id": sc.symbol(order),
            "side": "BUY" if order.side is Side.BUY else "SELL",
            "order_configuration": _configuration(order, kind, extras),
        }

    # --- permissions --------------------------------------------------------------------------
    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        sc.check_credential(self.venue, self.algorithms, credential)
        return self._signed("GET", PERMISSION_PATH, [], None, credential=credential, ctx=ctx)

    def parse_permissions(self, status: int, body: bytes) -> PermissionReport:
        data = sc.json_object(status, body)
        if status != 200:
            raise sc.venue_error("venue refused the permission query", status)
        flags = {name: sc.flag(data, name, status) for name in (
            "can_view", "can_trade", "can_transfer")}  # fmt: skip
        named = (("can_view", Scope.READ), ("can_trade", Scope.TRADE),
                 ("can_transfer", Scope.TRANSFER))  # fmt: skip
        scopes = {scope for name, scope in named if flags[name]}
        raw = {name: str(value).lower() for name, value in flags.items()}
        for key in ("portfolio_uuid", "portfolio_type"):
            if isinstance(data.get(key), str):
                raw[key] = data[key][:128]
        return PermissionReport(scopes=frozenset(scopes), raw=raw)


def _size(order: OrderSpec, kind: OrderType) -> dict[str, str]:
    """``base_size`` for ``quantity``; ``quote_size`` for ``quote_quantity`` on market buys only.

    Coinbase (Create Order, market_market_ioc): "To buy a product, provide a quote_size or
    base_size; to sell, provide a base_size"; limit configurations take ``base_size``.
    """
    if order.quote_quantity is None:
        return {"base_size": sc.positive_decimal(order.quantity, "order.quantity")}
    if kind is not OrderType.MARKET or order.side is not Side.BUY:
        sc.no_quote_size(order, "Coinbase takes quote_size on market buys only")
    return {"quote_size": sc.positive_decimal(order.quote_quantity, "order.quote_quantity")}


def _configuration(order: OrderSpec, kind: OrderType, extras: dict[str, str]) -> dict[str, Any]:
    size = _size(order, kind)
    tif, end_time = order.time_in_force, extras.pop("end_time", None)
    post_only = extras.pop("post_only", None)
    if (end_time is not None) != (tif is TimeInForce.GTD):
        raise InvalidArgument("order.extras", "end_time is required exactly for GTD orders")
    if kind is OrderType.MARKET:
        return {"market_market_ioc": size | _no_post_only(post_only)}
    if kind not in _LIMITS:
        raise InvalidArgument("order.order_type", f"{kind.value} is not offered by Coinbase")
    if tif not in (None, TimeInForce.GTC, TimeInForce.GTD, TimeInForce.FOK, TimeInForce.IOC):
        raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered by Coinbase")
    limit = size | {"limit_price": sc.positive_decimal(order.price, "order.price")}
    timed = {"end_time": end_time} if end_time is not None else {}
    suffix = "gtd" if tif is TimeInForce.GTD else "gtc"
    if kind is not OrderType.LIMIT:
        if tif not in (None, TimeInForce.GTC, TimeInForce.GTD):
            raise InvalidArgument("order.time_in_force", "stop-limit orders are GTC or GTD")
        rising = (kind is OrderType.STOP_LIMIT) == (order.side is Side.BUY)
        stop = {"stop_price": sc.positive_decimal(order.stop_price, "order.stop_price"),
                "stop_direction": "STOP_DIRECTION_STOP_UP" if rising else
                "STOP_DIRECTION_STOP_DOWN"}  # fmt: skip
        return {f"stop_limit_stop_limit_{suffix}": limit | stop | timed | _no_post_only(post_only)}
    if tif in (TimeInForce.FOK, TimeInForce.IOC):
        name = "limit_limit_fok" if tif is TimeInForce.FOK else "sor_limit_ioc"
        return {name: limit | _no_post_only(post_only)}
    return {f"limit_limit_{suffix}": limit | timed | {"post_only": post_only == "true"}}


def _no_post_only(post_only: str | None) -> dict[str, Any]:
    if post_only is not None:
        raise InvalidArgument("order.extras", "post_only applies to GTC/GTD limit orders only")
    return {}


ADAPTER = CoinbaseAdvancedAdapter()
STRICT_ADAPTER = CoinbaseAdvancedAdapter(strict=True)
