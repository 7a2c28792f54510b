"""The Hyperliquid venue spec: the SDK's vectors through the adapter, ccxt's signer on the same
requests, fund-moving actions refused at signing, and the userRole attestation.

Vectors: hyperliquid-dex/hyperliquid-python-sdk ``tests/signing_test.py`` (v0.23.0), with its
published test key. ccxt 4.5.64 ``ccxt.hyperliquid.sign_l1_action`` is the independent signer.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import ccxt
import pytest

from tests.unit.brokers.test_hyperliquid_signing import GTC, KEY, VECTORS, _order
from tests.venue_stubs.hyperliquid_stub import signer
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    OrderType,
    Scope,
    Side,
    SigningContext,
    TimeInForce,
    Venue,
    VenueCredential,
)  # fmt: skip
from vault_server.brokers.schemes import eip712_agent as hl
from vault_server.brokers.spec import Call
from vault_server.brokers.venues.hyperliquid import ADAPTER
from vault_server.core.errors import EndpointNotAllowed, InvalidArgument, OperationNotSupported

MASTER = "0x" + "ab" * 20
AGENT = hl.address_of(KEY)
NOW = 1_700_000_000_000


def cred(env: Environment = Environment.LIVE) -> VenueCredential:
    return VenueCredential(Venue.HYPERLIQUID, env, KeyAlgorithm.SECP256K1, AGENT,
                           private_key_pem=KEY, account_id=MASTER)  # fmt: skip


def ctx(nonce: int = NOW) -> SigningContext:
    return SigningContext(now_ms=NOW, recv_window_ms=5000, nonce=nonce)


def place(**changes: Any) -> OrderSpec:
    fields: dict[str, Any] = dict(
        operation=Operation.PLACE_ORDER, symbol="1", side=Side.BUY, order_type=OrderType.LIMIT,
        quantity=D("100"), price=D("100"), extras={"asset": "1"},
    )  # fmt: skip
    return OrderSpec(**(fields | changes))


def body(order: OrderSpec, env: Environment = Environment.LIVE) -> dict[str, Any]:
    return dict(json.loads(ADAPTER.build(order, cred(env), ctx()).body))


@pytest.mark.parametrize(
    ("name", "order"),
    [("order", place()),
     ("order-cloid", place(client_order_id="0x00000000000000000000000000000001")),
     ("tpsl", place(order_type=OrderType.STOP_LOSS, stop_price=D("103")))],
)  # fmt: skip
def test_sdk_vectors_through_the_adapter(name: str, order: OrderSpec) -> None:
    """The adapter builds the SDK's action byte for byte; signed with the SDK's inputs (nonce 0,
    no expiry) it gives the SDK's signatures, mainnet and testnet."""
    vector = next(v for v in VECTORS if v[0] == name)
    for env, (r, s, v) in ((Environment.LIVE, vector[3]), (Environment.TESTNET, vector[4])):
        sent = body(order, env)
        assert hl.packb(sent["action"]) == hl.packb(vector[1])
        again = hl.sign_l1_action(KEY, sent["action"], nonce=0, mainnet=env is Environment.LIVE)
        assert again == {"r": r, "s": s, "v": v}
        assert signer(sent, env is Environment.LIVE) == AGENT.lower()


def test_wire_body_nonce_and_expiry() -> None:
    request = ADAPTER.build(place(extras={"asset": "1", "vaultAddress": "0x" + "1F" * 20}),
                            cred(), ctx(NOW + 7))  # fmt: skip
    sent = json.loads(request.body)
    assert list(sent) == ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]
    assert sent["nonce"] == NOW + 7 and sent["expiresAfter"] == NOW + 5000
    assert request.expire_at_ms == NOW + 5000 and sent["vaultAddress"] == "0x" + "1f" * 20
    assert request.url == "https://api.hyperliquid.xyz/exchange"
    assert ADAPTER.default_base_url(Environment.TESTNET) == "https://api.hyperliquid-testnet.xyz"
    with pytest.raises(OperationNotSupported):
        ADAPTER.default_base_url(Environment.PAPER)


