"""Hyperliquid (perpetuals and spot on its L1): EIP-712 agent ("API wallet") keys, detached.

Scheme, nonce and freshness rules: ``schemes/l1_action.py`` (the whole action is signed, order
fields included; vault-owned nonce; ``expiresAfter`` = now + the capped window). Only agent keys
are accepted: the credential is the agent's secp256k1 private key (``api_key`` = its address,
``account_id`` = the master account it trades for). An agent can place and cancel orders but
cannot withdraw or transfer (those are user-signed actions that need the master's key).

=================  ===========================  ===============================================
operation          request                      body
=================  ===========================  ===============================================
place              ``POST /exchange`` order     ``{"type":"order","orders":[wire],
                                                "grouping":"na"}``
cancel             ``POST /exchange`` cancel    ``{"a": asset, "o": oid}`` or, by client id,
                   | cancelByCloid              ``{"asset": asset, "cloid": cloid}``
amend              ``POST /exchange`` modify    ``{"type":"modify","oid": oid|cloid,
                                                "order": wire}`` (the full new order)
query order        ``POST /info`` orderStatus   ``user`` = master, ``oid`` = oid | cloid
open orders        ``POST /info`` openOrders    ``user`` = master
account            ``POST /info``               ``user`` = master
                   clearinghouseState
=================  ===========================  ===============================================

Order wire (SDK ``order_request_to_order_wire``, keys in this order): ``a`` asset index, ``b``
is buy, ``p`` price, ``s`` size, ``r`` reduce only, ``t`` type, ``c`` cloid (optional). The asset
index cannot be known by the vault (it is the coin's position in the venue's ``meta`` universe,
spot assets are 10000 + index), so it comes from the required extra ``asset`` (digits), and
``order.symbol`` must be the same index: a symbol allow-list then binds what is signed.

Units: ``s`` is the size in the coin (base units, ``order.quantity``); there is no quote-sized
order. Prices and sizes are decimal strings with at most 8 decimals, without trailing zeros
(the SDK's ``float_to_wire``). Hyperliquid has no market order: send an IOC limit order at the
worst acceptable price. Types: limit (``Gtc``, ``Ioc``; ``post_only=true`` -> ``Alo``);
stop-loss / take-profit are trigger orders (``tpsl`` ``sl`` / ``tp``, ``triggerPx`` =
``stop_price``); their market forms still carry ``order.price`` as the worst fill price
(``isMarket`` true), the limit forms are ``isMarket`` false. Client order ids are cloids:
``0x`` + 32 hex digits.

Attestation: ``POST /info {"type":"userRole","user": <agent address>}`` must answer
``{"role":"agent","data":{"user": <the configured master>}}``; any other role (a master
account's own key, a vault, a sub-account, an unknown or expired agent) or another master
quarantines the credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.schemes.l1_action import EXCHANGE, INFO, L1Action
from vault_server.brokers.spec import Call, Permissions, SpecAdapter, VenueSpec, vocabulary
from vault_server.brokers.venues import hyperliquid_roles as roles
from vault_server.core.errors import InvalidArgument, OperationNotSupported

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_CLOID = re.compile(r"0x[0-9a-fA-F]{32}")
_TRUE_FALSE = frozenset({"true", "false"})
_ASSET = sc.matches(r"[0-9]{1,6}")
_PLACE_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "asset": _ASSET, "reduceOnly": _TRUE_FALSE, "post_only": _TRUE_FALSE,
    "vaultAddress": sc.matches(ADDRESS.pattern),
}  # fmt: skip
_TARGET_EXTRAS: Mapping[str, sc.ExtraRule] = {
    "asset": _ASSET,
    "vaultAddress": sc.matches(ADDRESS.pattern),
}
RESERVED = frozenset({"a", "b", "p", "s", "r", "t", "c", "type", "nonce", "expiresAfter"})
_TPSL = {OrderType.STOP_LOSS: "sl", OrderType.STOP_LIMIT: "sl",
         OrderType.TAKE_PROFIT: "tp", OrderType.TAKE_PROFIT_LIMIT: "tp"}  # fmt: skip
_MAX_DECIMALS = 8

# Hyperliquid has no key scopes of its own: an agent trades, a master key can do everything.
SCOPE_VOCABULARY = vocabulary(
    read=("read",),
    trade=("trade", "agent", "api-wallet"),
    withdraw=("withdraw", "withdraw3", "master"),
    transfer=("transfer", "usdSend", "spotSend", "usdClassTransfer", "subAccountTransfer",
              "vaultTransfer", "approveAgent", "sendAsset"),
)  # fmt: skip


def address(value: str | None, field: str) -> str:
    if value is None or not ADDRESS.fullmatch(value):
        raise InvalidArgument(field, "must be a 0x-prefixed 20-byte hex address")
    return value.lower()


def wire_decimal(value: Decimal | None, field: str) -> str:
    text = sc.positive_decimal(value, field)
    if "." in text and len(text.split(".", 1)[1]) > _MAX_DECIMALS:
        raise InvalidArgument(field, f"Hyperliquid takes at most {_MAX_DECIMALS} decimals")
    return text


def _extras(order: OrderSpec, allowed: Mapping[str, sc.ExtraRule]) -> dict[str, str]:
    """Checked extras; ``asset`` is required and ``order.symbol`` (required for new orders)
    must be that same index, so a symbol allow-list binds what is signed."""
    extras = dict(sc.checked_extras(order.extras, allowed, RESERVED))
    if "asset" not in extras:
        raise InvalidArgument("order.extras", "asset (the venue's asset index) is required")
    optional = order.operation is Operation.CANCEL_ORDER and not order.symbol
    if not optional and order.symbol != extras["asset"]:
        raise InvalidArgument("order.symbol", "must be the asset index given in extras.asset")
    return extras


def _cloid(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _CLOID.fullmatch(value):
        raise InvalidArgument("order.client_order_id", "must be 0x + 32 hex digits (a cloid)")
    return value.lower()


def _oid(value: str) -> int:
    if not value.isdigit() or len(value) > 19:
        raise InvalidArgument("order.venue_order_id", "must be Hyperliquid's numeric oid")
    return int(value)


def _type_wire(order: OrderSpec, kind: OrderType, post_only: bool) -> dict[str, Any]:
    tif = order.time_in_force
    if kind is OrderType.LIMIT:
        if tif not in (None, TimeInForce.GTC, TimeInForce.IOC):
            raise InvalidArgument("order.time_in_force", f"{tif.value} is not offered")
        if post_only and tif is TimeInForce.IOC:
            raise InvalidArgument("order.extras", "post_only cannot be combined with IOC")
        name = "Alo" if post_only else ("Ioc" if tif is TimeInForce.IOC else "Gtc")
        return {"limit": {"tif": name}}
    if post_only or tif is not None:
        raise InvalidArgument("order.time_in_force", "trigger orders take no time in force")
    return {"trigger": {"isMarket": kind in (OrderType.STOP_LOSS, OrderType.TAKE_PROFIT),
                        "triggerPx": wire_decimal(order.stop_price, "order.stop_price"),
                        "tpsl": _TPSL[kind]}}  # fmt: skip


def order_wire(order: OrderSpec, extras: dict[str, str]) -> dict[str, Any]:
    kind, side = order.order_type, order.side
    if side is None or kind is None:
        raise InvalidArgument("order.side", "and order.order_type are required")
    if kind is OrderType.MARKET:
        raise InvalidArgument(
            "order.order_type", "Hyperliquid has no market order: send an IOC limit order"
        )
    sc.no_quote_size(order, "Hyperliquid sizes every order in the coin (order.quantity)")
    if order.stop_price is not None and kind not in sc.TRIGGERED:
        raise InvalidArgument("order.stop_price", f"must not be set for {kind.value} orders")
    wire: dict[str, Any] = {
        "a": int(extras["asset"]),
        "b": side is Side.BUY,
        "p": wire_decimal(order.price, "order.price"),
        "s": wire_decimal(order.quantity, "order.quantity"),
        "r": extras.get("reduceOnly") == "true",
        "t": _type_wire(order, kind, extras.get("post_only") == "true"),
    }
    cloid = _cloid(order.client_order_id)
    if cloid is not None:
        wire["c"] = cloid
    return wire


def _exchange(action: dict[str, Any], extras: dict[str, str]) -> Call:
    body: dict[str, Any] = {"action": action}
    if "vaultAddress" in extras:
        body["vaultAddress"] = extras["vaultAddress"].lower()
    return Call("POST", EXCHANGE, json=body)


def orders(order: OrderSpec, credential: VenueCredential) -> Call:
    op = order.operation
    if op is Operation.PLACE_ORDER:
        extras = _extras(order, _PLACE_EXTRAS)
        action = {"type": "order", "orders": [order_wire(order, extras)], "grouping": "na"}
        return _exchange(action, extras)
    if op is Operation.CANCEL_ORDER:
        return _cancel(order)
    if op is Operation.AMEND_ORDER:
        extras = _extras(order, _PLACE_EXTRAS)
        target: int | str
        if order.venue_order_id:
            target = _oid(order.venue_order_id)
        else:
            target = _cloid(order.client_order_id) or ""
            if not target:
                raise InvalidArgument(
                    "order.venue_order_id", "or order.client_order_id is required"
                )
        modify: dict[str, Any] = {
            "type": "modify",
            "oid": target,
            "order": order_wire(order, extras),
        }
        return _exchange(modify, extras)
    sc.no_extras(order)
    user = address(credential.account_id, "credential.account_id")
    if op is Operation.QUERY_ORDER:
        return Call("POST", INFO, json={"type": "orderStatus", "user": user, "oid": _target(order)})
    if op is Operation.QUERY_OPEN_ORDERS:
        return Call("POST", INFO, json={"type": "openOrders", "user": user})
    if op is Operation.QUERY_ACCOUNT:
        return Call("POST", INFO, json={"type": "clearinghouseState", "user": user})
    raise OperationNotSupported("operation not supported", metadata={"operation": op.value})


def _target(order: OrderSpec) -> int | str:
    venue_id, cloid = order.venue_order_id or None, _cloid(order.client_order_id)
    if (venue_id is None) == (cloid is None):
        raise InvalidArgument(
            "order.venue_order_id", "exactly one of it and order.client_order_id is required"
        )
    return _oid(venue_id) if venue_id is not None else cloid or ""


def _cancel(order: OrderSpec) -> Call:
    extras = _extras(order, _TARGET_EXTRAS)
    asset, target = int(extras["asset"]), _target(order)
    if isinstance(target, int):
        action: dict[str, Any] = {"type": "cancel", "cancels": [{"a": asset, "o": target}]}
    else:
        action = {"type": "cancelByCloid", "cancels": [{"asset": asset, "cloid": target}]}
    return _exchange(action, extras)


SPEC = VenueSpec(
    venue=Venue.HYPERLIQUID,
    label="Hyperliquid",
    urls={
        Environment.LIVE: "https://api.hyperliquid.xyz",
        Environment.TESTNET: "https://api.hyperliquid-testnet.xyz",
    },
    missing_environment="Hyperliquid has no paper environment (use testnet)",
    endpoints=Endpoints(allowed=frozenset({("POST", EXCHANGE), ("POST", INFO)})),
    scope_vocabulary=SCOPE_VOCABULARY,
    algorithms=frozenset({KeyAlgorithm.SECP256K1}),
    generatable=frozenset({KeyAlgorithm.SECP256K1}),
    scheme=L1Action(),
    mapping=orders,
    permissions=Permissions(call=Call("POST", INFO, json={"type": "userRole"}), parse=roles.parse),
    needs_nonce=True,
)


class HyperliquidAdapter(SpecAdapter):
    """The spec adapter, with the attestation query and answer bound to the credential."""

    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        sc.check_credential(self.venue, self.algorithms, credential)
        call = Call("POST", INFO, json={"type": "userRole", "user": roles.agent_of(credential)})
        return self._sign(call, credential, ctx)

    def parse_permissions_for(self, credential: VenueCredential, status: int, body: bytes) -> Any:
        master = address(credential.account_id, "credential.account_id")
        return roles.parse(status, body, self.scope_vocabulary, master=master)


ADAPTER = HyperliquidAdapter(SPEC)
