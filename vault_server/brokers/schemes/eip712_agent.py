"""Hyperliquid L1 actions signed by an agent ("API wallet") key: EIP-712 over a phantom agent.

The official SDK (hyperliquid-dex/hyperliquid-python-sdk, ``hyperliquid/utils/signing.py``,
vectors in ``tests/signing_test.py``) defines, for an exchange action such as ``order``::

    connectionId = keccak256(msgpack(action) || nonce (8 bytes, big-endian)
                             || 0x00                      (no vault / sub-account)
                              | 0x01 || vault address (20 bytes)
                             [|| 0x00 || expiresAfter (8 bytes, big-endian)])
    phantom agent = {source: "a" (mainnet) | "b" (testnet), connectionId}

signed as EIP-712 typed data ``Agent(string source, bytes32 connectionId)`` in the domain
``{name: "Exchange", version: "1", chainId: 1337, verifyingContract: 0x0…0}``, with a secp256k1
key (RFC 6979 deterministic ECDSA, via ``eth-account``). The signature is sent as
``{"r": hex, "s": hex, "v": 27|28}`` next to the action, its ``nonce`` and ``expiresAfter``.

Only L1 actions are signed here: they are the ones an agent key may sign. User-signed actions
(``withdraw3``, ``usdSend``, ``usdClassTransfer``, ``approveAgent`` ...; domain
``HyperliquidSignTransaction``) need the master account's key and are never built by the vault.

``packb`` is the MessagePack subset the actions use (maps in insertion order, strings, integers,
booleans, nil, arrays), encoded exactly as ``msgpack.packb`` does (the smallest form of each
value); floats are refused, since prices and sizes travel as decimal strings. Pure: the nonce
and ``expiresAfter`` are arguments, and the private key is revealed only to sign.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

_U64 = 1 << 64
DOMAIN = {
    "chainId": 1337,
    "name": "Exchange",
    "verifyingContract": "0x0000000000000000000000000000000000000000",
    "version": "1",
}
TYPES = {
    "Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}],
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
}


def _length(n: int, small: tuple[int, int] | None, codes: tuple[int, int, int]) -> bytes:
    """A container or string header: fixed form when ``n < small[1]``, else 8/16/32-bit."""
    if small is not None and n < small[1]:
        return bytes([small[0] | n])
    for code, fmt, limit in zip(codes, (">B", ">H", ">I"), (1 << 8, 1 << 16, 1 << 32), strict=True):
        if code and n < limit:
            return bytes([code]) + struct.pack(fmt, n)
    raise ValueError("too long for MessagePack")


def _int(value: int) -> bytes:
    if 0 <= value < 128:
        return bytes([value])
    if -32 <= value < 0:
        return struct.pack(">b", value)
    if value >= 0:
        for code, fmt, limit in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                                 (0xCE, ">I", 1 << 32), (0xCF, ">Q", _U64)):  # fmt: skip
            if value < limit:
                return bytes([code]) + struct.pack(fmt, value)
    else:
        for code, fmt, limit in ((0xD0, ">b", 1 << 7), (0xD1, ">h", 1 << 15),
                                 (0xD2, ">i", 1 << 31), (0xD3, ">q", 1 << 63)):  # fmt: skip
            if value >= -limit:
                return bytes([code]) + struct.pack(fmt, value)
    raise ValueError("integer out of MessagePack range")


def packb(value: Any) -> bytes:
    """``msgpack.packb(value)`` for the types Hyperliquid actions use."""
    if value is None:
        return b"\xc0"
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _length(len(raw), (0xA0, 32), (0xD9, 0xDA, 0xDB)) + raw
    if isinstance(value, bytes):
        return _length(len(value), None, (0xC4, 0xC5, 0xC6)) + value
    if isinstance(value, Mapping):
        head = _length(len(value), (0x80, 16), (0, 0xDE, 0xDF))
        return head + b"".join(packb(k) + packb(v) for k, v in value.items())
    if isinstance(value, Sequence):
        head = _length(len(value), (0x90, 16), (0, 0xDC, 0xDD))
        return head + b"".join(packb(item) for item in value)
    raise TypeError(f"{type(value).__name__} is not packed in Hyperliquid actions")


def action_hash(
    action: Mapping[str, Any], vault: str | None, nonce: int, expires_after: int | None
) -> bytes:
    """The phantom agent's ``connectionId`` (see the module doc)."""
    if not 0 <= nonce < _U64 or (expires_after is not None and not 0 <= expires_after < _U64):
        raise InvalidArgument("nonce", "must fit in 64 bits")
    data = packb(action) + nonce.to_bytes(8, "big")
    if vault is None:
        data += b"\x00"
    else:
        data += b"\x01" + _address(vault)
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return bytes(keccak(data))


def _address(text: str) -> bytes:
    hex_part = text.removeprefix("0x")
    if len(hex_part) != 40:
        raise InvalidArgument("vault_address", "must be a 20-byte hex address")
    try:
        return bytes.fromhex(hex_part)
    except ValueError:
        raise InvalidArgument("vault_address", "must be a 20-byte hex address") from None


def typed_data(connection_id: bytes, mainnet: bool) -> dict[str, Any]:
    message = {"source": "a" if mainnet else "b", "connectionId": connection_id}
    return {"domain": DOMAIN, "types": TYPES, "primaryType": "Agent", "message": message}


def private_key(secret: Secret) -> bytes:
    """A secp256k1 private key given as 32 bytes of hex (``0x`` optional)."""
    text = secret.reveal().strip().removeprefix(b"0x")
    try:
        raw = bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raw = b""
    if len(raw) != 32:
        raise InvalidArgument("credential.private_key", "must be a 32-byte secp256k1 key in hex")
    return raw


def address_of(secret: Secret) -> str:
    """The checksummed address of the key (what leaves the vault for a generated agent key)."""
    return str(Account.from_key(private_key(secret)).address)


def sign_l1_action(
    secret: Secret,
    action: Mapping[str, Any],
    *,
    nonce: int,
    mainnet: bool,
    vault: str | None = None,
    expires_after: int | None = None,
) -> dict[str, Any]:
    """``{"r", "s", "v"}`` as the SDK's ``sign_l1_action`` returns it (r, s without padding)."""
    connection_id = action_hash(action, vault, nonce, expires_after)
    message = encode_typed_data(full_message=typed_data(connection_id, mainnet))
    try:
        signed = Account.sign_message(message, private_key(secret))
    except (ValueError, TypeError):
        raise InvalidArgument("credential.private_key", "is not a valid secp256k1 key") from None
    return {"r": hex(signed.r), "s": hex(signed.s), "v": int(signed.v)}
