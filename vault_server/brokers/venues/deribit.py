"""Deribit v2 (``www.deribit.com``, testnet ``test.deribit.com``): ``deri-hmac-sha256``.

Signature: ``schemes/deri_hmac.py`` (hex HMAC-SHA256 over ``ts\\nnonce\\nGET\\nURI\\n\\n``, a random
nonce per request, 60 s timestamp validity per docs.deribit.com/articles/authentication,
"Deribit Signature Credentials (HTTP REST)"). Every call is a GET with query parameters.

Units: ``quantity`` is sent as ``contracts`` (Deribit's contract units, the same for every
instrument), never as ``amount`` (USD for inverse futures and perpetuals, base coin for options
and linear futures); ``quote_quantity`` is refused.

=================  ============================================  ===========================
operation          request                                       parameters
=================  ============================================  ===========================
place              ``/api/v2/private/buy`` | ``/private/sell``   instrument_name, contracts,
                                                                 type, price, time_in_force,
                                                                 label, post_only, reduce_only
cancel             ``/private/cancel``                           order_id
amend              ``/private/edit``                             order_id, contracts, price
query order        ``/private/get_order_state``                  order_id
open orders        ``/private/get_open_orders[_by_instrument]``  instrument_name
account            ``/private/get_account_summary``              currency (extra, required)
permissions        ``/api/v2/public/auth`` (client_signature)    -> ``result.scope``
=================  ============================================  ===========================

Withdrawals (``private/withdraw``, needs ``wallet:read_write``), transfers
(``private/submit_transfer_to_subaccount``/``_to_user``/``_between_subaccounts``), API-key
management (``private/list_api_keys`` returns client secrets) and sub-accounts are blocked.
Scopes ``wallet:read_write``, ``account:read_write`` (transfers, key management) and
``block_trade:read_write`` are refused at onboarding and quarantine a key at attestation.
"""

from __future__ import annotations

from collections.abc import Mapping

from vault_server.brokers import _signing_common as sc
from vault_server.brokers import permissions as pm
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PermissionReport,
    Scope,
    Side,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.schemes.deri_hmac import DeriHmac
from vault_server.brokers.spec import Call, Permissions, SpecAdapter, VenueSpec, vocabulary
from vault_server.core.errors import InvalidArgument, OperationNotSupported

LIVE, TEST = "https://www.deribit.com", "https://test.deribit.com"
AUTH_PATH = "/api/v2/public/auth"
_P = "/api/v2/private/"
ALLOWED = frozenset(
    {("GET", _P + name) for name in (
        "buy", "sell", "edit", "cancel", "cancel_all_by_instrument", "get_order_state",
        "get_open_orders", "get_open_orders_by_instrument", "get_account_summary",
        "get_positions", "get_user_trades_by_instrument")}
    | {("GET", AUTH_PATH)}
)  # fmt: skip
BLOCKED_WORDS = ("withdraw", "transfer", "api_key", "subaccount", "deposit", "address",
                 "block_trade", "custody", "set_email", "set_password", "logout")  # fmt: skip
_TIF = {None: "good_til_cancelled", TimeInForce.GTC: "good_til_cancelled",
        TimeInForce.IOC: "immediate_or_cancel", TimeInForce.FOK: "fill_or_kill"}  # fmt: skip
_TRUE = frozenset({"true", "false"})
_EXTRAS: Mapping[str, sc.ExtraRule] = {"post_only": _TRUE, "reduce_only": _TRUE}
_ACCOUNT: Mapping[str, sc.ExtraRule] = {
    "currency": frozenset({"BTC", "ETH", "USDC", "USDT", "EURR"})
}
_LABEL = sc.matches(r"[A-Za-z0-9_-]{1,64}")
_INSTRUMENT = sc.matches(r"[A-Z0-9_-]{1,64}")
RESERVED = frozenset({"instrument_name", "contracts", "amount", "type", "price", "label",
                      "order_id", "time_in_force"})  # fmt: skip

