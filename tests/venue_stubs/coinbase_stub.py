"""A loopback Coinbase Advanced Trade API that verifies CDP JWTs with registered public keys.

Verification follows the CDP JWT documentation (reference §4.1): the bearer token's header
``kid`` names a registered key; the signature must verify with that key's public half (ES256 for
EC P-256, EdDSA for Ed25519, the algorithm fixed by the key type, never taken from the token);
``sub == kid``, ``iss == "cdp"``; on the injectable server clock ``nbf <= now < exp`` and
``exp - nbf <= 120``; and ``uri`` must equal ``"<METHOD> api.coinbase.com<path>"`` for the
request actually received (query string excluded, as Coinbase does).

As at Coinbase, **nothing binds the body**: a valid token for ``POST .../orders`` is accepted
with any order body while it lives (reference §4.3). Tests use this to show why the strict
(proxy-only) adapter exists.

Auth failures answer HTTP 401 ``{"error": "UNAUTHENTICATED", "message": ...}`` (Coinbase answers
401 with a short text body; the JSON shape is this stub's choice). Order, cancel and edit
answers follow the Advanced Trade response shapes (``success``, ``success_response``, ...).

Usage::

    with CoinbaseStub({"organizations/o/apiKeys/k": public_key}) as stub:
        stub.permissions["organizations/o/apiKeys/k"] = {"can_transfer": True}
        stub.clock = lambda: 1_700_000_000_000      # server time, epoch ms
        stub.claims[-1]                              # claims of the last accepted token
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

HOST = "api.coinbase.com"
MAX_LIFETIME_S = 120
P = "/api/v3/brokerage"
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
DEFAULT_PERMISSIONS: dict[str, Any] = {
    "can_view": True, "can_trade": True, "can_transfer": False,
    "portfolio_uuid": "2a7c8e4b-4f5e-4d3a-9b1c-0123456789ab", "portfolio_type": "DEFAULT",
}  # fmt: skip


def _unauthenticated(message: str) -> tuple[int, Any]:
    return 401, {"error": "UNAUTHENTICATED", "message": message}


class CoinbaseStub(LoopbackVenueStub):
    """Coinbase Advanced Trade (``/api/v3/brokerage``) on loopback.

    Args:
        keys: key name (``organizations/{org}/apiKeys/{id}``) -> registered public key.
        clock: server time in epoch ms (default: the real clock); reassign ``stub.clock`` freely.
        permissions: key name -> ``key_permissions`` fields overriding ``DEFAULT_PERMISSIONS``.
    """

    def __init__(
        self,
        keys: Mapping[str, PublicKey],
        *,
        clock: Clock | None = None,
        permissions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keys = dict(keys)
        self.permissions: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in (permissions or {}).items()
        }
        self.claims: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return _unauthenticated("missing bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _unauthenticated("malformed token")
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            return _unauthenticated("unknown key")
        alg = "ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "EdDSA"
        if header.get("alg") != alg or not isinstance(header.get("nonce"), str):
            return _unauthenticated("wrong algorithm or missing nonce")
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg],
                options={"verify_exp": False, "verify_nbf": False, "verify_aud": False,
                         "require": ["sub", "iss", "nbf", "exp", "uri"]},
            )  # fmt: skip
        except jwt.PyJWTError:
            return _unauthenticated("signature verification failed")
        problem = self._claims_problem(claims, kid, request)
        if problem:
            return _unauthenticated(problem)
        self.claims.append(claims)
        return self._route(request, kid)

    def _claims_problem(self, claims: dict[str, Any], kid: str, request: ReceivedRequest) -> str:
        now_s = self.clock() // 1000
        nbf, exp = claims["nbf"], claims["exp"]
        if claims["sub"] != kid or claims["iss"] != "cdp":
            return "wrong subject or issuer"
        if not isinstance(nbf, int) or not isinstance(exp, int) or exp - nbf > MAX_LIFETIME_S:
            return "token lifetime above 120 s"
        if now_s < nbf:
            return "token not yet valid"
        if now_s >= exp:
            return "token expired"
        if claims["uri"] != f"{request.method} {HOST}{request.path}":
            return "token uri does not match the request"
        return ""

    def _route(self, request: ReceivedRequest, kid: str) -> tuple[int, Any]:
        method, path = request.method, request.path
        if method == "GET":
            if path == P + "/key_permissions":
                return 200, DEFAULT_PERMISSIONS | self.permissions.get(kid, {})
            if path == P + "/accounts":
                return 200, {"accounts": [], "has_next": False, "cursor": "", "size": 0}
            if path == P + "/orders/historical/batch":
                return 200, {"orders": [], "sequence": "0", "has_next": False, "cursor": ""}
            if path.startswith(P + "/orders/historical/"):
                order_id = path.rsplit("/", 1)[1]
                return 200, {"order": {"order_id": order_id, "status": "OPEN"}}
            return 404, {"error": "NOT_FOUND", "message": "stub: unknown endpoint"}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, {"error": "INVALID_ARGUMENT", "message": "body is not JSON"}
        if path == P + "/orders":
            return 200, self._create(body)
        if path == P + "/orders/batch_cancel":
            ids = body.get("order_ids", [])
            return 200, {"results": [{"success": True, "failure_reason": "", "order_id": i}
                                     for i in ids]}  # fmt: skip
        if path == P + "/orders/edit":
            return 200, {"success": True, "errors": []}
        return 404, {"error": "NOT_FOUND", "message": "stub: unknown endpoint"}

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("client_order_id", "product_id", "side", "order_configuration")
        missing = [name for name in fields if not body.get(name)]
        if missing:
            return {"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON",
                    "error_response": {"error": "INVALID_ARGUMENT",
                                       "message": f"{missing[0]} is required"}}  # fmt: skip
        order_id = str(uuid.UUID(int=next(self._ids)))
        return {
            "success": True,
            "success_response": {"order_id": order_id, "product_id": body["product_id"],
                                 "side": body["side"],
                                 "client_order_id": body["client_order_id"]},
            "order_configuration": body["order_configuration"],
        }  # fmt: skip
