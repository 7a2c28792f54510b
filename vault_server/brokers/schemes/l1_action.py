"""Hyperliquid's ``/exchange`` and ``/info`` requests: L1 actions signed by an agent key.

An exchange call (``POST /exchange``) carries ``{"action": ..., "vaultAddress"?: ...}`` as the
venue mapping built it; this scheme adds the vault's nonce, signs the action with
``eip712_agent.sign_l1_action`` and sends the body the official SDK sends
(``hyperliquid/exchange.py``, ``_post_action``)::

    {"action": <action>, "nonce": <ms>, "signature": {"r", "s", "v"},
     "vaultAddress": <sub-account or vault>   (only when trading for one),
     "expiresAfter": <ms>}

Only the action types an agent key may sign for trading are ever signed (``SIGNABLE``); every
other type — the fund-moving and master-only ones (``withdraw3``, ``usdSend``, ``spotSend``,
``usdClassTransfer``, ``subAccountTransfer``, ``vaultTransfer``, ``approveAgent``,
``approveBuilderFee``, ``createSubAccount`` ...) — is refused before any signature exists.

Clock and nonce rules (docs "Nonces and API wallets"): the nonce is the vault's per-key,
persisted, strictly increasing millisecond value (``max(last + 1, now_ms)``); Hyperliquid keeps
the 100 highest nonces per signer and accepts a new one only if it is larger than the smallest of
them and within (T - 2 days, T + 1 day). Every action also carries ``expiresAfter`` =
``now + recv_window`` (the capped window): the venue rejects it after that instant, which is
``expire_at_ms``. The ``source`` of the phantom agent is ``a`` on mainnet (LIVE) and ``b`` on
testnet, whatever the base URL (tests point it at a loopback stub).

An info call (``POST /info``) is a public query by address: nothing is signed and no secret is
read; only the query types in ``INFO_TYPES`` are sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
    PreparedRequest,
    SigningContext,
    VenueCredential,
)
from vault_server.brokers.schemes import eip712_agent
from vault_server.brokers.schemes.keys import require_secret
from vault_server.core.errors import EndpointNotAllowed, InternalError

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call

EXCHANGE, INFO = "/exchange", "/info"
SIGNABLE = frozenset(
    {"order", "cancel", "cancelByCloid", "modify", "batchModify", "scheduleCancel"}
)
INFO_TYPES = frozenset({"orderStatus", "openOrders", "frontendOpenOrders", "clearinghouseState",
                        "spotClearinghouseState", "userRole", "extraAgents"})  # fmt: skip
_HEADERS = (("Content-Type", "application/json"),)


def _deny(path: str, kind: object) -> EndpointNotAllowed:
    shown = kind if isinstance(kind, str) and kind.isalnum() and len(kind) <= 40 else "(invalid)"
    return EndpointNotAllowed(
        "action is not on the venue's trading allow-list",
        metadata={"method": "POST", "path": path, "action": str(shown)},
    )


def check_action(path: str, payload: Any) -> None:
    """Refuse any ``/exchange`` action or ``/info`` query type outside the allow-lists."""
    if path == EXCHANGE:
        action = payload.get("action") if isinstance(payload, dict) else None
        kind = action.get("type") if isinstance(action, dict) else None
        if kind not in SIGNABLE:
            raise _deny(path, kind)
    elif path == INFO:
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind not in INFO_TYPES:
            raise _deny(path, kind)
    else:
        raise _deny(path, None)


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


@dataclass(frozen=True)
class L1Action:
    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        if call.method != "POST" or call.json is None or call.params:
            raise InternalError("Hyperliquid takes a JSON body on POST only")
        payload = dict(call.json)
        check_action(call.path, payload)
        expire_at = sc.now_ms(ctx) + sc.recv_window_ms(ctx)
        url = base + call.path
        if call.path == INFO:
            return PreparedRequest("POST", url, _HEADERS, _body(payload), expire_at)
        if ctx.nonce is None or isinstance(ctx.nonce, bool) or ctx.nonce <= 0:
            raise InternalError("Hyperliquid signing needs the vault's per-key nonce")
        action, vault = payload["action"], payload.get("vaultAddress")
        key = require_secret(credential.private_key_pem, "credential.private_key")
        signature = eip712_agent.sign_l1_action(
            key, action, nonce=ctx.nonce, mainnet=credential.environment is Environment.LIVE,
            vault=vault, expires_after=expire_at,
        )  # fmt: skip
        body: dict[str, Any] = {"action": action, "nonce": ctx.nonce, "signature": signature}
        if vault is not None:
            body["vaultAddress"] = vault
        body["expiresAfter"] = expire_at
        return PreparedRequest("POST", url, _HEADERS, _body(body), expire_at)
