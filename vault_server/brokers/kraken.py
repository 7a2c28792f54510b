"""Kraken Spot REST (``api.kraken.com``): HMAC-SHA512 with a base64 secret, detached signing.

Signature (reference §3.1)::

    API-Sign = base64(HMAC_SHA512(base64decode(secret), path || SHA256(nonce + postdata)))

Every call is ``POST /0/private/<Method>`` with an ``application/x-www-form-urlencoded`` body and
no query string. **Postdata order**: ``nonce`` first, then every other parameter sorted by name
(byte order), values UTF-8 percent-encoded. The official vector (§3.2) is exactly that order:
``nonce=…&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25``.

The nonce is the vault's (``SigningContext.nonce``, strictly increasing per key); a request
without one is an internal error. Kraken authentication has no time expiry, so AddOrder and
AmendOrder carry ``deadline`` (RFC 3339, whole seconds, inside the signed body): ``now +
clamp(recv_window, 3 s, 60 s)`` rounded down to the second, so it always falls in Kraken's
``now + 2 s … now + 60 s`` range; ``expire_at_ms`` is that instant. Other calls expire (vault
policy) at ``now + recv_window``.

=================  ==========================  ============================================
operation          method                      parameters
=================  ==========================  ============================================
place              ``AddOrder``                pair, type, ordertype, volume, price, price2,
                                               timeinforce, cl_ord_id, deadline, extras
cancel             ``CancelOrder``             txid | cl_ord_id
amend              ``AmendOrder``              txid | cl_ord_id, order_qty, limit_price,
                                               trigger_price, deadline, [post_only]
query order        ``QueryOrders``             txid
open orders        ``OpenOrders``              - (Kraken cannot filter by pair; symbol ignored)
account            ``Balance``                 -
permissions        ``GetApiKeyInfo``           -
=================  ==========================  ============================================

Units (Kraken REST "Add Order"): ``volume`` is in the base asset for every order type and side
unless ``oflags`` carries ``viqc``. ``quantity`` is sent as ``volume`` without ``viqc`` (and
``viqc`` is refused as an extra, so a router cannot flip the unit); ``quote_quantity`` is sent as
``volume`` with ``viqc`` added to ``oflags``, which Kraken supports on market buys only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

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
from vault_server.core.errors import InternalError, InvalidArgument, OperationNotSupported

LIVE_URL = "https://api.kraken.com"
PRIVATE = "/0/private/"
_ALLOWED_METHODS = frozenset(
    {"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "CancelOrder", "CancelOrderBatch",
     "CancelAll", "CancelAllOrdersAfter", "OpenOrders", "ClosedOrders", "QueryOrders",
     "OrderAmends", "TradesHistory", "QueryTrades", "OpenPositions", "Balance", "BalanceEx",
     "TradeBalance", "GetApiKeyInfo"}
)  # fmt: skip
_BLOCKED_WORDS = ("withdraw", "deposit", "transfer", "subaccount", "earn", "wallet", "stake")
_ORDER_TYPES = {
    OrderType.MARKET: "market", OrderType.LIMIT: "limit", OrderType.STOP_LOSS: "stop-loss",
    OrderType.STOP_LIMIT: "stop-loss-limit", OrderType.TAKE_PROFIT: "take-profit",
    OrderType.TAKE_PROFIT_LIMIT: "take-profit-limit",
}  # fmt: skip
_TIFS = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC"}
# viqc (quote-currency volume) is refused as an extra: only ``quote_quantity`` may set it.
_OFLAGS = frozenset({"post", "fcib", "fciq", "nompp"})


def _oflags(value: str) -> bool:
    flags = value.split(",")
    return len(set(flags)) == len(flags) and all(f in _OFLAGS for f in flags)


_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "oflags": _oflags,
    "stptype": frozenset({"cancel-newest", "cancel-oldest", "cancel-both"}),
    "reduce_only": frozenset({"true", "false"}),
    "trigger": frozenset({"index", "last"}),
    "userref": sc.matches(r"-?[0-9]{1,10}"),
    "displayvol": sc.matches(r"(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?"),
    "validate": frozenset({"true"}),
    "trading_agreement": frozenset({"agree"}),
}
_AMEND_EXTRAS: Mapping[str, sc.ExtraRule] = {"post_only": frozenset({"true", "false"})}
RESERVED = frozenset(
    {"nonce", "otp", "pair", "type", "ordertype", "volume", "price", "price2", "timeinforce",
     "cl_ord_id", "deadline", "txid", "order_qty", "limit_price", "trigger_price"}
)  # fmt: skip

_R, _T, _W, _X = (frozenset({Scope.READ}), frozenset({Scope.TRADE}),
                  frozenset({Scope.WITHDRAW}), frozenset({Scope.TRANSFER}))  # fmt: skip
# GetApiKeyInfo tokens (docs.kraken.com/api-reference/account-data/get-api-key-info) and the
# names the Kraken UI shows for the same permissions.
SCOPE_VOCABULARY: Mapping[str, frozenset[Scope]] = {
    normalize_scope_token(token): scopes
    for token, scopes in {
        "read": _R, "trade": _T,
        "query-funds": _R, "Query Funds": _R, "query-open-trades": _R,
        "Query Open Orders & Trades": _R, "query-closed-trades": _R,
        "Query Closed Orders & Trades": _R, "query-ledger": _R, "Query Ledger Entries": _R,
        "export-data": _R, "Export Data": _R, "create-ws-token": _R, "Access WebSockets API": _R,
        "modify-trades": _T, "Create & Modify Orders": _T, "Modify Orders": _T,
        "close-trades": _T, "Cancel/Close Orders": _T,
        "withdraw-funds": _W, "Withdraw Funds": _W, "add-withdraw-address": _W,
        "update-withdraw-address": _W,
        "add-funds": _X, "Deposit Funds": _X, "earn-funds": _X, "Earn Funds": _X,
    }.items()
}  # fmt: skip


class KrakenSpotAdapter:
    """Kraken Spot. ``order_deadline=False`` omits ``deadline`` (only to replay §3.2 in tests)."""

    venue = Venue.KRAKEN_SPOT
    proxy_only = False
    single_permission_tier = False
    needs_nonce = True
    algorithms = frozenset({KeyAlgorithm.HMAC_SHA512})
    generatable: frozenset[KeyAlgorithm] = frozenset()
    scope_vocabulary = SCOPE_VOCABULARY

    def __init__(self, *, order_deadline: bool = True) -> None:
        self.order_deadline = order_deadline

    def __repr__(self) -> str:
        return f"KrakenSpotAdapter(order_deadline={self.order_deadline})"

    def default_base_url(self, environment: Environment) -> str:
        if environment is Environment.LIVE:
            return LIVE_URL
        raise OperationNotSupported(
            "Kraken Spot has no paper or testnet environment",
            metadata={"venue": self.venue.value, "environment": environment.value},
        )

    def check_endpoint(self, method: str, path: str) -> None:
        clean = path.split("?", 1)[0]
        name = clean.removeprefix(PRIVATE)
        folded = clean.lower()
        blocked = any(word in folded for word in _BLOCKED_WORDS)
        if blocked or method.upper() != "POST" or name == clean or name not in _ALLOWED_METHODS:
            raise deny_endpoint(method, path)

    # --- signing ------------------------------------------------------------------------------
    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        sc.check_credential(self.venue, self.algorithms, credential)
        name, params, timed = self._operation(order)
        return self._signed(name, params, credential, ctx, with_deadline=timed)

    def _signed(
        self,
        name: str,
        params: list[tuple[str, str]],
        credential: VenueCredential,
        ctx: SigningContext,
        *,
        with_deadline: bool = False,
    ) -> PreparedRequest:
        path = PRIVATE + name
        self.check_endpoint("POST", path)
        if ctx.nonce is None or isinstance(ctx.nonce, bool) or ctx.nonce <= 0:
            raise InternalError("Kraken signing needs the vault's per-key nonce")
        now, window = sc.now_ms(ctx), sc.recv_window_ms(ctx)
        expire_at = now + window
        if with_deadline and self.order_deadline:
            expire_at = (now + min(max(window, 3000), 60_000)) // 1000 * 1000
            stamp = dt.datetime.fromtimestamp(expire_at // 1000, dt.UTC)
            params = [*params, ("deadline", stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))]
        nonce = str(ctx.nonce)
        postdata = sc.percent_encode([("nonce", nonce), *sorted(params)])
        digest = hashlib.sha256((nonce + postdata).encode("ascii")).digest()
        secret = sc.require_secret(credential.secret, "credential.secret")
        signature = sc.hmac_sha512_base64_key(secret, path.encode("ascii") + digest)
        headers = (
            ("API-Key", credential.api_key),
            ("API-Sign", signature),
            ("Content-Type", "application/x-www-form-urlencoded"),
        )
        url = sc.base_url(ctx, self.default_base_url(credential.environment)) + path
        return PreparedRequest("POST", url, headers, postdata.encode("ascii"), expire_at)

    # --- operations ---------------------------------------------------------------------------
    def _operation(self, order: OrderSpec) -> tuple[str, list[tuple[str, str]], bool]:
        op = order.operation
        if op is Operation.PLACE_ORDER:
            return "AddOrder", self._place(order), True
        if op is Operation.AMEND_ORDER:
            return "AmendOrder", self._amend(order), True
        sc.no_extras(order)
        if op is Operation.CANCEL_ORDER:
            return "CancelOrder", self._target(order), False
        if op is Operation.QUERY_ORDER:
            txid = sc.order_id(order.venue_order_id, "order.venue_order_id")
            if txid is None:
                raise InvalidArgument("order.venue_order_id", "is required to query a Kraken order")
            return "QueryOrders", [("txid", txid)], False
        if op is Operation.QUERY_OPEN_ORDERS:
            return "OpenOrders", [], False
        if op is Operation.QUERY_ACCOUNT:
            return "Balance", [], False
        raise OperationNotSupported("operation not supported", metadata={"operation": op.value})

    @staticmethod
    def _place(order: OrderSpec) -> list[tuple[str, str]]:
        kind = sc.check_place_shape(order)
        assert order.side is not None  # checked by check_place_shape
        quote = order.quote_quantity is not None
        if quote and (kind is not OrderType.MARKET or order.side is not Side.BUY):
            sc.no_quote_size(order, "Kraken takes a quote volume (oflags=viqc) on market buys only")
        volume = (
            sc.positive_decimal(order.quote_quantity, "order.quote_quantity")
            if quote
            else sc.positive_decimal(order.quantity, "order.quantity")
        )
        params = [
            ("pair", sc.symbol(order) or ""),
            ("type", order.side.value),
            ("ordertype", _ORDER_TYPES[kind]),
            ("volume", volume),
        ]
        if kind in sc.TRIGGERED:  # Kraken: price = trigger, price2 = limit
            params.append(("price", sc.positive_decimal(order.stop_price, "order.stop_price")))
            if order.price is not None:
                params.append(("price2", sc.positive_decimal(order.price, "order.price")))
        elif order.price is not None:
            params.append(("price", sc.positive_decimal(order.price, "order.price")))
        if order.time_in_force is not None:
            tif = _TIFS.get(order.time_in_force)
            if tif is None:
                raise InvalidArgument(
                    "order.time_in_force", f"{order.time_in_force.value} is not offered by Kraken"
                )
            params.append(("timeinforce", tif))
        client_id = sc.order_id(order.client_order_id, "order.client_order_id")
        if client_id is not None:
            params.append(("cl_ord_id", client_id))
        extras = sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED)
        if quote:  # the only way to make Kraken read ``volume`` in the quote currency
            flags = dict(extras).get("oflags")
            extras = [(k, v) for k, v in extras if k != "oflags"]
            extras.append(("oflags", f"{flags},viqc" if flags else "viqc"))
        return params + extras

    @staticmethod
    def _target(order: OrderSpec) -> list[tuple[str, str]]:
        txid = sc.order_id(order.venue_order_id, "order.venue_order_id")
        client_id = sc.order_id(order.client_order_id, "order.client_order_id")
        if (txid is None) == (client_id is None):
            raise InvalidArgument(
                "order.venue_order_id", "exactly one of it and order.client_order_id is required"
            )
        return [("txid", txid)] if txid is not None else [("cl_ord_id", client_id or "")]

    def _amend(self, order: OrderSpec) -> list[tuple[str, str]]:
        params = self._target(order)
        for value, name, field in (
            (order.quantity, "order_qty", "order.quantity"),
            (order.price, "limit_price", "order.price"),
            (order.stop_price, "trigger_price", "order.stop_price"),
        ):
            if value is not None:
                params.append((name, sc.positive_decimal(value, field)))
        if len(params) == 1:
            raise InvalidArgument("order.quantity", "or a price is required to amend an order")
        return params + sc.checked_extras(order.extras, _AMEND_EXTRAS, RESERVED)

    # --- permissions --------------------------------------------------------------------------
    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        sc.check_credential(self.venue, self.algorithms, credential)
        return self._signed("GetApiKeyInfo", [], credential, ctx)

    def parse_permissions(self, status: int, body: bytes) -> PermissionReport:
        data = sc.json_object(status, body)
        errors, result = data.get("error"), data.get("result")
        if status != 200 or not isinstance(errors, list) or errors:
            code = errors[0] if isinstance(errors, list) and errors else ""
            raise sc.venue_error("venue refused the permission query", status, str(code))
        tokens = result.get("permissions") if isinstance(result, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise sc.venue_error("permission answer lacks a permissions list", status)
        assert isinstance(result, dict)
        scopes, unknown = sc.scopes_for_tokens(tokens, self.scope_vocabulary)
        raw = {"permissions": ",".join(tokens)}
        for key in ("apiKeyName", "nonceWindow", "validUntil", "queryFrom", "queryTo",
                    "createdTime", "modifiedTime", "lastUsed"):  # fmt: skip
            if isinstance(result.get(key), str | int):
                raw[key] = str(result[key])[:128]
        if isinstance(result.get("ipAllowlist"), list):
            raw["ipAllowlist"] = ",".join(str(ip) for ip in result["ipAllowlist"])[:512]
        if unknown:
            raw["unknownPermissions"] = ",".join(unknown)
        return PermissionReport(scopes=frozenset(scopes), raw=raw)


ADAPTER = KrakenSpotAdapter()
