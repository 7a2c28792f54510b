"""OKX v5 (``www.okx.com``): HMAC-SHA256 + passphrase, detached signing.

Signature (reference §6.1, OKX "REST Authentication")::

    timestamp      = ISO-8601 UTC with milliseconds, e.g. "2020-12-08T09:08:57.715Z"
    prehash        = timestamp + METHOD + requestPath + body
                     # requestPath carries "?query" for GET; body is the exact JSON sent, or ""
    OK-ACCESS-SIGN = base64(HMAC_SHA256(secret, prehash))

Headers: ``OK-ACCESS-KEY``, ``OK-ACCESS-SIGN``, ``OK-ACCESS-TIMESTAMP``,
``OK-ACCESS-PASSPHRASE`` (the passphrase in plain text: the venue's protocol; the HMAC secret
never leaves the vault), ``Content-Type: application/json`` on POST, ``x-simulated-trading: 1`` in
paper/testnet (OKX demo trading uses the live host).

Freshness: OKX refuses a request whose signed timestamp is more than ~30 s old (50102 "Timestamp
request expired"), so ``expire_at_ms = now + min(recv_window, 30000)``. Place and amend also carry
the ``expTime`` header (same instant), which OKX honours for those endpoints, but ``expTime`` is
*not* in the prehash: a router can strip it (or change it), and OKX offers no signed expiry for
REST orders. What the vault guarantees is the signed ``OK-ACCESS-TIMESTAMP``: OKX refuses the
request once it is more than 30 s old, whatever happened to ``expTime``.

Units (OKX "Place order", ``sz`` and ``tgtCcy``): SPOT/MARGIN limit orders read ``sz`` in the
base currency; SPOT market orders follow ``tgtCcy`` (default ``quote_ccy`` for buys), so SPOT
market orders always carry ``tgtCcy`` (``base_ccy`` for ``quantity``, ``quote_ccy`` for
``quote_quantity``); MARGIN market buys are quote and sells base, with no selector (see
``_size_unit``); FUTURES/SWAP/OPTION ``sz`` is a number of contracts, which the vault passes as
``quantity`` unchanged (it does not know ``ctVal``).

=================  ====================================  =====================================
operation          request                               parameters (in this order)
=================  ====================================  =====================================
place              ``POST /api/v5/trade/order``          instId, tdMode, side, ordType, sz,
                                                         tgtCcy, px, clOrdId, extras sorted by
                                                         name
cancel             ``POST /api/v5/trade/cancel-order``   instId, ordId | clOrdId
amend              ``POST /api/v5/trade/amend-order``    instId, ordId | clOrdId, newSz, newPx,
                                                         cxlOnFail, reqId
query order        ``GET /api/v5/trade/order``           instId, ordId | clOrdId
open orders        ``GET /api/v5/trade/orders-pending``  instType, instId
account            ``GET /api/v5/account/balance``       ccy
permissions        ``GET /api/v5/account/config``        -
=================  ====================================  =====================================

``tdMode`` defaults to ``cash`` (spot); ``ordType`` follows the order type and time in force
(limit GTC → ``limit``, or ``post_only`` with extra ``postOnly=true``; IOC → ``ioc``; FOK →
``fok``). Trigger orders need OKX's algo endpoint and are refused. ``/api/v5/asset/transfer`` is
blocked although OKX's *Trade* permission covers "funding transfer" (reference §6.3).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from vault_server.brokers import _http_common as hc
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
from vault_server.core.secret import Secret

URL = "https://www.okx.com"
PERMISSION_PATH = "/api/v5/account/config"
MAX_TIMESTAMP_AGE_MS = 30_000
_T = "/api/v5/trade/"
_ALLOWED = frozenset(
    {("POST", _T + name) for name in (
        "order", "batch-orders", "cancel-order", "cancel-batch-orders", "amend-order",
        "amend-batch-orders", "close-position", "order-algo")}
    | {("GET", path) for path in (
        _T + "order", _T + "orders-pending", _T + "orders-history", _T + "fills",
        "/api/v5/account/balance", "/api/v5/account/positions", PERMISSION_PATH)}
)  # fmt: skip
_BLOCKED_WORDS = ("/asset/", "withdraw", "transfer", "/users/", "subaccount", "/finance/",
                  "/broker/", "/fiat/", "convert", "deposit", "apikey")  # fmt: skip
_EXPTIME_PATHS = frozenset({_T + "order", _T + "amend-order"})
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CL_ORD_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_PASSPHRASE = re.compile(rb"[\x20-\x7e]{1,128}")
_TRUE_FALSE = frozenset({"true", "false"})
_CCY = sc.matches(r"[A-Z0-9]{1,16}")
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "tdMode": frozenset({"cash", "cross", "isolated", "spot_isolated"}),
    "posSide": frozenset({"long", "short", "net"}),
    "reduceOnly": _TRUE_FALSE,
    "ccy": _CCY,
    "stpMode": frozenset({"cancel_maker", "cancel_taker", "cancel_both"}),
    "postOnly": frozenset({"true"}),
}
_AMEND_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "cxlOnFail": _TRUE_FALSE, "reqId": sc.matches(r"[A-Za-z0-9]{1,32}"),
}  # fmt: skip
_OPEN_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "instType": frozenset({"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"})
}
_ACCOUNT_EXTRAS: Mapping[str, sc.ExtraRule] = {"ccy": _CCY}
RESERVED = frozenset({"instId", "side", "ordType", "sz", "px", "clOrdId", "ordId", "newSz",
                      "newPx", "tag", "tgtCcy"})  # fmt: skip
_LIMIT_ORD_TYPES = {None: "limit", TimeInForce.GTC: "limit", TimeInForce.IOC: "ioc",
                    TimeInForce.FOK: "fok"}  # fmt: skip

# Tokens of ``perm`` in GET /api/v5/account/config ("read_only,withdraw,trade") and UI names.
SCOPE_VOCABULARY: Mapping[str, frozenset[Scope]] = {
    normalize_scope_token(token): frozenset(scopes)
    for token, scopes in {
        "read_only": {Scope.READ}, "read": {Scope.READ}, "trade": {Scope.TRADE},
        "withdraw": {Scope.WITHDRAW}, "transfer": {Scope.TRANSFER},
    }.items()
}  # fmt: skip


def okx_timestamp(now_ms: int) -> str:
    """``2020-12-08T09:08:57.715Z`` for the epoch-millisecond instant ``now_ms``."""
    moment = _EPOCH + dt.timedelta(milliseconds=now_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now_ms % 1000:03d}Z"


def okx_signature(
    secret: Secret, timestamp: str, method: str, request_path: str, body: bytes
) -> str:
    """``base64(HMAC_SHA256(secret, timestamp + METHOD + requestPath + body))``."""
    prehash = f"{timestamp}{method.upper()}{request_path}".encode("ascii") + body
    return base64.b64encode(hmac.new(secret.reveal(), prehash, hashlib.sha256).digest()).decode()


class OkxAdapter:
    """OKX v5 unified API (spot, margin, swap, futures, option)."""

    venue = Venue.OKX
    proxy_only = False
    single_permission_tier = False
    needs_nonce = False
    algorithms = frozenset({KeyAlgorithm.HMAC_SHA256})
    generatable: frozenset[KeyAlgorithm] = frozenset()
    scope_vocabulary = SCOPE_VOCABULARY

    def __repr__(self) -> str:
        return "OkxAdapter()"

    def default_base_url(self, environment: Environment) -> str:
        return URL  # demo trading: same host plus ``x-simulated-trading: 1``

    def check_endpoint(self, method: str, path: str) -> None:
        clean = path.split("?", 1)[0]
        folded = clean.lower()
        if (
            any(word in folded for word in _BLOCKED_WORDS)
            or (method.upper(), clean) not in _ALLOWED
        ):
            raise deny_endpoint(method, path)

    # --- signing ------------------------------------------------------------------------------
    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        sc.check_credential(self.venue, self.algorithms, credential)
        method, path, params = self._operation(order)
        return self._signed(method, path, params, credential, ctx)

    def _signed(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        credential: VenueCredential,
        ctx: SigningContext,
    ) -> PreparedRequest:
        self.check_endpoint(method, path)
        now = sc.now_ms(ctx)
        expire = now + min(sc.recv_window_ms(ctx), MAX_TIMESTAMP_AGE_MS)
        passphrase = _passphrase(credential.passphrase)
        secret = sc.require_secret(credential.secret, "credential.secret")
        if method == "GET":
            query = sc.percent_encode(params.items())
            request_path, body = (f"{path}?{query}" if query else path), b""
        else:
            request_path, body = path, hc.compact_json(params)
        timestamp = okx_timestamp(now)
        headers: list[tuple[str, str]] = [
            ("OK-ACCESS-KEY", credential.api_key),
            ("OK-ACCESS-SIGN", okx_signature(secret, timestamp, method, request_path, body)),
            ("OK-ACCESS-TIMESTAMP", timestamp),
            ("OK-ACCESS-PASSPHRASE", passphrase),
        ]
        if method != "GET":
            headers.append(("Content-Type", "application/json"))
        if credential.environment is not Environment.LIVE:
            headers.append(("x-simulated-trading", "1"))
        if path in _EXPTIME_PATHS:
            headers.append(("expTime", str(expire)))
        url = sc.base_url(ctx, self.default_base_url(credential.environment)) + request_path
        return PreparedRequest(method, url, tuple(headers), body, expire_at_ms=expire)

    # --- operations ---------------------------------------------------------------------------
    def _operation(self, order: OrderSpec) -> tuple[str, str, dict[str, Any]]:
        op = order.operation
        if op is Operation.QUERY_ACCOUNT:
            ccy = sc.checked_extras(order.extras, _ACCOUNT_EXTRAS, RESERVED)
            return "GET", "/api/v5/account/balance", dict(ccy)
        if op is Operation.QUERY_OPEN_ORDERS:
            query = dict(sc.checked_extras(order.extras, _OPEN_EXTRAS, RESERVED))
            if (name := sc.symbol(order, required=False)) is not None:
                query["instId"] = name
            return "GET", _T + "orders-pending", query
        params: dict[str, Any] = {"instId": sc.symbol(order)}
        if op is Operation.PLACE_ORDER:
            return "POST", _T + "order", self._place(order, params)
        if op is Operation.AMEND_ORDER:
            extras = dict(sc.checked_extras(order.extras, _AMEND_EXTRAS, RESERVED))
            params |= _target(order)
            changes = {key: sc.positive_decimal(value, field) for key, value, field in (
                ("newSz", order.quantity, "order.quantity"), ("newPx", order.price, "order.price"))
                if value is not None}  # fmt: skip
            if not changes:
                raise InvalidArgument("order.quantity", "or order.price is required to amend")
            if order.stop_price is not None:
                raise InvalidArgument("order.stop_price", "cannot be amended on OKX orders")
            return "POST", _T + "amend-order", params | changes | _typed(extras)
        sc.no_extras(order)
        params |= _target(order)
        if op is Operation.CANCEL_ORDER:
            return "POST", _T + "cancel-order", params
        if op is Operation.QUERY_ORDER:
            return "GET", _T + "order", params
        raise OperationNotSupported("operation not supported", metadata={"operation": op.value})

    @staticmethod
    def _place(order: OrderSpec, params: dict[str, Any]) -> dict[str, Any]:
        kind = sc.check_place_shape(order)
        extras = dict(sc.checked_extras(order.extras, _PLACE_EXTRAS, RESERVED))
        post_only = extras.pop("postOnly", None) == "true"
        if kind is OrderType.MARKET:
            ord_type = "market"
        elif kind is OrderType.LIMIT:
            tif = order.time_in_force
            if tif is not None and tif not in _LIMIT_ORD_TYPES:
                raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered by OKX")
            gtc = tif in (None, TimeInForce.GTC)
            ord_type = "post_only" if post_only and gtc else _LIMIT_ORD_TYPES[tif]
        else:
            raise InvalidArgument("order.order_type", f"{kind.value} needs OKX algo orders")
        if post_only and ord_type != "post_only":
            raise InvalidArgument("order.extras", "postOnly needs a GTC limit order")
        params["tdMode"] = extras.pop("tdMode", "cash")
        params["side"] = "buy" if order.side is Side.BUY else "sell"
        params["ordType"] = ord_type
        target = _size_unit(order, kind, params["instId"], params["tdMode"])
        if order.quote_quantity is not None:
            params["sz"] = sc.positive_decimal(order.quote_quantity, "order.quote_quantity")
        else:
            params["sz"] = sc.positive_decimal(order.quantity, "order.quantity")
        if target is not None:
            params["tgtCcy"] = target
        if order.price is not None:
            params["px"] = sc.positive_decimal(order.price, "order.price")
        if (client_id := _client_id(order)) is not None:
            params["clOrdId"] = client_id
        return params | _typed(extras)

    # --- permissions --------------------------------------------------------------------------
    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        sc.check_credential(self.venue, self.algorithms, credential)
        return self._signed("GET", PERMISSION_PATH, {}, credential, ctx)

    def parse_permissions(self, status: int, body: bytes) -> PermissionReport:
        data = sc.json_object(status, body)
        code, rows = data.get("code"), data.get("data")
        if status != 200 or code != "0" or not isinstance(rows, list) or len(rows) != 1:
            raise sc.venue_error("venue refused the permission query", status, str(code or ""))
        row = rows[0]
        if not isinstance(row, dict) or not isinstance(perm := row.get("perm"), str):
            raise sc.venue_error("permission answer lacks perm", status)
        tokens = [token.strip() for token in perm.split(",") if token.strip()]
        scopes, unknown = sc.scopes_for_tokens(tokens, self.scope_vocabulary)
        raw = {"perm": perm[:256]}
        for key in ("label", "ip", "acctLv", "posMode", "mainUid", "uid"):
            if isinstance(row.get(key), str):
                raw[key] = row[key][:256]
        if unknown:
            raw["unknownPermissions"] = ",".join(unknown)[:512]
        return PermissionReport(scopes=frozenset(scopes), raw=raw)


def _size_unit(order: OrderSpec, kind: OrderType, inst_id: str, td_mode: str) -> str | None:
    """The ``tgtCcy`` to send (None: OKX has no selector here), refusing sizes OKX would misread.

    OKX ``sz`` (Place order): SPOT/MARGIN limit orders are base currency; SPOT market orders
    follow ``tgtCcy`` (default ``quote_ccy`` for buys!); MARGIN market buys are quote and sells
    base, with no selector; FUTURES/SWAP/OPTION are contracts. A two-part instId (``BTC-USDT``)
    is SPOT with ``tdMode`` cash/spot_isolated; with cross/isolated it may be MARGIN, so only
    the sizes both readings agree on are accepted there.
    """
    quote = order.quote_quantity is not None
    spot_pair = inst_id.count("-") == 1
    if kind is OrderType.MARKET and spot_pair:
        if td_mode in ("cash", "spot_isolated"):
            return "quote_ccy" if quote else "base_ccy"
        if order.side is Side.BUY and not quote:
            raise InvalidArgument(
                "order.quantity",
                "OKX reads margin market buys in the quote currency: use quote_quantity",
            )
        if order.side is Side.SELL and quote:
            raise InvalidArgument(
                "order.quote_quantity", "OKX reads margin market sells in the base currency"
            )
        return None
    sc.no_quote_size(order, "OKX takes a quote-sized sz on SPOT/MARGIN market orders only")
    return None


def _passphrase(passphrase: Secret | None) -> str:
    value = sc.require_secret(passphrase, "credential.passphrase").reveal()
    if not _PASSPHRASE.fullmatch(value) or value != value.strip():
        raise InvalidArgument("credential.passphrase", "must be printable ASCII")
    return hc.RedactedHeader(value.decode("ascii"))


def _client_id(order: OrderSpec) -> str | None:
    value = order.client_order_id
    if value is None or value == "":
        return None
    if not _CL_ORD_ID.fullmatch(value):
        raise InvalidArgument("order.client_order_id", "must be 1-32 letters or digits on OKX")
    return value


def _target(order: OrderSpec) -> dict[str, str]:
    if (venue_id := sc.order_id(order.venue_order_id, "order.venue_order_id")) is not None:
        return {"ordId": venue_id}
    if (client_id := _client_id(order)) is not None:
        return {"clOrdId": client_id}
    raise InvalidArgument("order.venue_order_id", "or order.client_order_id is required")


def _typed(extras: Mapping[str, str]) -> dict[str, Any]:
    """Extras in name order; ``true``/``false`` become JSON booleans (OKX's declared types)."""
    return {k: (v == "true" if v in _TRUE_FALSE else v) for k, v in sorted(extras.items())}


ADAPTER = OkxAdapter()