@pytest.mark.parametrize("env", [Environment.LIVE, Environment.TESTNET])
def test_ccxt_signs_the_same_requests(env: Environment) -> None:
    exchange = ccxt.hyperliquid({"privateKey": KEY.reveal().decode(), "walletAddress": MASTER})
    exchange.set_sandbox_mode(env is Environment.TESTNET)
    orders = [place(), place(order_type=OrderType.TAKE_PROFIT_LIMIT, stop_price=D("90"),
                            quantity=D("0.0147"), price=D("1670.1")),
              place(time_in_force=TimeInForce.IOC, extras={"asset": "1", "reduceOnly": "true"}),
              OrderSpec(Operation.CANCEL_ORDER, venue_order_id="77", extras={"asset": "4"}),
              OrderSpec(Operation.CANCEL_ORDER, client_order_id="0x" + "0a" * 16,
                        extras={"asset": "4"})]  # fmt: skip
    for order in orders:
        sent = json.loads(ADAPTER.build(order, cred(env), ctx()).body)
        theirs = exchange.sign_l1_action(sent["action"], sent["nonce"], None, sent["expiresAfter"])
        assert {k: theirs[k] for k in ("r", "s", "v")} == {
            "r": "0x" + sent["signature"]["r"][2:].zfill(64),
            "s": "0x" + sent["signature"]["s"][2:].zfill(64),
            "v": sent["signature"]["v"],
        }


def test_mapping_of_every_operation() -> None:
    assert body(place(extras={"asset": "1", "post_only": "true"}))["action"]["orders"][0][
        "t"] == {"limit": {"tif": "Alo"}}  # fmt: skip
    cancel = body(OrderSpec(Operation.CANCEL_ORDER, venue_order_id="77", extras={"asset": "4"}))
    assert cancel["action"] == {"type": "cancel", "cancels": [{"a": 4, "o": 77}]}
    amend = body(place(operation=Operation.AMEND_ORDER, venue_order_id="9"))["action"]
    assert amend == {"type": "modify", "oid": 9, "order": _order(GTC)["orders"][0]}
    for op, expected in ((Operation.QUERY_OPEN_ORDERS, {"type": "openOrders", "user": MASTER}),
                         (Operation.QUERY_ACCOUNT, {"type": "clearinghouseState", "user": MASTER}),
                         (Operation.QUERY_ORDER, {"type": "orderStatus", "user": MASTER,
                                                  "oid": 5})):  # fmt: skip
        request = ADAPTER.build(OrderSpec(op, venue_order_id="5" if op is Operation.QUERY_ORDER
                                          else None), cred(), ctx())  # fmt: skip
        assert request.url.endswith("/info") and json.loads(request.body) == expected
        assert KEY.reveal() not in request.body


@pytest.mark.parametrize(
    "order",
    [place(order_type=OrderType.MARKET, price=None), place(extras={}),
     place(symbol="BTC"), place(extras={"asset": "1x"}), place(price=D("1.000000001")),
     place(quote_quantity=D("5"), quantity=None), place(client_order_id="c-1"),
     place(time_in_force=TimeInForce.FOK), place(extras={"asset": "1", "destination": "0x1"})],
)  # fmt: skip
def test_refused_orders(order: OrderSpec) -> None:
    with pytest.raises(InvalidArgument):
        ADAPTER.build(order, cred(), ctx())


FUND_MOVING = ["withdraw3", "usdSend", "spotSend", "usdClassTransfer", "subAccountTransfer",
               "vaultTransfer", "approveAgent", "approveBuilderFee", "createSubAccount",
               "sendAsset", "tokenDelegate", "cDeposit", "cWithdraw", "setReferrer", "noop",
               "Order", "order\u200b"]  # fmt: skip


@pytest.mark.parametrize("kind", FUND_MOVING)
def test_fund_moving_actions_are_refused_at_signing(kind: str) -> None:
    call = Call("POST", "/exchange", json={"action": {"type": kind, "destination": MASTER,
                                                      "amount": "1"}})  # fmt: skip
    with pytest.raises(EndpointNotAllowed) as err:
        ADAPTER._sign(call, cred(), ctx())
    assert "amount" not in str(err.value.metadata) and MASTER not in str(err.value.metadata)
    for path in ("/exchange/withdraw3", "/info/../exchange", "/bridge"):
        with pytest.raises(EndpointNotAllowed):
            ADAPTER.check_endpoint("POST", path)


def _answer(role: dict[str, Any]) -> set[Scope]:
    report = ADAPTER.parse_permissions_for(cred(), 200, json.dumps(role).encode())
    return set(report.scopes)


def test_attestation_request_and_roles() -> None:
    request = ADAPTER.permission_request(cred(), ctx())
    assert request is not None and request.url.endswith("/info")
    assert json.loads(request.body) == {"type": "userRole", "user": AGENT.lower()}
    assert _answer({"role": "agent", "data": {"user": MASTER.upper().replace("0X", "0x")}}) == {
        Scope.READ, Scope.TRADE}  # fmt: skip
    for role in ({"role": "user"}, {"role": "missing"}, {"role": "vault"},
                 {"role": "subAccount", "data": {"master": MASTER}},
                 {"role": "agent", "data": {"user": "0x" + "cd" * 20}}):  # fmt: skip
        assert _answer(role) & {Scope.WITHDRAW, Scope.TRANSFER}, role
