"""SignOrder and ExecuteOrder end to end: signatures checked by an independent implementation and
by loopback venue stubs; stale, replayed and tampered requests fail at the venue."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.parse
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc

from tests.support.custody import creds, make_workspace
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, iter_audit, start_vault
from tests.venue_stubs.alpaca_stub import AlpacaStub
from tests.venue_stubs.binance_stub import BinanceStub
from tests.venue_stubs.kraken_stub import KrakenStub
from tests.venue_stubs.oanda_stub import OandaStub

# Published documentation example keys (broker-signing.md §1.3 and §3.2).
BINANCE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KRAKEN_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)


def _onboard(vault: RunningVault, cred_id: str, **fields: Any) -> credential_pb2.Credential:
    request = cpb.CreateCredentialRequest(
        parent="workspaces/ws-a", credential_id=cred_id, reason="onboard", **fields
    )
    return (
        creds(vault)
        .CreateCredential(request, metadata=vault.md("onboarding"), timeout=10)
        .credential
    )


def _context(vault: RunningVault, credential: str) -> str:
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(
        spb.BeginRoutingRequest(credential=credential, strategy_id="strat-1", reason="route"),
        metadata=vault.md("router"), timeout=10,
    ).routing_context  # fmt: skip
    return rc.name


def _sign(vault: RunningVault, rc: str, order: trading_pb2.Order) -> spb.SignOrderResponse:
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    return stub.SignOrder(
        spb.SignOrderRequest(routing_context=rc, order=order, reason="trade"),
        metadata=vault.md("router"),
        timeout=10,
    )


def _limit(symbol: str, coid: str, qty: str = "1", price: str = "0.1") -> trading_pb2.Order:
    return trading_pb2.Order(
        operation=trading_pb2.ORDER_OPERATION_PLACE, symbol=symbol, side=trading_pb2.ORDER_SIDE_BUY,
        type=trading_pb2.ORDER_TYPE_LIMIT, time_in_force=trading_pb2.TIME_IN_FORCE_GTC,
        quantity=qty, price=price, client_order_id=coid,
    )  # fmt: skip


def _send(signed: spb.SignedRequest, **changes: Any) -> httpx.Response:
    url = changes.get("url", signed.url)
    body = changes.get("body", signed.body)
    headers = [(h.name, h.value) for h in signed.headers]
    return httpx.request(signed.method, url, headers=headers, content=body or None, timeout=5)


@pytest.fixture
def binance(tmp_path: Path):  # type: ignore[no-untyped-def]
    with BinanceStub({BINANCE_KEY: BINANCE_SECRET}) as stub:
        vault = start_vault(
            tmp_path / "home", signing={"venue_base_urls": {"binance_spot": stub.base_url}}
        )
        try:
            make_workspace(vault, "ws-a")
            yield vault, stub
        finally:
            vault.stop()


def test_binance_doc_key_signature_is_independently_valid_and_accepted(binance) -> None:  # type: ignore[no-untyped-def]
    vault, stub = binance
    cred = _onboard(
        vault, "bn", broker=trading_pb2.BROKER_BINANCE_SPOT, environment=trading_pb2.ENVIRONMENT_LIVE,
        key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
        material=credential_pb2.SecretMaterial(api_key=BINANCE_KEY, secret=BINANCE_SECRET),
        scopes=["enableReading", "enableSpotAndMarginTrading"],
    )  # fmt: skip
    rc = _context(vault, cred.name)
    before = time.time()
    resp = _sign(vault, rc, _limit("LTCBTC", "doc-1"))
    signed = resp.signed_request
    assert signed.method == "POST" and signed.url.startswith(stub.base_url + "/api/v3/order?")
    query = signed.url.split("?", 1)[1]
    payload, _, signature = query.rpartition("&signature=")
    assert payload.startswith(
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    )
    expected = hmac.new(BINANCE_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    params = dict(urllib.parse.parse_qsl(payload))
    assert int(params["recvWindow"]) <= 5000
    assert abs(int(params["timestamp"]) / 1000 - before) < 5
    assert signed.expire_time.ToDatetime().timestamp() <= before + 5 + 5
    assert ("X-MBX-APIKEY", BINANCE_KEY) in [(h.name, h.value) for h in signed.headers]
    assert BINANCE_SECRET not in str(resp)
    assert _send(signed).status_code == 200  # accepted by the venue stub
    tampered = signed.url.replace("quantity=1", "quantity=9")
    assert _send(signed, url=tampered).status_code in (400, 401)
    stale = _sign(vault, rc, _limit("LTCBTC", "doc-2")).signed_request
    stub.clock = lambda: int(time.time() * 1000) + 10_000  # the venue's clock is 10 s ahead
    assert _send(stale).status_code == 400
    assert resp.audit_event.startswith("workspaces/ws-a/auditEvents/")


def test_refusals_each_with_reason_and_audit_event(binance) -> None:  # type: ignore[no-untyped-def]
    vault, _stub = binance
    cred = _onboard(
        vault, "bn", broker=trading_pb2.BROKER_BINANCE_SPOT, environment=trading_pb2.ENVIRONMENT_LIVE,
        key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
        material=credential_pb2.SecretMaterial(api_key=BINANCE_KEY, secret=BINANCE_SECRET),
        scopes=["enableSpotAndMarginTrading"],
    )  # fmt: skip
    admin = creds(vault)
    admin.UpdateCredentialPolicy(
        cpb.UpdateCredentialPolicyRequest(
            name=cred.name, reason="limits",
            policy=credential_pb2.OrderPolicy(
                allowed_symbols=["LTCBTC"], allowed_sides=[trading_pb2.ORDER_SIDE_BUY],
                allowed_order_types=[trading_pb2.ORDER_TYPE_LIMIT], max_quantity="5", max_notional="1",
                max_orders_per_interval=4,
            ),
        ),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    rc = _context(vault, cred.name)
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))

    def refused(
        order: trading_pb2.Order, who: str = "router", rc_name: str = rc
    ) -> tuple[str, dict[str, str]]:
        err = expect_error(stub.SignOrder, spb.SignOrderRequest(routing_context=rc_name, order=order, reason="t"),
                           metadata=vault.md(who), timeout=10)  # fmt: skip
        return err.reason, err.metadata

    sell = _limit("LTCBTC", "s1")
    sell.side = trading_pb2.ORDER_SIDE_SELL
    market = _limit("LTCBTC", "m1")
    market.type = trading_pb2.ORDER_TYPE_MARKET
    cases = [
        (_limit("ETHBTC", "x1"), "allowed_symbols"),
        (sell, "allowed_sides"),
        (market, "allowed_order_types"),
        (_limit("LTCBTC", "q1", qty="6"), "max_quantity"),
        (_limit("LTCBTC", "n1", qty="5", price="0.3"), "max_notional"),
    ]
    for order, rule in cases:
        reason, meta = refused(order)
        assert (reason, meta.get("rule")) == ("ORDER_POLICY_VIOLATION", rule)
    assert _sign(vault, rc, _limit("LTCBTC", "dup-1")).signed_request.url
    assert refused(_limit("LTCBTC", "dup-1"))[0] == "DUPLICATE_CLIENT_ORDER_ID"
    for i in range(3):
        _sign(vault, rc, _limit("LTCBTC", f"r{i}"))
    assert refused(_limit("LTCBTC", "r9")) == (
        "ORDER_POLICY_VIOLATION",
        {"rule": "max_orders_per_interval"},
    )
    # Foreign, missing, ended contexts; frozen workspace; revoked credential.
    other = expect_error(stub.SignOrder, spb.SignOrderRequest(routing_context=rc, order=_limit("LTCBTC", "f1"), reason="t"),
                         metadata=vault.md("router-b"), timeout=10)  # fmt: skip
    assert other.code == grpc.StatusCode.NOT_FOUND
    assert refused(_limit("LTCBTC", "c0"), rc_name="")[0] == "ROUTING_CONTEXT_REQUIRED"
    stub.EndRouting(
        spb.EndRoutingRequest(name=rc, reason="done"), metadata=vault.md("router"), timeout=10
    )
    assert refused(_limit("LTCBTC", "e1"))[0] == "ROUTING_CONTEXT_REQUIRED"
    rc2 = _context(vault, cred.name)
    from pipsync.vault.v1 import workspace_service_pb2 as wpb
    from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

    ws = wgrpc.WorkspaceServiceStub(vault.channel())
    ws.FreezeWorkspace(
        wpb.FreezeWorkspaceRequest(name="workspaces/ws-a", reason="incident"),
        metadata=vault.md(),
        timeout=10,
    )
    assert refused(_limit("LTCBTC", "z1"), rc_name=rc2)[0] == "WORKSPACE_FROZEN"
    ws.UnfreezeWorkspace(
        wpb.UnfreezeWorkspaceRequest(name="workspaces/ws-a", reason="ok"),
        metadata=vault.md(),
        timeout=10,
    )
    admin.RevokeCredential(
        cpb.RevokeCredentialRequest(name=cred.name, reason="leak"),
        metadata=vault.md("security"),
        timeout=10,
    )
    assert refused(_limit("LTCBTC", "v1"), rc_name=rc2)[0] == "CREDENTIAL_REVOKED"
    denied = [
        (e.action, e.error_reason)
        for e in iter_audit(vault.app)
        if e.outcome == "denied" and e.action.startswith("credential.")
    ]
    assert ("credential.use", "ORDER_POLICY_VIOLATION") in denied
    assert ("credential.use", "DUPLICATE_CLIENT_ORDER_ID") in denied
    assert ("credential.read", "ROUTING_CONTEXT_REQUIRED") in denied
    assert ("credential.use", "WORKSPACE_FROZEN") in denied and (
        "credential.use",
        "CREDENTIAL_REVOKED",
    ) in denied


def test_kraken_nonce_is_vault_owned_strictly_increasing_and_survives_restart(
    tmp_path: Path,
) -> None:
    api_key = "kraken-" + secrets.token_hex(8)
    with KrakenStub({api_key: KRAKEN_SECRET}) as stub:
        overrides = {"signing": {"venue_base_urls": {"kraken_spot": stub.base_url}}}
        vault = start_vault(tmp_path / "home", **overrides)
        try:
            make_workspace(vault, "ws-a")
            cred = _onboard(
                vault, "kr", broker=trading_pb2.BROKER_KRAKEN_SPOT, environment=trading_pb2.ENVIRONMENT_LIVE,
                key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA512,
                material=credential_pb2.SecretMaterial(api_key=api_key, secret=KRAKEN_SECRET),
                scopes=["query-funds", "modify-trades"],
            )  # fmt: skip
            rc = _context(vault, cred.name)
            first = _sign(vault, rc, _limit("XBTUSD", "k1", price="37500")).signed_request
            second = _sign(vault, rc, _limit("XBTUSD", "k2", price="37500")).signed_request
        finally:
            vault.stop()
        vault = start_vault(tmp_path / "home", **overrides)  # same database
        try:
            rc = _context(vault, cred.name)
            third = _sign(vault, rc, _limit("XBTUSD", "k3", price="37500")).signed_request
        finally:
            vault.stop()
        nonces = [
            int(dict(urllib.parse.parse_qsl(r.body.decode()))["nonce"])
            for r in (first, second, third)
        ]
        assert nonces[0] < nonces[1] < nonces[2]
        # Independent check of the Kraken scheme on the exact bytes.
        path = urllib.parse.urlsplit(first.url).path
        digest = hashlib.sha256(str(nonces[0]).encode() + first.body).digest()
        sig = base64.b64encode(
            hmac.new(
                base64.b64decode(KRAKEN_SECRET), path.encode() + digest, hashlib.sha512
            ).digest()
        )
        assert dict((h.name, h.value) for h in first.headers)["API-Sign"] == sig.decode()
        assert "deadline=" in first.body.decode()
        # Sent in order they are accepted; replaying an older one is refused by the venue.
        assert _send(first).json()["error"] == []
        assert _send(second).json()["error"] == []
        assert "EAPI:Invalid nonce" in _send(first).json()["error"]
        tampered = second.body.replace(b"volume=1", b"volume=2")
        assert _send(third, body=tampered).json()["error"]
        assert _send(third).json()["error"] == []


def test_proxy_only_venues_execute_through_the_vault(tmp_path: Path) -> None:
    token, account = "oanda-" + secrets.token_hex(16), "101-004-1234567-001"
    key_id, alpaca_secret = "AK" + secrets.token_hex(8), secrets.token_hex(20)
    with OandaStub({token: [account]}) as oanda, AlpacaStub({key_id: alpaca_secret}) as alpaca:
        vault = start_vault(
            tmp_path / "home",
            signing={"venue_base_urls": {"oanda": oanda.base_url, "alpaca": alpaca.base_url}},
        )
        try:
            make_workspace(vault, "ws-a")
            cases = [
                ("oa", dict(broker=trading_pb2.BROKER_OANDA, environment=trading_pb2.ENVIRONMENT_PAPER,
                            key_algorithm=trading_pb2.KEY_ALGORITHM_BEARER,
                            material=credential_pb2.SecretMaterial(secret=token, account_id=account),
                            scopes=["trade"], acknowledge_single_permission_tier=True), "EUR_USD", token),
                ("al", dict(broker=trading_pb2.BROKER_ALPACA, environment=trading_pb2.ENVIRONMENT_PAPER,
                            key_algorithm=trading_pb2.KEY_ALGORITHM_STATIC_HEADERS,
                            material=credential_pb2.SecretMaterial(api_key=key_id, secret=alpaca_secret),
                            scopes=["trade"], acknowledge_single_permission_tier=True), "AAPL", alpaca_secret),
            ]  # fmt: skip
            stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
            for cred_id, fields, symbol, secret in cases:
                cred = _onboard(vault, cred_id, **fields)
                assert cred.proxy_only and cred.single_permission_tier
                rc = _context(vault, cred.name)
                order = _limit(symbol, f"{cred_id}-1", qty="10", price="1.1")
                err = expect_error(stub.SignOrder, spb.SignOrderRequest(routing_context=rc, order=order, reason="t"),
                                   metadata=vault.md("router"), timeout=10)  # fmt: skip
                assert (err.code, err.reason) == (
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "PROXY_ONLY_VENUE",
                )
                done = stub.ExecuteOrder(spb.ExecuteOrderRequest(routing_context=rc, order=order, reason="t"),
                                         metadata=vault.md("router"), timeout=10)  # fmt: skip
                assert 200 <= done.http_status < 300, done.body
                assert secret not in str(done) and secret.encode() not in done.body
                assert done.audit_event
            rows = " ".join(repr(vars(e)) for e in iter_audit(vault.app))
            assert token not in rows and alpaca_secret not in rows
            assert len(oanda.requests) == 1 and len(alpaca.requests) == 1
        finally:
            vault.stop()
