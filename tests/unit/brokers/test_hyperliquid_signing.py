"""Hyperliquid L1 agent signatures: the official SDK's vectors, and ccxt's MessagePack.

Vectors: hyperliquid-dex/hyperliquid-python-sdk ``tests/signing_test.py`` (@04f25f28, same at
v0.23.0), with its published test key ``0x0123…0123``. The SDK builds the actions with its
helpers (``order_request_to_order_wire``, ``float_to_wire``, ``float_to_int_for_hashing``);
here they are written out as the wire dicts those helpers produce, in the same key order. The
adapter's own tests are in ``test_hyperliquid_adapter.py``.
"""

from __future__ import annotations

import random
from typing import Any

import ccxt
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from vault_server.brokers.base import Venue
from vault_server.brokers.registry import PLANNED
from vault_server.brokers.schemes import eip712_agent as hl
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

KEY = Secret(b"0x0123456789012345678901234567890123456789012345678901234567890123")
DUMMY = {"type": "dummy", "num": 100000000000}  # float_to_int_for_hashing(1000)


def _order(t: dict[str, Any], cloid: str | None = None) -> dict[str, Any]:
    wire: dict[str, Any] = {"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": t}
    if cloid is not None:
        wire["c"] = cloid
    return {"type": "order", "orders": [wire], "grouping": "na"}


GTC = {"limit": {"tif": "Gtc"}}
SL = {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}}
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
# (name, action, vault, mainnet (r, s, v), testnet (r, s, v))
VECTORS: list[tuple[str, dict[str, Any], str | None, tuple[str, str, int], tuple[str, str, int]]]
VECTORS = [
    ("dummy", DUMMY, None,
     ("0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
      "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8", 27),
     ("0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
      "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613", 28)),
    ("order", _order(GTC), None,
     ("0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
      "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e", 28),
     ("0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
      "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5", 27)),
    ("order-cloid", _order(GTC, "0x00000000000000000000000000000001"), None,
     ("0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
      "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da", 27),
     ("0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
      "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988", 28)),
    ("vault", DUMMY, VAULT,
     ("0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
      "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c", 28),
     ("0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
      "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", 27)),
    ("tpsl", _order(SL), None,
     ("0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
      "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405", 27),
     ("0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
      "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac", 28)),
    ("createSubAccount", {"type": "createSubAccount", "name": "example"}, None,
     ("0x51096fe3239421d16b671e192f574ae24ae14329099b6db28e479b86cdd6caa7",
      "0xb71f7d293af92d3772572afb8b102d167a7cef7473388286bc01f52a5c5b423", 27),
     ("0xa699e3ed5c2b89628c746d3298b5dc1cca604694c2c855da8bb8250ec8014a5b",
      "0x53f1b8153a301c72ecc655b1c315d64e1dcea3ee58921fd7507e35818fcc1584", 28)),
    ("subAccountTransfer", {"type": "subAccountTransfer",
                            "subAccountUser": "0x1d9470d4b963f552e6f671a81619d395877bf409",
                            "isDeposit": True, "usd": 10}, None,
     ("0x43592d7c6c7d816ece2e206f174be61249d651944932b13343f4d13f306ae602",
      "0x71a926cb5c9a7c01c3359ec4c4c34c16ff8107d610994d4de0e6430e5cc0f4c9", 28),
     ("0xe26574013395ad55ee2f4e0575310f003c5bb3351b5425482e2969fa51543927",
      "0xefb08999196366871f919fd0e138b3a7f30ee33e678df7cfaf203e25f0a4278", 28)),
    ("scheduleCancel", {"type": "scheduleCancel"}, None,
     ("0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
      "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0", 27),
     ("0xc75bb195c3f6a4e06b7d395acc20bbb224f6d23ccff7c6a26d327304e6efaeed",
      "0x342f8ede109a29f2c0723bd5efb9e9100e3bbb493f8fb5164ee3d385908233df", 28)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "vault", "mainnet", "testnet"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_sdk_vectors(
    action: dict[str, Any], vault: str | None, mainnet: tuple[str, str, int],
    testnet: tuple[str, str, int],
) -> None:  # fmt: skip
    for is_mainnet, (r, s, v) in ((True, mainnet), (False, testnet)):
        got = hl.sign_l1_action(KEY, action, nonce=0, mainnet=is_mainnet, vault=vault)
        assert got == {"r": r, "s": s, "v": v}


def test_sdk_phantom_agent_vector() -> None:
    """``test_phantom_agent_creation_matches_production``: ETH (asset 4), buy 0.0147 @ 1670.1 IOC."""
    action = {"type": "order", "orders": [{"a": 4, "b": True, "p": "1670.1", "s": "0.0147",
              "r": False, "t": {"limit": {"tif": "Ioc"}}}], "grouping": "na"}  # fmt: skip
    connection_id = hl.action_hash(action, None, 1677777606040, None)
    assert "0x" + connection_id.hex() == (
        "0x0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"
    )


def test_expires_after_changes_the_hash_and_the_signer_recovers() -> None:
    plain = hl.action_hash(DUMMY, None, 1_700_000_000_000, None)
    expiring = hl.action_hash(DUMMY, None, 1_700_000_000_000, 1_700_000_010_000)
    assert plain != expiring
    signed = hl.sign_l1_action(KEY, DUMMY, nonce=1_700_000_000_000, mainnet=True,
                               expires_after=1_700_000_010_000)  # fmt: skip
    message = encode_typed_data(full_message=hl.typed_data(expiring, True))
    signer = Account.recover_message(message, vrs=(signed["v"], signed["r"], signed["s"]))
    assert signer == hl.address_of(KEY) == Account.from_key(KEY.reveal().decode()).address


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
                           -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1,
                           -(2**63)])  # fmt: skip
    if kind == 1:
        return "x" * rng.choice([0, 1, 31, 32, 255, 256, 70000]) + "é"
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.randrange(-(2**63), 2**64)
    if kind in (4, 5):
        size = rng.choice([0, 1, 15, 16, 17, 40])
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(size)}
    return [_random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 15, 16, 20]))]


def test_packb_matches_ccxt_msgpack() -> None:
    exchange = ccxt.hyperliquid()
    rng = random.Random(20)
    for _ in range(120):
        value = _random_value(rng)
        assert hl.packb(value) == bytes(exchange.packb(value))
    with pytest.raises(TypeError):
        hl.packb({"px": 1.5})  # prices and sizes travel as strings, never floats


def test_bad_keys_and_inputs_are_refused_without_echoing_them() -> None:
    for bad in (b"", b"0x12", b"zz" * 32, b"CANARY-" + b"0" * 57):
        with pytest.raises(InvalidArgument) as err:
            hl.sign_l1_action(Secret(bad), DUMMY, nonce=1, mainnet=True)
        assert bad.decode() not in repr(err.value) or not bad
    with pytest.raises(InvalidArgument):
        hl.action_hash(DUMMY, "0x1234", 1, None)
    with pytest.raises(InvalidArgument):
        hl.action_hash(DUMMY, None, 2**64, None)


def test_implemented_now() -> None:
    assert Venue.HYPERLIQUID not in PLANNED
