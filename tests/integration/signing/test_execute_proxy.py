"""ExecuteOrder (proxy mode): the vault sends the request to the venue and returns the venue's
status and body. OANDA and Alpaca are proxy-only (their protocol puts the secret on the wire), as
is Coinbase with ``signing.coinbase_strict``; a detached venue can be proxied too. The bearer token
or secret never appears in a response, an error or an audit row."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support import signing_flow as sf
from tests.support.canary import find
from tests.support.signing_flow import B, Wired

FP = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home") as w:
        yield w


def _assert_no_secret(secret: str, *blobs: bytes) -> None:
    for blob in blobs:
        assert find(secret, blob) == [], "the secret leaked"


def _audit_blob(wired: Wired) -> bytes:
    return "\n".join(r.raw for r in sf.audit_rows(wired.vault)).encode()


def _proxy_only_refuses_sign(wired: Wired, key: sf.VenueKey, rc: str, broker: str) -> None:
    err, rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)))
    assert (err.code, err.reason, err.metadata) == (FP, "PROXY_ONLY_VENUE", {"broker": broker})
    assert [r.key() for r in rows] == [("credential.use", "denied", "PROXY_ONLY_VENUE")]


def _use_row(wired: Wired, mark: int) -> sf.AuditRow:
    [row] = sf.audit_rows(wired.vault, after=mark)
    assert row.key() == ("credential.use", "success", "")
    assert row.details["mode"] == "proxy"
    return row


def test_oanda_is_proxy_only_and_executes(wired: Wired) -> None:
    key = sf.oanda()
    cred = wired.onboard(key, "oa")
    assert cred.proxy_only and cred.single_permission_tier and cred.warnings
    rc = sf.begin(wired.vault, cred.name).name
    _proxy_only_refuses_sign(wired, key, rc, "oanda")
    mark = sf.last_audit_id(wired.vault)
    done = sf.execute(wired.vault, rc, sf.place_for(key, "oanda1"))
    assert done.http_status == 201, done.body
    created = json.loads(done.body)["orderCreateTransaction"]
    assert created["instrument"] == "EUR_USD" and created["units"] == "100"
    assert created["clientExtensions"] == {"id": "oanda1"} and created["type"] == "LIMIT_ORDER"
    assert ("content-type", "application/json") in [(h.name.lower(), h.value) for h in done.headers]
    row = _use_row(wired, mark)
    assert done.audit_event == f"workspaces/ws-a/auditEvents/{row.seq}"
    assert row.details["path"] == f"/v3/accounts/{sf.OANDA_ACCOUNT}/orders"
    # The venue received the token; the caller never did.
    [sent] = wired.venues.oanda.requests
    assert sent.headers["authorization"] == f"Bearer {key.secret_text}"
    query = sf.trading_pb2.Order(operation=B.ORDER_OPERATION_QUERY_ORDER, client_order_id="oanda1")
    fetched = sf.execute(wired.vault, rc, query)
    assert fetched.http_status == 200 and json.loads(fetched.body)["order"]["state"] == "PENDING"
    cancel = sf.trading_pb2.Order(operation=B.ORDER_OPERATION_CANCEL, client_order_id="oanda1")
    assert sf.execute(wired.vault, rc, cancel).http_status == 200
    responses = b"".join(r.SerializeToString() for r in (done, fetched))
    _assert_no_secret(key.secret_text, responses, _audit_blob(wired))


def test_alpaca_is_proxy_only_executes_and_relays_venue_errors(wired: Wired) -> None:
    key = sf.alpaca()
    cred = wired.onboard(key, "al")
    assert cred.proxy_only and cred.single_permission_tier
    rc = sf.begin(wired.vault, cred.name).name
    _proxy_only_refuses_sign(wired, key, rc, "alpaca")
    mark = sf.last_audit_id(wired.vault)
    done = sf.execute(wired.vault, rc, sf.place_for(key, "alpaca1"))
    assert done.http_status == 200, done.body
    order = json.loads(done.body)
    assert (order["symbol"], order["qty"], order["client_order_id"]) == ("AAPL", "1", "alpaca1")
    assert order["status"] == "accepted" and order["time_in_force"] == "day"
    _use_row(wired, mark)
    [sent] = wired.venues.alpaca.requests
    assert sent.headers["apca-api-key-id"] == key.api_key
    assert sent.headers["apca-api-secret-key"] == key.secret_text
    # The venue's refusal comes back as the venue's status and body.
    wired.venues.alpaca.keys[key.api_key] = "rotated-at-the-venue"
    refused = sf.execute(wired.vault, rc, sf.place_for(key, "alpaca2"))
    assert refused.http_status == 401
    assert json.loads(refused.body) == {"code": 40110000, "message": "request is not authorized"}
    responses = b"".join(r.SerializeToString() for r in (done, refused))
    _assert_no_secret(key.secret_text, responses, _audit_blob(wired))


def test_detached_venue_can_be_proxied(wired: Wired) -> None:
    key = sf.binance_hmac()
    cred = wired.onboard(key, "bn")
    rc = sf.begin(wired.vault, cred.name).name
    mark = sf.last_audit_id(wired.vault)
    done = sf.execute(wired.vault, rc, sf.place_for(key, "exec1"))
    assert done.http_status == 200, done.body
    body = json.loads(done.body)
    assert (body["status"], body["clientOrderId"], body["symbol"]) == ("NEW", "exec1", "LTCBTC")
    _use_row(wired, mark)
    [sent] = wired.venues.binance.requests
    assert sent.status == 200 and "signature=" in sent.query  # verified by the stub
    account = sf.execute(wired.vault, rc, sf.query_account())
    assert account.http_status == 200 and "balances" in json.loads(account.body)
    responses = b"".join(r.SerializeToString() for r in (done, account))
    _assert_no_secret(key.secret_text, responses, _audit_blob(wired))


def test_coinbase_strict_is_proxy_only(tmp_path: Path) -> None:
    with sf.venue_vault(tmp_path / "home", coinbase_strict=True) as wired:
        key = sf.coinbase()
        cred = wired.onboard(key, "cb")
        assert cred.proxy_only
        rc = sf.begin(wired.vault, cred.name).name
        _proxy_only_refuses_sign(wired, key, rc, "coinbase_advanced")
        done = sf.execute(wired.vault, rc, sf.place_for(key, "cbstrict1"))
        assert done.http_status == 200, done.body
        body = json.loads(done.body)
        assert body["success"] is True
        assert body["success_response"]["client_order_id"] == "cbstrict1"
        assert (
            wired.venues.coinbase.claims[-1]["uri"]
            == "POST api.coinbase.com/api/v3/brokerage/orders"
        )
        # Without strict mode the same credential signs detached (shown in the venues suite).
        assert sf.get_credential(wired.vault, cred.name).proxy_only


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_venue_is_unavailable_without_echoing_the_request(tmp_path: Path) -> None:
    key = sf.oanda()
    dead = f"http://127.0.0.1:{_closed_port()}"
    with sf.venue_stubs() as venues:
        vault = sf.start_wired(
            tmp_path / "home", venues, signing={"venue_base_urls": {"oanda": dead}}
        )
        try:
            cred = sf.onboard(vault, key, "oa")
            rc = sf.begin(vault, cred.name).name
            err, rows = sf.refusal(vault, "ExecuteOrder", sf.execute_request(rc, sf.place_for(key)))
            assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "VENUE_UNAVAILABLE")
            # The use was committed before the send (a timed-out request may still have reached
            # the venue), so it stays on the record, followed by the failed result.
            assert [(r.action, r.outcome) for r in rows] == [
                ("credential.use", "success"),
                ("credential.use_result", "failed"),
            ]
            assert rows[0].details["mode"] == "proxy"
            assert rows[1].error_reason == "VENUE_UNAVAILABLE"
            text = f"{err.message}{err.metadata}".encode()
            _assert_no_secret(key.secret_text, text)
            assert b"Bearer" not in text
        finally:
            vault.stop()
