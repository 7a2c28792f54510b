"""Orders, signed requests and routing contexts <-> API messages.

Which fields each operation takes (the forex/CFD position operations; ``_position_fields``):

=================  =========================================================================
operation          fields
=================  =========================================================================
PLACE, AMEND       the order fields as before, plus optional ``stop_loss`` / ``take_profit``
CLOSE_POSITION     ``position_id`` (required), ``quantity`` (optional: a partial close; some
                   venues need the size even to close it whole), ``symbol`` (optional: what
                   the policy's allow-list is checked against), ``side`` (optional: the
                   *position's* side, BUY for a long, for venues that deal the close: IG,
                   Match-Trader)
AMEND_POSITION     ``position_id`` (required), ``stop_loss`` and/or ``take_profit`` (one at
                   least), ``symbol`` (optional, as above), ``side`` (optional: the position's
                   side, for venues whose protective orders are separate orders: DXtrade),
                   ``venue_order_id`` (optional: that protective order, to modify it)
QUERY_POSITIONS    none (``extras`` only, for the venue to judge)
=================  =========================================================================

Anything else an operation does not take is refused with ``INVALID_ARGUMENT`` naming the field:
a field the vault would ignore is one the caller believes did something (a stop loss on a
cancel). A protective level is an absolute ``price`` or a ``distance`` from entry, exactly one,
a plain positive decimal. On a limit order with an attached price level, the stop loss must lie
on the losing side of the limit price and the take profit on the winning side.
"""

from __future__ import annotations

import re

from pipsync.vault.v1 import signing_service_pb2, trading_pb2

from vault_server.brokers.base import (
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    ProtectiveLevel,
    Side,
    SizeUnit,
    TimeInForce,
)
from vault_server.core.errors import InvalidArgument
from vault_server.egress.client import VenueResponse
from vault_server.orders import parse_decimal
from vault_server.rpc.convert import timestamp
from vault_server.signing import RoutingView

MAX_EXTRAS = 16
OPERATIONS = {
    trading_pb2.ORDER_OPERATION_PLACE: Operation.PLACE_ORDER,
    trading_pb2.ORDER_OPERATION_CANCEL: Operation.CANCEL_ORDER,
    trading_pb2.ORDER_OPERATION_AMEND: Operation.AMEND_ORDER,
    trading_pb2.ORDER_OPERATION_QUERY_ORDER: Operation.QUERY_ORDER,
    trading_pb2.ORDER_OPERATION_QUERY_OPEN_ORDERS: Operation.QUERY_OPEN_ORDERS,
    trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT: Operation.QUERY_ACCOUNT,
    trading_pb2.ORDER_OPERATION_CLOSE_POSITION: Operation.CLOSE_POSITION,
    trading_pb2.ORDER_OPERATION_AMEND_POSITION: Operation.AMEND_POSITION,
    trading_pb2.ORDER_OPERATION_QUERY_POSITIONS: Operation.QUERY_POSITIONS,
}
SIZE_UNITS = {
    trading_pb2.SIZE_UNIT_UNSPECIFIED: None,
    trading_pb2.SIZE_UNIT_BASE_UNITS: SizeUnit.BASE_UNITS,
    trading_pb2.SIZE_UNIT_LOTS: SizeUnit.LOTS,
    trading_pb2.SIZE_UNIT_CONTRACTS: SizeUnit.CONTRACTS,
}
# Venue position ids: OANDA trade ids (digits), IG deal ids, cTrader/MetaApi/TradeLocker ids.
_POSITION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_POSITION_OPS = (Operation.CLOSE_POSITION, Operation.AMEND_POSITION)
# Operations that may carry a stop loss / take profit.
_PROTECTED_OPS = (Operation.PLACE_ORDER, Operation.AMEND_ORDER, Operation.AMEND_POSITION)
# The order fields a position operation may carry, besides operation, client_order_id, extras.
_POSITION_FIELDS = {
    Operation.CLOSE_POSITION: frozenset({"position_id", "quantity", "symbol", "side", "size_unit"}),
    Operation.AMEND_POSITION: frozenset(
        {"position_id", "stop_loss", "take_profit", "symbol", "side", "venue_order_id"}
    ),
    Operation.QUERY_POSITIONS: frozenset(),
}
_CHECKED_FIELDS = ("symbol", "side", "type", "quantity", "price", "stop_price", "time_in_force",
                   "venue_order_id", "quote_quantity", "stop_loss", "take_profit", "position_id",
                   "size_unit")  # fmt: skip
