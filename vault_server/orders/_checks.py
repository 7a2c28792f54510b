"""Order policy checks and replay protection, run before any signature exists.

What each rule bounds, per operation (``check_policy``, ``claim_order``):

==================  ======  ======  ======  =========  =========  ==========
rule                place   amend   close   amend pos  query pos  other
==================  ======  ======  ======  =========  =========  ==========
allowed_symbols     yes     yes     yes*    yes*       -          if given
allowed_sides       yes     yes     -       -          -          -
allowed_order_types yes     yes     -       -          -          -
max_quantity        yes     yes     yes     -          -          -
max_notional        yes     yes     -       -          -          -
rate + replay       yes     -       yes     yes        -          -
==================  ======  ======  ======  =========  =========  ==========

* A position is addressed by the venue's id, which does not name the instrument, so under a
  symbol allow-list a close or an amend of a position must state its ``symbol`` (refused
  otherwise) and the stated symbol is checked. The vault cannot tie a position id to its
  instrument without asking the venue: at venues whose position requests carry only the id
  (OANDA trades) the allow-list bounds what the caller states, not what the venue closes.

Choices, and why:

* ``max_notional`` uses the entry price only (the limit or stop price). A stop loss or take
  profit price is where the position may be *closed*, not what it costs to open, so it is never
  an entry price: a market order with a stop loss still has no price the vault could trust and
  is refused under a notional limit, as before.
* A close reduces exposure and carries no price: ``max_quantity`` bounds a partial close (a
  quantity larger than any order the credential may place is a wrong signal), ``max_notional``
  does not apply; a whole close (no quantity) closes what is open, whatever its size.
* Sides and order types describe new exposure: a close or an amend of protective levels has
  neither, so those rules do not apply to them.
* Closing and amending a position change it: like a placement they need a client order id
  (``check_client_order_id``), count against the rate limit and are refused when replayed
  inside the freshness window (``claim_order``). Queries are not rate-limited here.
"""

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


# Operations that change what the account holds: client order id required, rate-limited,
# replay-refused (``claim_order``).
CLAIMED_OPERATIONS = frozenset(
    {Operation.PLACE_ORDER, Operation.CLOSE_POSITION, Operation.AMEND_POSITION}
)
_POSITION_OPERATIONS = (Operation.CLOSE_POSITION, Operation.AMEND_POSITION)


def is_claimed(order: OrderSpec) -> bool:
    """Whether ``order`` is rate-limited and replay-checked by its client order id."""
    return order.operation in CLAIMED_OPERATIONS and bool(order.client_order_id)


def check_policy(policy: OrderPolicy, order: OrderSpec) -> None:
    """Raise ``ORDER_POLICY_VIOLATION`` naming the first rule the order breaks (module table)."""
    if policy.allowed_symbols:
        if order.symbol is None and order.operation in _POSITION_OPERATIONS:
            raise _violation(
                "allowed_symbols", "under a symbol allow-list a position operation names its symbol"
            )
        if order.symbol is not None and order.symbol not in policy.allowed_symbols:
            raise _violation("allowed_symbols", "the symbol is not allowed for this credential")
    if order.operation is Operation.CLOSE_POSITION:
        _check_max_quantity(policy, order)
        return
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
    _check_max_quantity(policy, order)
    # The entry price only: a stop loss / take profit price is not what the order costs.
    max_notional = parse_decimal("policy.max_notional", policy.max_notional)
    if max_notional is not None and order.quantity is not None:
        price = order.price or order.stop_price
        if price is None:
            raise _violation("max_notional", "a notional limit needs a price on every order")
        if order.quantity * price > max_notional:
            raise _violation("max_notional", "price x quantity exceeds the credential's maximum")


def _check_max_quantity(policy: OrderPolicy, order: OrderSpec) -> None:
    max_qty = parse_decimal("policy.max_quantity", policy.max_quantity)
    if max_qty is not None and order.quantity is not None and order.quantity > max_qty:
        raise _violation("max_quantity", "the quantity exceeds the credential's maximum")


def check_client_order_id(order: OrderSpec) -> None:
    coid = order.client_order_id
    if coid is not None and (len(coid) > 64 or not set(coid) <= _ID_CHARS):
        raise InvalidArgument("order.client_order_id", "1-64 characters of [A-Za-z0-9-_.:/]")
    if order.operation is Operation.PLACE_ORDER and not coid:
        raise InvalidArgument("order.client_order_id", "is required to place an order")
    if order.operation in _POSITION_OPERATIONS and not coid:
        raise InvalidArgument(
            "order.client_order_id",
            f"is required to {order.operation.value} (replay protection and rate limit)",
        )


def claim_order(
    session: Session,
    cred: Credential,
    order: OrderSpec,
    policy: OrderPolicy,
    now: dt.datetime,
    expire: dt.datetime,
) -> None:
    """Rate-limit placements, closes and position amends (``CLAIMED_OPERATIONS``) and refuse a
    client order id already signed inside its window (one id space for all of them).

    Runs in the signing transaction, with the credential row locked: the claim commits with the
    audit event, or not at all.
    """
    if not is_claimed(order) or order.client_order_id is None:
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
