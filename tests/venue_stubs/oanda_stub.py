"""A loopback OANDA v20 REST API that checks the bearer token and the account it may use.

Authentication follows OANDA's documentation (reference §8.1): ``Authorization: Bearer
<personal access token>``; the token grants every account registered for it and nothing else.
There is no signature and no freshness check at OANDA: a captured request can be replayed for as
long as the token lives, which is why the vault only ever proxies OANDA.

Answers follow v20 shapes: HTTP 401 ``{"errorMessage": "Insufficient authorization to perform
request."}`` for a bad token; 201 ``{"orderCreateTransaction": ..., "lastTransactionID": ...}``
for a new order; 200 ``{"orderCancelTransaction": ...}``; ``{"order": ...}``, ``{"orders": [...]}``
and ``{"account": ...}`` for queries; 400 ``{"errorCode": ..., "errorMessage": ...}`` for a bad
order body and 404 ``ORDER_DOESNT_EXIST``. A token used on an account it does not hold gets 403
(this stub's choice of status).

Usage::

    with OandaStub({"token-1": ["101-004-1234567-001"]}) as stub:
        stub.orders["6372"]          # orders by id; stub.requests records every request
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

_PATH = re.compile(r"/v3/accounts/(?P<account>[^/]+)(?P<rest>/.*)")
_ORDER = re.compile(r"/orders/(?P<spec>[^/]+)(?P<cancel>/cancel)?")
_TIFS = {"MARKET": {"FOK", "IOC"}, "LIMIT": {"GTC", "GTD", "GFD", "FOK", "IOC"}}


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"errorCode": code, "errorMessage": message}


class OandaStub(LoopbackVenueStub):
    """OANDA v20 order and account endpoints on loopback.

    Args:
        tokens: personal access token -> the account ids it grants.
        clock: server time in epoch ms (only used for transaction times).
    """

    def __init__(self, tokens: Mapping[str, Iterable[str]], *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.tokens = {token: set(accounts) for token, accounts in tokens.items()}
        self.orders: dict[str, dict[str, Any]] = {}
        self._transactions = itertools.count(6368)

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return 401, {"errorMessage": "Insufficient authorization to perform request."}
        match = _PATH.fullmatch(request.path)
        if match is None:
            return 404, {"errorMessage": "stub: unknown endpoint"}
        account, rest = match["account"], match["rest"]
        if account not in self.tokens[token]:
            return 403, {"errorMessage": "The provided request was forbidden."}
        last = str(next(self._transactions))
        method = request.method
        if (method, rest) == ("GET", "/summary"):
            return 200, {"account": {"id": account, "currency": "USD", "balance": "100000.0000",
                                     "openTradeCount": 0,
                                     "pendingOrderCount": len(self._pending(account))},
                         "lastTransactionID": last}  # fmt: skip
        if (method, rest) == ("GET", "/pendingOrders"):
            return 200, {"orders": self._pending(account), "lastTransactionID": last}
        if (method, rest) == ("POST", "/orders"):
            return self._create(request.body, account, last)
        order_match = _ORDER.fullmatch(rest)
        if order_match is None:
            return 404, {"errorMessage": "stub: unknown endpoint"}
        order = self._find(order_match["spec"], account)
        if order is None:
            return _error(404, "ORDER_DOESNT_EXIST", "The Order specified does not exist")
        if method == "GET" and not order_match["cancel"]:
            return 200, {"order": order, "lastTransactionID": last}
        if method != "PUT":
            return 405, {"errorMessage": "stub: method not allowed"}
        order["state"] = "CANCELLED"
        cancel = {"id": last, "type": "ORDER_CANCEL", "orderID": order["id"],
                  "accountID": account, "reason": "CLIENT_REQUEST"}  # fmt: skip
        if order_match["cancel"]:
            return 200, {"orderCancelTransaction": cancel, "lastTransactionID": last}
        status, created = self._create(request.body, account, last, replaces=order["id"])
        if status != 201:
            return status, created
        return 201, {"orderCancelTransaction": cancel, **created}

    def _pending(self, account: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values()
                if o["accountID"] == account and o["state"] == "PENDING"]  # fmt: skip

    def _find(self, spec: str, account: str) -> dict[str, Any] | None:
        for order in self.orders.values():
            client_id = order.get("clientExtensions", {}).get("id")
            if order["accountID"] == account and (
                order["id"] == spec or (spec.startswith("@") and client_id == spec[1:])
            ):
                return order
        return None

    def _create(
        self, body: bytes, account: str, last: str, replaces: str | None = None
    ) -> tuple[int, Any]:
        try:
            spec = json.loads(body)["order"]
            units = Decimal(spec["units"])
            kind, tif, instrument = spec["type"], spec["timeInForce"], spec["instrument"]
        except (ValueError, KeyError, TypeError, InvalidOperation):
            return _error(400, "INVALID_ORDER", "Invalid value specified for 'order'")
        if kind not in _TIFS or tif not in _TIFS[kind] or units == 0 or "_" not in instrument:
            return _error(400, "INVALID_ORDER", "The order specification is not valid")
        if kind == "LIMIT" and "price" not in spec:
            return _error(400, "PRICE_MISSING", "The order specifies no price")
        order_id = str(next(self._transactions))
        order = {**spec, "id": order_id, "accountID": account,
                 "state": "FILLED" if kind == "MARKET" else "PENDING"}  # fmt: skip
        if replaces is not None:
            order["replacesOrderID"] = replaces
        self.orders[order_id] = order
        transaction = {**spec, "id": order_id, "accountID": account, "type": f"{kind}_ORDER",
                       "reason": "REPLACEMENT" if replaces else "CLIENT_ORDER"}  # fmt: skip
        return 201, {"orderCreateTransaction": transaction, "relatedTransactionIDs": [order_id],
                     "lastTransactionID": order_id}  # fmt: skip