SIDES = {trading_pb2.ORDER_SIDE_BUY: Side.BUY, trading_pb2.ORDER_SIDE_SELL: Side.SELL}
TYPES = {
    trading_pb2.ORDER_TYPE_MARKET: OrderType.MARKET,
    trading_pb2.ORDER_TYPE_LIMIT: OrderType.LIMIT,
    trading_pb2.ORDER_TYPE_STOP_LOSS: OrderType.STOP_LOSS,
    trading_pb2.ORDER_TYPE_STOP_LIMIT: OrderType.STOP_LIMIT,
    trading_pb2.ORDER_TYPE_TAKE_PROFIT: OrderType.TAKE_PROFIT,
    trading_pb2.ORDER_TYPE_TAKE_PROFIT_LIMIT: OrderType.TAKE_PROFIT_LIMIT,
}
TIFS = {
    trading_pb2.TIME_IN_FORCE_GTC: TimeInForce.GTC,
    trading_pb2.TIME_IN_FORCE_IOC: TimeInForce.IOC,
    trading_pb2.TIME_IN_FORCE_FOK: TimeInForce.FOK,
    trading_pb2.TIME_IN_FORCE_GTD: TimeInForce.GTD,
    trading_pb2.TIME_IN_FORCE_DAY: TimeInForce.DAY,
}
_STATE = {
    "active": signing_service_pb2.RoutingContext.STATE_ACTIVE,
    "ended": signing_service_pb2.RoutingContext.STATE_ENDED,
    "expired": signing_service_pb2.RoutingContext.STATE_EXPIRED,
}


def _text(field: str, value: str, limit: int) -> str | None:
    if not value:
        return None
    if len(value) > limit or not value.isprintable():
        raise InvalidArgument(field, f"at most {limit} printable characters")
    return value


def _present(msg: trading_pb2.Order, name: str) -> bool:
    if name in ("stop_loss", "take_profit"):
        return msg.HasField(name)
    return bool(getattr(msg, name))


def _position_fields(msg: trading_pb2.Order, operation: Operation) -> None:
    """Refuse the fields an operation does not take (see the module docstring)."""
    allowed = _POSITION_FIELDS.get(operation)
    if allowed is None:
        for name in ("position_id", "stop_loss", "take_profit"):
            if _present(msg, name) and (name == "position_id" or operation not in _PROTECTED_OPS):
                raise InvalidArgument(f"order.{name}", f"does not apply to {operation.value}")
        return
    for name in _CHECKED_FIELDS:
        if name not in allowed and _present(msg, name):
            raise InvalidArgument(f"order.{name}", f"does not apply to {operation.value}")
    if operation in _POSITION_OPS and not msg.position_id:
        raise InvalidArgument("order.position_id", f"is required to {operation.value}")
    if operation is Operation.AMEND_POSITION and not (
        msg.HasField("stop_loss") or msg.HasField("take_profit")
    ):
        raise InvalidArgument("order.stop_loss", "or order.take_profit is required to amend")


def _level(msg: trading_pb2.Order, name: str) -> ProtectiveLevel | None:
    """A stop loss / take profit: exactly one of price or distance, a plain positive decimal."""
    if not msg.HasField(name):
        return None
    level = getattr(msg, name)
    which = level.WhichOneof("level")
    if which is None:
        raise InvalidArgument(f"order.{name}", "exactly one of price or distance is required")
    field = f"order.{name}.{which}"
    value = parse_decimal(field, getattr(level, which))
    if value is None:
        raise InvalidArgument(field, "must be a plain positive decimal string")
    if which == "price":
        return ProtectiveLevel(price=value)
    return ProtectiveLevel(distance=value)


def _position_id(value: str) -> str | None:
    if not value:
        return None
    if not _POSITION_ID.fullmatch(value):
        raise InvalidArgument("order.position_id", "1-64 characters of [A-Za-z0-9_.:-]")
    return value


