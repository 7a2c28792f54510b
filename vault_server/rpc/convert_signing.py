"""Orders, signed requests and routing contexts <-> API messages."""

from __future__ import annotations

from pipsync.vault.v1 import signing_service_pb2, trading_pb2

from vault_server.brokers.base import (
    Operation,
    OrderSpec,
    OrderType,
    PreparedRequest,
    Side,
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
}
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


def order_of(msg: trading_pb2.Order) -> OrderSpec:
    if msg.operation not in OPERATIONS:
        raise InvalidArgument("order.operation", "must be set")
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
    return OrderSpec(
        operation=OPERATIONS[msg.operation],
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
    )


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
