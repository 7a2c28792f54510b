"""A loopback Alpaca Trading API that checks the static key-id / secret-key headers.

Authentication follows Alpaca's documentation (reference §7.1): every request carries
``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY``; both must match a registered pair. Nothing is
signed and nothing expires, so a captured request replays for as long as the key lives (the
vault only ever proxies Alpaca); the one replay guard is Alpaca's unique ``client_order_id``.

Answers follow Alpaca's shapes: HTTP 401 ``{"code": 40110000, "message": "request is not
authorized"}``; an order object for create / replace / get (sized by exactly one of ``qty``,
shares, and ``notional``, dollars, market orders only); 204 (empty) for cancel; 404
``{"code": 40410000, "message": "order not found"}``; 422 ``{"code": 40010001, "message":
"client_order_id must be unique"}``. The base server lacks PATCH, so this stub adds it.

Usage::

    with AlpacaStub({"PKTEST": "secret"}) as stub:
        stub.orders[order_id]["status"]      # "accepted", "replaced", "canceled"
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import uuid
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from typing import Any, Self

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest, _handler_for

_ORDER_PATH = re.compile(r"/v2/orders/(?P<id>[0-9a-f-]{36})")
_REQUIRED = ("symbol", "side", "type", "time_in_force")  # and exactly one of qty / notional
_BOOKKEEPING = frozenset({"id", "client_order_id", "created_at", "status", "replaces"})


def _error(status: int, code: int, message: str) -> tuple[int, Any]:
    return status, {"code": code, "message": message}


class AlpacaStub(LoopbackVenueStub):
    """Alpaca ``/v2/orders`` and ``/v2/account`` on loopback.

    Args:
        keys: API key id -> secret key.
        clock: server time in epoch ms (only used for order timestamps).
    """

    def __init__(self, keys: Mapping[str, str], *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.orders: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> Self:
        base = _handler_for(self)
        handler = type("AlpacaHandler", (base,), {"do_PATCH": base._dispatch})  # type: ignore[attr-defined]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def serve(self, request: ReceivedRequest) -> tuple[int, bytes]:
        status, payload = super().serve(request)
        return status, (b"" if status == 204 else payload)

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        key_id = request.headers.get("apca-api-key-id", "")
        secret = self.keys.get(key_id)
        sent = request.headers.get("apca-api-secret-key", "")
        if secret is None or not hmac.compare_digest(secret.encode(), sent.encode()):
            return _error(401, 40110000, "request is not authorized")
        method, path = request.method, request.path
        if (method, path) == ("GET", "/v2/account"):
            return 200, {"id": str(uuid.UUID(int=1)), "account_number": "PA3STUB", "status":
                         "ACTIVE", "currency": "USD", "cash": "100000", "crypto_status": "ACTIVE"}  # fmt: skip
        if (method, path) == ("GET", "/v2/orders"):
            return 200, [o for o in self.orders.values() if o["status"] == "accepted"]
        if (method, path) == ("POST", "/v2/orders"):
            return self._create(request.body)
        match = _ORDER_PATH.fullmatch(path)
        order = self.orders.get(match["id"]) if match else None
        if order is None:
            return _error(404, 40410000, "order not found")
        if method == "GET":
            return 200, order
        if method == "DELETE":
            order["status"] = "canceled"
            return 204, None
        if method == "PATCH":
            return self._replace(order, request.body)
        return _error(405, 40510000, "method not allowed")

    def _new(self, fields: dict[str, Any], replaces: str | None = None) -> dict[str, Any]:
        order_id = str(uuid.uuid4())
        order = {"id": order_id, "client_order_id": fields.get("client_order_id") or order_id,
                 "created_at": str(self.clock()), "status": "accepted", "replaces": replaces,
                 **{k: v for k, v in fields.items() if k != "client_order_id"}}  # fmt: skip
        self.orders[order_id] = order
        return order

    def _create(self, body: bytes) -> tuple[int, Any]:
        try:
            fields = json.loads(body)
        except ValueError:
            return _error(400, 40010000, "request body format is invalid")
        missing = [name for name in _REQUIRED if name not in fields]
        if missing:
            return _error(422, 40010000, f"{missing[0]} is required")
        if ("qty" in fields) == ("notional" in fields):  # "notional ... cannot work with qty"
            return _error(422, 40010000, "exactly one of qty and notional is required")
        if "notional" in fields and fields["type"] != "market":
            return _error(422, 40010000, "notional orders must be market orders")
        client_id = fields.get("client_order_id")
        if client_id and any(o["client_order_id"] == client_id for o in self.orders.values()):
            return _error(422, 40010001, "client_order_id must be unique")
        return 200, self._new(fields)

    def _replace(self, order: dict[str, Any], body: bytes) -> tuple[int, Any]:
        try:
            changes = json.loads(body)
        except ValueError:
            return _error(400, 40010000, "request body format is invalid")
        if order["status"] != "accepted":
            return _error(422, 42210000, "order is not open")
        order["status"] = "replaced"
        kept = {k: v for k, v in order.items() if k not in _BOOKKEEPING}
        return 200, self._new(kept | {"client_order_id": None} | changes, replaces=order["id"])