def _check_sides(spec: OrderSpec) -> None:
    """A limit order's attached price levels must bracket its limit price the right way.

    A buy loses below its entry, so its stop loss is below the limit price and its take profit
    above (a sell: the reverse). A level on the wrong side would trigger at once or never: the
    signal is wrong, and the vault says so before the venue fills half of it.
    """
    entry = spec.price
    if spec.order_type is not OrderType.LIMIT or entry is None or spec.side is None:
        return
    buy = spec.side is Side.BUY
    for name, level, below in (("stop_loss", spec.stop_loss, buy),
                               ("take_profit", spec.take_profit, not buy)):  # fmt: skip
        if level is None or level.price is None:
            continue
        if (level.price < entry) != below:
            where = "below" if below else "above"
            raise InvalidArgument(
                f"order.{name}.price", f"must be {where} the limit price of a {spec.side.value}"
            )


def order_of(msg: trading_pb2.Order) -> OrderSpec:
    if msg.operation not in OPERATIONS:
        raise InvalidArgument("order.operation", "must be set")
    if msg.size_unit not in SIZE_UNITS:
        raise InvalidArgument("order.size_unit", "unknown size unit")
    operation = OPERATIONS[msg.operation]
    _position_fields(msg, operation)
    if len(msg.extras) > MAX_EXTRAS:
        raise InvalidArgument("order.extras", f"at most {MAX_EXTRAS} entries")
    for key, value in msg.extras.items():
        if not key or len(key) > 64 or len(value) > 256:
            raise InvalidArgument("order.extras", "keys 1-64 and values up to 256 characters")
    quote_quantity = parse_decimal("order.quote_quantity", msg.quote_quantity)
    if quote_quantity is not None:
        if msg.operation != trading_pb2.ORDER_OPERATION_PLACE:
            raise InvalidArgument("order.quote_quantity", "applies to placing an order only")
        if msg.quantity:
            raise InvalidArgument(
                "order.quote_quantity", "is mutually exclusive with order.quantity"
            )
    spec = OrderSpec(
        operation=operation,
        symbol=_text("order.symbol", msg.symbol, 64),
        side=SIDES.get(msg.side),
        order_type=TYPES.get(msg.type),
        quantity=parse_decimal("order.quantity", msg.quantity),
        price=parse_decimal("order.price", msg.price),
        stop_price=parse_decimal("order.stop_price", msg.stop_price),
        time_in_force=TIFS.get(msg.time_in_force),
        client_order_id=msg.client_order_id or None,
        venue_order_id=_text("order.venue_order_id", msg.venue_order_id, 128),
        extras=dict(msg.extras),
        quote_quantity=quote_quantity,
        stop_loss=_level(msg, "stop_loss"),
        take_profit=_level(msg, "take_profit"),
        position_id=_position_id(msg.position_id),
        size_unit=SIZE_UNITS[msg.size_unit],
    )
    _check_sides(spec)
    return spec


def signed_request(req: PreparedRequest) -> signing_service_pb2.SignedRequest:
    msg = signing_service_pb2.SignedRequest(
        method=req.method,
        url=req.url,
        headers=[trading_pb2.HttpHeader(name=k, value=v) for k, v in req.headers],
        body=req.body,
    )
    # Straight from the epoch milliseconds (no datetime round trip on the hot path).
    seconds, millis = divmod(req.expire_at_ms, 1000)
    msg.expire_time.seconds = seconds
    msg.expire_time.nanos = millis * 1_000_000
    return msg


def venue_headers(resp: VenueResponse) -> list[trading_pb2.HttpHeader]:
    return [trading_pb2.HttpHeader(name=k, value=v) for k, v in resp.headers]


def routing_context(view: RoutingView) -> signing_service_pb2.RoutingContext:
    rc = view.context
    msg = signing_service_pb2.RoutingContext(
        name=view.name,
        credential=f"workspaces/{view.workspace}/credentials/{view.credential}",
        strategy_id=rc.strategy_id,
        owner=rc.owner,
        state=_STATE[view.state],
    )
    for field, value in (
        ("create_time", rc.create_time),
        ("expire_time", rc.expire_time),
        ("end_time", rc.end_time),
    ):
        ts = timestamp(value)
        if ts is not None:
            getattr(msg, field).CopyFrom(ts)
    return msg
