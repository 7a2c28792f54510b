"""Order policy checks and replay protection, run before any signature exists."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from vault_server.brokers.base import Operation, OrderSpec
from vault_server.core.errors import DuplicateClientOrderId, InvalidArgument, OrderPolicyViolation
from vault_server.orders._policy import OrderPolicy, parse_decimal
from vault_server.orders._units import check_quote_sized
from vault_server.storage.models import Credential, SignedOrder

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:/")


def _violation(rule: str, message: str) -> OrderPolicyViolation:
    return OrderPolicyViolation(message, metadata={"rule": rule})


def check_policy(policy: OrderPolicy, order: OrderSpec) -> None:
    """Raise ``ORDER_POLICY_VIOLATION`` naming the first rule the order breaks."""
    if (
        order.symbol is not None
        and policy.allowed_symbols
        and order.symbol not in policy.allowed_symbols
    ):
        raise _violation("allowed_symbols", "the symbol is not allowed for this credential")
    if order.operation not in (Operation.PLACE_ORDER, Operation.AMEND_ORDER):
        return
    if (
        order.side is not None
        and policy.allowed_sides
        and order.side.value not in policy.allowed_sides
    ):
        raise _violation("allowed_sides", "the side is not allowed for this credential")
    if (
        order.order_type is not None
        and policy.allowed_order_types
        and order.order_type.value not in policy.allowed_order_types
    ):
        raise _violation("allowed_order_types", "the order type is not allowed")
    check_quote_sized(policy, order)  # quote_quantity: its own units (order_units)
    max_qty = parse_decimal("policy.max_quantity", policy.max_quantity)
    if max_qty is not None and order.quantity is not None and order.quantity > max_qty:
        raise _violation("max_quantity", "the quantity exceeds the credential's maximum")
    max_notional = parse_decimal("policy.max_notional", policy.max_notional)
    if max_notional is not None and order.quantity is not None:
        price = order.price or order.stop_price
        if price is None:
            raise _violation("max_notional", "a notional limit needs a price on every order")
        if order.quantity * price > max_notional:
            raise _violation("max_notional", "price x quantity exceeds the credential's maximum")


def check_client_order_id(order: OrderSpec) -> None:
    coid = order.client_order_id
    if coid is not None and (len(coid) > 64 or not set(coid) <= _ID_CHARS):
        raise InvalidArgument("order.client_order_id", "1-64 characters of [A-Za-z0-9-_.:/]")
    if order.operation is Operation.PLACE_ORDER and not coid:
        raise InvalidArgument("order.client_order_id", "is required to place an order")


def claim_order(
    session: Session,
    cred: Credential,
    order: OrderSpec,
    policy: OrderPolicy,
    now: dt.datetime,
    expire: dt.datetime,
) -> None:
    """Rate-limit placements and refuse a client order id already signed inside its window.

    Runs in the signing transaction, with the credential row locked: the claim commits with the
    audit event, or not at all.
    """
    if order.operation is not Operation.PLACE_ORDER or not order.client_order_id:
        return
    if policy.max_orders_per_interval:
        since = now - dt.timedelta(seconds=policy.rate_interval_s)
        count = session.execute(
            select(func.count())
            .select_from(SignedOrder)
            .where(
                SignedOrder.workspace_id == cred.workspace_id,
                SignedOrder.credential_id == cred.id,
                SignedOrder.sign_time > since,
            )
        ).scalar_one()
        if count >= policy.max_orders_per_interval:
            raise _violation("max_orders_per_interval", "too many orders in the rate interval")
    existing = session.execute(
        select(SignedOrder)
        .where(
            SignedOrder.workspace_id == cred.workspace_id,
            SignedOrder.credential_id == cred.id,
            SignedOrder.client_order_id == order.client_order_id,
        )
        .with_for_update()
    ).scalar_one_or_none()
    if existing is not None:
        if existing.expire_time > now:
            raise DuplicateClientOrderId(
                "this client order id was already signed and is still fresh",
                metadata={"clientOrderId": order.client_order_id},
            )
        # Free the id but keep the row: that order still counts against the rate interval.
        # "~" is not a client order id character, so the tombstone never collides with one.
        session.execute(
            update(SignedOrder)
            .where(SignedOrder.id == existing.id)
            .values(client_order_id=f"~{existing.id}")
        )
    session.add(
        SignedOrder(
            workspace_id=cred.workspace_id,
            credential_id=cred.id,
            client_order_id=order.client_order_id,
            sign_time=now,
            expire_time=expire,
        )
    )
    session.flush()


# Claims older than this can matter to no rule: rate intervals are at most a day and freshness
# windows at most a minute.
CLAIM_RETENTION = dt.timedelta(days=1, minutes=5)


def prune_claims(session: Session, now: dt.datetime) -> int:
    """Delete the session workspace's client-order-id claims no rule can still need."""
    result = session.execute(
        delete(SignedOrder)
        .where(SignedOrder.sign_time < now - CLAIM_RETENTION, SignedOrder.expire_time < now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
