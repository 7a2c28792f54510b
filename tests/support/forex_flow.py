"""What the session-venue tests need to know about one forex/CFD platform and its loopback stub.

Each session venue's stub module (``tests/venue_stubs/<venue>_stub.py``) exports ``FLOW``, a
:class:`VenueFlow`; the shared tests (onboarding -> order with SL/TP -> amend SL/TP -> close,
canary scan, 100 concurrent orders -> one login, expiry, lockout, broker down) run over every
``FLOW`` the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Account:
    """One user's login at the platform, generated at run time (the password is a canary)."""

    password: str = field(default_factory=lambda: "pw-canary-" + secrets.token_hex(12))
    api_key: str = field(default_factory=lambda: "appkey" + secrets.token_hex(8))
    username: str = field(default_factory=lambda: f"user{secrets.token_hex(4)}@example.test")
    server: str = "DEMO-SERVER"
    account_id: str = "1001"


@dataclass(frozen=True)
class VenueFlow:
    """One platform as the shared session tests drive it.

    Attributes:
        venue: canonical venue name (``Venue.value``, the ``signing.venue_base_urls`` key).
        broker: the ``trading_pb2.BROKER_*`` number.
        stub: starts the platform's stub knowing ``account`` (a context manager whose value has
            ``base_url``, ``logins`` (int: successful logins so far), ``failed_logins`` (int),
            ``expire_sessions()`` (every token now answers the venue's "session expired"),
            ``positions`` (dict: position id -> dict with at least ``stopLoss`` / ``takeProfit``
            as the stub stores them, None when unset) and ``requests``).
        material: ``SecretMaterial`` fields for ``account`` (password in ``secret``).
        symbol, quantity: what the flow trades (the venue's own instrument name and unit).
        stop_loss, take_profit, amended_stop_loss: price levels as decimal strings.
        position_id: the venue's position id for the order just placed, from the stub and the
            venue's answer body to the place request.
        wrong_password_locks_after: failed logins after which the stub locks the account.
        amend: for a venue whose position amend needs more than the generic one (both levels,
            the position's side, a client order id), the ``Order`` fields to change, from the
            stub and the position id; a None value removes that field.
    """

    venue: str
    broker: int
    stub: Callable[[Account], AbstractContextManager[Any]]
    material: Callable[[Account], dict[str, str]]
    symbol: str
    quantity: str
    stop_loss: str
    take_profit: str
    amended_stop_loss: str
    position_id: Callable[[Any, bytes], str]
    wrong_password_locks_after: int = 5
    amend: Callable[[Any, str], dict[str, Any]] | None = None