# Deribit access scopes (max_scope of a key, ``scope`` of public/auth).
SCOPE_VOCABULARY = vocabulary(
    read=("account:read", "trade:read", "wallet:read", "block_trade:read", "block_rfq:read",
          "read"),
    trade=("trade:read_write", "trade"),
    withdraw=("wallet:read_write", "withdraw"),
    transfer=("account:read_write", "block_trade:read_write", "custody:read_write",
              "custody:read", "transfer"),
)  # fmt: skip
_IGNORED = ("connection", "mainaccount")  # token kinds, not permissions
_IGNORED_PREFIXES = ("session:", "expires:", "ip:")


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.QUERY_ACCOUNT:
        extras = sc.checked_extras(order.extras, _ACCOUNT, RESERVED)
        if not extras:
            raise InvalidArgument("order.extras", "currency is required for the Deribit account")
        return Call("GET", _P + "get_account_summary", tuple(extras))
    if op is Operation.QUERY_OPEN_ORDERS:
        sc.no_extras(order)
        if (name := sc.symbol(order, required=False)) is not None:
            return Call("GET", _P + "get_open_orders_by_instrument",
                        (("instrument_name", _instrument(name)),))  # fmt: skip
        return Call("GET", _P + "get_open_orders")
    if op is Operation.PLACE_ORDER:
        return _place(order)
    sc.no_extras(order)
    target = (("order_id", _order_id(order)),)
    if op is Operation.CANCEL_ORDER:
        return Call("GET", _P + "cancel", target)
    if op is Operation.QUERY_ORDER:
        return Call("GET", _P + "get_order_state", target)
    if op is Operation.AMEND_ORDER:
        if order.stop_price is not None or order.time_in_force is not None:
            raise InvalidArgument("order", "only contracts and price can be amended on Deribit")
        sc.no_quote_size(order, "Deribit sizes orders in contracts: use quantity")
        contracts = sc.positive_decimal(order.quantity, "order.quantity")
        price = sc.positive_decimal(order.price, "order.price")
        return Call("GET", _P + "edit", (*target, ("contracts", contracts), ("price", price)))
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _place(order: OrderSpec) -> Call:
    kind = sc.check_place_shape(order)
    if kind not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidArgument("order.order_type", f"{kind.value} is not offered here for Deribit")
    sc.no_quote_size(order, "Deribit sizes orders in contracts: use quantity")
    extras = sc.checked_extras(order.extras, _EXTRAS, RESERVED)
    params = [("instrument_name", _instrument(sc.symbol(order))),
              ("contracts", sc.positive_decimal(order.quantity, "order.quantity")),
              ("type", kind.value)]  # fmt: skip
    if kind is OrderType.LIMIT:
        tif = order.time_in_force
        if tif not in _TIF:
            raise InvalidArgument("order.time_in_force", "is not offered by Deribit")
        params += [("price", sc.positive_decimal(order.price, "order.price")),
                   ("time_in_force", _TIF[tif])]  # fmt: skip
    if order.client_order_id:
        if not _LABEL(order.client_order_id):
            raise InvalidArgument("order.client_order_id", "must be 1-64 of A-Z a-z 0-9 _ -")
        params.append(("label", order.client_order_id))
    path = _P + ("buy" if order.side is Side.BUY else "sell")
    return Call("GET", path, tuple(params + extras))


def _instrument(name: str | None) -> str:
    if name is None or not _INSTRUMENT(name):
        raise InvalidArgument("order.symbol", "must be a Deribit instrument name (BTC-PERPETUAL)")
    return name


def _order_id(order: OrderSpec) -> str:
    value = sc.order_id(order.venue_order_id, "order.venue_order_id")
    if value is None:
        raise InvalidArgument("order.venue_order_id", "is required on Deribit")
    return value


def parse_permissions(
    status: int, body: bytes, vocabulary: Mapping[str, frozenset[Scope]]
) -> PermissionReport:
    """public/auth: ``result.scope`` lists the granted scopes (tokens are never copied)."""
    data = pm.json_object(status, body)
    result = data.get("result")
    if status != 200 or not isinstance(result, dict):
        error = data.get("error")
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        raise pm.refused(status, code)
    scope = result.get("scope")
    if not isinstance(scope, str):
        raise pm.venue_error("permission answer lacks scope", status)
    # docs.deribit.com/articles/access-scope: a key's max_scope bounds what a token may be
    # granted; nothing there says a token requested without ``scope`` reports all of it, and
    # docs.deribit.com/articles/authentication shows such an answer as "connection mainaccount"
    # (no access scope at all). Only an answer naming access scopes (``family:level``, ``:none``
    # included) is evidence; anything else fails closed instead of attesting a clean key.
    if not any(":" in t and not t.startswith(_IGNORED_PREFIXES) for t in scope.split()):
        raise pm.venue_error("permission answer names no access scope", status)
    tokens = [t for t in scope.split() if t not in _IGNORED
              and not t.startswith(_IGNORED_PREFIXES) and not t.endswith(":none")]  # fmt: skip
    scopes, unknown = pm.scopes_for_tokens(tokens, vocabulary)
    raw = {"scope": " ".join(t for t in scope.split() if not t.startswith("session:"))[:256]}
    if unknown:
        raw["unknownPermissions"] = ",".join(unknown)[:512]
    return PermissionReport(scopes=frozenset(scopes), raw=raw)


SPEC = VenueSpec(
    venue=Venue.DERIBIT,
    label="Deribit",
    urls={Environment.LIVE: LIVE, Environment.PAPER: TEST, Environment.TESTNET: TEST},
    endpoints=Endpoints(allowed=ALLOWED, blocked_words=BLOCKED_WORDS),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.HMAC_SHA256}),
    scheme=DeriHmac(auth_path=AUTH_PATH),
    mapping=orders,
    permissions=Permissions(Call("GET", AUTH_PATH), parse_permissions),
)
ADAPTER = SpecAdapter(SPEC)
