"""A loopback Hyperliquid API (``/exchange`` and ``/info``) that verifies agent signatures.

``/exchange`` recovers the signer of the EIP-712 phantom agent over
``keccak(msgpack(action) || nonce || vault flag/address || 0x00 || expiresAfter)`` (hashed with
eth-account and ccxt's MessagePack, not the vault's code), requires the signer to be a known
agent, the nonce to be strictly greater than the agent's last one and ``expiresAfter`` not to be
past; it answers like Hyperliquid (``{"status": "ok", "response": {...}}`` or
``{"status": "err", "response": "..."}``). Any action type outside order/cancel/cancelByCloid/
modify/scheduleCancel answers ``err``: the vault must never send one. ``/info`` answers
``userRole`` from ``roles`` (agent address -> answer) and the order queries with empty lists.

Usage::

    with HyperliquidStub({"0xagent...": "0xmaster..."}) as stub:
        stub.roles["0xagent..."] = {"role": "user"}   # make it look like a master key
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ccxt
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from tests.venue_stubs.binance_stub import Clock, LoopbackVenueStub, ReceivedRequest

TRADING = {"order", "cancel", "cancelByCloid", "modify", "batchModify", "scheduleCancel"}
_PACK = ccxt.hyperliquid()


def phantom_hash(action: Any, nonce: int, vault: str | None, expires_after: int | None) -> bytes:
    data = bytes(_PACK.packb(action)) + nonce.to_bytes(8, "big")
    data += b"\x00" if vault is None else b"\x01" + bytes.fromhex(vault[2:])
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return bytes(keccak(data))


def signer(body: Mapping[str, Any], mainnet: bool) -> str:
    connection = phantom_hash(
        body["action"], body["nonce"], body.get("vaultAddress"), body.get("expiresAfter")
    )
    typed = {
        "domain": {"chainId": 1337, "name": "Exchange", "version": "1",
                   "verifyingContract": "0x0000000000000000000000000000000000000000"},
        "types": {"Agent": [{"name": "source", "type": "string"},
                            {"name": "connectionId", "type": "bytes32"}],
                  "EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}]},
        "primaryType": "Agent",
        "message": {"source": "a" if mainnet else "b", "connectionId": connection},
    }  # fmt: skip
    sig = body["signature"]
    message = encode_typed_data(full_message=typed)
    r, s = int(sig["r"], 16), int(sig["s"], 16)
    return str(Account.recover_message(message, vrs=(sig["v"], r, s))).lower()


class HyperliquidStub(LoopbackVenueStub):
    """Hyperliquid on loopback (agents: agent address -> master address, lower case)."""

    def __init__(
        self, agents: Mapping[str, str], *, mainnet: bool = True, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self.agents = {a.lower(): m.lower() for a, m in agents.items()}
        self.roles: dict[str, dict[str, Any]] = {}
        self.mainnet = mainnet
        self.nonces: dict[str, int] = {}
        self._oid = 1000

    def handle(self, request: ReceivedRequest) -> tuple[int, Any]:
        if request.method != "POST":
            return 405, {"status": "err", "response": "method"}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 422, {"status": "err", "response": "Failed to deserialize the JSON body"}
        if request.path == "/info":
            return 200, self._info(body)
        if request.path != "/exchange":
            return 404, {"status": "err", "response": "not found"}
        action = body.get("action", {})
        if action.get("type") not in TRADING:
            return 200, {"status": "err", "response": "action refused by the stub"}
        try:
            agent = signer(body, self.mainnet)
        except (KeyError, TypeError, ValueError):
            return 200, {"status": "err", "response": "invalid signature"}
        if agent not in self.agents:
            return 200, {"status": "err", "response": f"User or API Wallet {agent} does not exist."}
        expires = body.get("expiresAfter")
        if isinstance(expires, int) and expires < self.clock():
            return 200, {"status": "err", "response": "action expired"}
        if body["nonce"] <= self.nonces.get(agent, 0):
            return 200, {"status": "err", "response": "invalid nonce"}
        self.nonces[agent] = body["nonce"]
        return 200, self._exchange(action)

    def _exchange(self, action: Mapping[str, Any]) -> dict[str, Any]:
        kind = action["type"]
        if kind == "order":
            self._oid += 1
            return {"status": "ok", "response": {"type": "order", "data": {
                "statuses": [{"resting": {"oid": self._oid}}]}}}  # fmt: skip
        if kind in ("cancel", "cancelByCloid"):
            return {"status": "ok", "response": {"type": "cancel", "data": {
                "statuses": ["success"]}}}  # fmt: skip
        return {"status": "ok", "response": {"type": "default"}}

    def _info(self, body: Mapping[str, Any]) -> Any:
        kind, user = body.get("type"), str(body.get("user", "")).lower()
        if kind == "userRole":
            if user in self.roles:
                return self.roles[user]
            if user in self.agents:
                return {"role": "agent", "data": {"user": self.agents[user]}}
            return {"role": "missing"}
        if kind in ("openOrders", "frontendOpenOrders"):
            return []
        if kind == "orderStatus":
            return {"status": "unknownOid"}
        if kind == "clearinghouseState":
            return {"marginSummary": {"accountValue": "0.0"}, "assetPositions": []}
        return {"status": "err", "response": "unknown info type"}
