"""Every refusal on the signing path, each with its status, its ``reason`` and its audit event.

Refusals are checked through SignOrder and (where the venue stub could otherwise be reached)
ExecuteOrder; a refused ExecuteOrder never reaches the venue. A refused order claims nothing: its
client order id is still free afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support import signing_flow as sf
from tests.support.signing_flow import Wired
from tests.support.vault import ROLES

FP, NF = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND
ROLES_WITH_PEER = {
    **ROLES,
    "router-2": {"type": "service", "roles": ["router"], "workspaces": ["ws-a"]},
}


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    with sf.venue_vault(tmp_path / "home", roles=ROLES_WITH_PEER, ws_ids=("ws-a", "ws-b")) as w:
        yield w


def _binance(wired: Wired, cred_id: str = "bn", **kwargs: Any) -> tuple[sf.VenueKey, str, str]:
    key = sf.binance_hmac()
    cred = wired.onboard(key, cred_id, **kwargs)
    return key, cred.name, sf.begin(wired.vault, cred.name).name


def _one(rows: list[sf.AuditRow]) -> sf.AuditRow:
    assert len(rows) == 1, [r.key() for r in rows]
    return rows[0]


# --- order policy ----------------------------------------------------------------------------
POLICY_CASES = [
    ("allowed_symbols", {"symbols": ["LTCBTC"]}, {"symbol": "ETHBTC"}, {}),
    ("allowed_sides", {"sides": ["buy"]}, {"side": "sell"}, {}),
    ("allowed_order_types", {"kinds": ["limit"]}, {"kind": "market"}, {}),
    ("max_quantity", {"max_quantity": "5"}, {"qty": "5.001"}, {"qty": "5"}),
    (
        "max_notional",
        {"max_notional": "1"},
        {"qty": "5", "price": "0.21"},
        {"qty": "5", "price": "0.2"},
    ),
    ("max_notional", {"max_notional": "1"}, {"kind": "market", "qty": "1"}, {}),  # no price
]


@pytest.mark.parametrize(
    ("rule", "limits", "bad", "good"),
    POLICY_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(POLICY_CASES)],
)
def test_each_policy_rule_names_itself_and_is_audited(
    wired: Wired, rule: str, limits: dict[str, Any], bad: dict[str, Any], good: dict[str, Any]
) -> None:
    key, name, rc = _binance(wired)
    updated = sf.update_policy(wired.vault, name, sf.policy(**limits)).policy
    updated.ClearField("rate_interval")
    updated.ClearField("max_freshness")
    assert updated == sf.policy(**limits)
    refused_order = sf.place_for(key, "policy1", **bad)
    for method, request in (
        ("SignOrder", sf.sign_request(rc, refused_order)),
        ("ExecuteOrder", sf.execute_request(rc, refused_order)),
    ):
        err, rows = sf.refusal(wired.vault, method, request)
        assert (err.code, err.reason, err.metadata) == (
            FP,
            "ORDER_POLICY_VIOLATION",
            {"rule": rule},
        )
        row = _one(rows)
        assert row.key() == ("credential.use", "denied", "ORDER_POLICY_VIOLATION")
        assert (row.credential, row.routing_context, row.actor_id) == (name, rc, "router")
        assert row.details["mode"] == ("proxy" if method == "ExecuteOrder" else "sign")
    assert wired.venues.binance.requests == []  # the refused ExecuteOrder never left the vault
    # Within the limits the same credential signs; the refused client order id was not claimed.
    assert sf.sign(wired.vault, rc, sf.place_for(key, "policy2", **good)).signed_request.url
    sf.update_policy(wired.vault, name, sf.policy())
    assert sf.sign(wired.vault, rc, refused_order).signed_request.url


def test_max_orders_per_interval(wired: Wired) -> None:
    key, name, rc = _binance(wired)
    sf.update_policy(wired.vault, name, sf.policy(max_orders=2, rate_interval_s=60))
    sf.sign(wired.vault, rc, sf.place_for(key))
    sf.execute(wired.vault, rc, sf.place_for(key))  # proxy placements count too
    err, rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)))
    assert (err.code, err.reason, err.metadata) == (
        FP, "ORDER_POLICY_VIOLATION", {"rule": "max_orders_per_interval"},
    )  # fmt: skip
    assert _one(rows).key() == ("credential.use", "denied", "ORDER_POLICY_VIOLATION")
    # Queries and cancels are not placements: still signed.
    assert sf.sign(wired.vault, rc, sf.query_account()).signed_request.method == "GET"


def test_reusing_an_expired_client_order_id_still_counts_every_order(wired: Wired) -> None:
    """A client order id is free again after its window, but both orders happened: the rate
    limit must count them both."""
    limits = sf.policy(max_orders=3, rate_interval_s=60, max_freshness_ms=1000)
    key, _name, rc = _binance(wired, policy=limits)
    first = sf.sign(wired.vault, rc, sf.place_for(key, "again1")).signed_request
    sf.sign(wired.vault, rc, sf.place_for(key, "other1"))
    time.sleep(max(0.0, sf.expire_ms(first) / 1000 - time.time()) + 0.1)
    sf.sign(wired.vault, rc, sf.place_for(key, "again1"))  # the third order in the interval
    err, _rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)))
    assert (err.reason, err.metadata) == (
        "ORDER_POLICY_VIOLATION", {"rule": "max_orders_per_interval"},
    )  # fmt: skip


# --- duplicate client order ids ----------------------------------------------------------------
def test_duplicate_client_order_id_inside_its_window_then_free_again(wired: Wired) -> None:
    key, name, rc = _binance(wired, policy=sf.policy(max_freshness_ms=1000))
    first = sf.sign(wired.vault, rc, sf.place_for(key, "dup1")).signed_request
    assert "recvWindow=1000&" in first.url  # the policy's freshness window (below the cap)
    other_rc = sf.begin(wired.vault, name).name
    for method, request in (
        ("SignOrder", sf.sign_request(rc, sf.place_for(key, "dup1"))),
        ("SignOrder", sf.sign_request(other_rc, sf.place_for(key, "dup1", qty="2"))),
        ("ExecuteOrder", sf.execute_request(other_rc, sf.place_for(key, "dup1"))),
    ):
        err, rows = sf.refusal(wired.vault, method, request)
        assert (err.code, err.reason, err.metadata) == (
            FP, "DUPLICATE_CLIENT_ORDER_ID", {"clientOrderId": "dup1"},
        )  # fmt: skip
        row = _one(rows)
        assert row.key() == ("credential.use", "denied", "DUPLICATE_CLIENT_ORDER_ID")
        assert row.credential == name
    assert wired.venues.binance.requests == []
    # Another credential may use the same id.
    key2, _, rc2 = _binance(wired, "bn2")
    assert sf.sign(wired.vault, rc2, sf.place_for(key2, "dup1")).signed_request.url
    # After the first request's window the id is free again (the venue would refuse the old one).
    time.sleep(max(0.0, sf.expire_ms(first) / 1000 - time.time()) + 0.15)
    again = sf.sign(wired.vault, rc, sf.place_for(key, "dup1")).signed_request
    assert again.url != first.url and sf.send(again).status_code == 200


# --- routing contexts --------------------------------------------------------------------------
def test_missing_context_is_refused_audited_as_a_read_and_paged(wired: Wired) -> None:
    key, name, _rc = _binance(wired)
    for method, request, credential, new_pages in (
        ("SignOrder", sf.sign_request("", sf.place_for(key), credential=name), name, 1),
        # The same credential again inside the dedup bucket: audited, but one page only.
        ("ExecuteOrder", sf.execute_request("", sf.place_for(key), credential=name), name, 0),
        ("SignOrder", sf.sign_request("", sf.place_for(key)), "", 1),
    ):
        pages = len(sf.pages(wired.vault))
        err, rows = sf.refusal(wired.vault, method, request)
        assert (err.code, err.reason) == (FP, "ROUTING_CONTEXT_REQUIRED")
        row = _one(rows)
        assert row.key() == ("credential.read", "denied", "ROUTING_CONTEXT_REQUIRED")
        assert row.credential == credential
        assert row.workspace == ("workspaces/ws-a" if credential else "")
        assert len(sf.pages(wired.vault)) == pages + new_pages
    payloads = sf.pages(wired.vault)
    assert any(p["custom_details"]["credential"] == name for p in payloads)
    assert wired.venues.binance.requests == []


def test_foreign_contexts_are_not_found(wired: Wired) -> None:
    key, _name, rc = _binance(wired)
    missing = "workspaces/ws-a/routingContexts/rc-" + "0" * 24
    # Same workspace, another principal's context: indistinguishable from a missing one.
    peer_err, rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)),
                                who="router-2")  # fmt: skip
    row = _one(rows)
    assert (peer_err.code, peer_err.reason) == (NF, "RESOURCE_NOT_FOUND")
    assert row.key() == ("credential.use", "denied", "RESOURCE_NOT_FOUND")
    assert row.actor_id == "router-2" and row.credential == ""  # does not reveal the credential
    none_err, _ = sf.refusal(wired.vault, "SignOrder", sf.sign_request(missing, sf.place_for(key)),
                             who="router-2")  # fmt: skip
    assert (none_err.code, none_err.reason) == (peer_err.code, peer_err.reason)
    assert none_err.message.replace(missing, rc) == peer_err.message
    err, _ = sf.refusal(wired.vault, "ExecuteOrder", sf.execute_request(rc, sf.place_for(key)),
                        who="router-2")  # fmt: skip
    assert (err.code, err.reason) == (NF, "RESOURCE_NOT_FOUND")
    err, _ = sf.refusal(wired.vault, "EndRouting", sf.spb.EndRoutingRequest(name=rc, reason="x"),
                        who="router-2")  # fmt: skip
    assert err.code == NF
    # Another workspace's principal (router-b, granted ws-b): refused at the edge.
    err, rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)),
                           who="router-b")  # fmt: skip
    assert (err.code, err.reason) == (NF, "RESOURCE_NOT_FOUND")
    assert _one(rows).key() == ("auth.denied", "denied", "RESOURCE_NOT_FOUND")
    # The owner still signs with it.
    assert sf.sign(wired.vault, rc, sf.place_for(key)).signed_request.url
    assert wired.venues.binance.requests == []


def test_ended_and_expired_contexts(wired: Wired) -> None:
    key, name, rc = _binance(wired)
    ended = sf.end(wired.vault, rc)
    assert ended.state == ended.STATE_ENDED
    short = sf.begin(wired.vault, name, ttl_s=1)
    for ctx in (rc, short.name):
        if ctx == short.name:
            assert sf.sign(wired.vault, ctx, sf.place_for(key)).signed_request.url
            time.sleep(max(0.0, short.expire_time.ToDatetime().timestamp() - time.time()) + 0.1)
        for method, request in (
            ("SignOrder", sf.sign_request(ctx, sf.place_for(key))),
            ("ExecuteOrder", sf.execute_request(ctx, sf.place_for(key))),
        ):
            err, rows = sf.refusal(wired.vault, method, request)
            assert (err.code, err.reason, err.metadata) == (
                FP, "ROUTING_CONTEXT_REQUIRED", {"routingContext": ctx},
            )  # fmt: skip
            row = _one(rows)
            assert row.key() == ("credential.read", "denied", "ROUTING_CONTEXT_REQUIRED")
            assert (row.credential, row.routing_context) == (name, ctx)
    err, _ = sf.refusal(
        wired.vault, "RenewRouting", sf.spb.RenewRoutingRequest(name=short.name, reason="more")
    )
    assert (err.code, err.reason) == (FP, "ROUTING_CONTEXT_REQUIRED")
    assert wired.venues.binance.requests == []


# --- workspace and credential state ------------------------------------------------------------
def test_frozen_workspace_then_revoked_credential(wired: Wired) -> None:
    key, name, rc = _binance(wired)
    sf.freeze(wired.vault)
    for method, request in (
        ("SignOrder", sf.sign_request(rc, sf.place_for(key))),
        ("ExecuteOrder", sf.execute_request(rc, sf.place_for(key))),
    ):
        err, rows = sf.refusal(wired.vault, method, request)
        assert (err.code, err.reason) == (FP, "WORKSPACE_FROZEN")
        row = _one(rows)
        assert row.key() == ("credential.use", "denied", "WORKSPACE_FROZEN")
        assert row.credential == name
    err, _ = sf.refusal(
        wired.vault, "BeginRouting",
        sf.spb.BeginRoutingRequest(credential=name, strategy_id="s", reason="r"),
    )  # fmt: skip
    assert err.reason == "WORKSPACE_FROZEN"
    sf.unfreeze(wired.vault)
    assert sf.sign(wired.vault, rc, sf.place_for(key)).signed_request.url

    sf.revoke(wired.vault, name)
    for method, request in (
        ("SignOrder", sf.sign_request(rc, sf.place_for(key))),
        ("ExecuteOrder", sf.execute_request(rc, sf.place_for(key))),
    ):
        err, rows = sf.refusal(wired.vault, method, request)
        assert (err.code, err.reason, err.metadata) == (
            FP,
            "CREDENTIAL_REVOKED",
            {"credential": name},
        )
        assert _one(rows).key() == ("credential.use", "denied", "CREDENTIAL_REVOKED")
    err, _ = sf.refusal(
        wired.vault, "BeginRouting",
        sf.spb.BeginRoutingRequest(credential=name, strategy_id="s", reason="r"),
    )  # fmt: skip
    assert err.reason == "CREDENTIAL_REVOKED"
    assert wired.venues.binance.requests == []


# --- planes and roles --------------------------------------------------------------------------
def test_wrong_plane_and_wrong_role(wired: Wired) -> None:
    key, name, rc = _binance(wired)
    admin = wired.vault.admin_target
    for method, request in (
        ("SignOrder", sf.sign_request(rc, sf.place_for(key))),
        ("ExecuteOrder", sf.execute_request(rc, sf.place_for(key))),
        ("BeginRouting", sf.spb.BeginRoutingRequest(credential=name, strategy_id="s", reason="r")),
    ):
        err, rows = sf.refusal(wired.vault, method, request, target=admin)
        assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "WRONG_LISTENER")
        assert err.metadata["plane"] == "data"
        assert _one(rows).key() == ("auth.denied", "denied", "WRONG_LISTENER")
    # Onboarding is an admin-plane call: refused on the data socket.
    socket_creds = sf.cgrpc.CredentialServiceStub(wired.vault.channel(wired.vault.socket_target))
    err = sf_expect(socket_creds.CreateCredential,
                    sf.create_request(sf.binance_hmac(), "bn9"), wired.vault.md("onboarding"))  # fmt: skip
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "WRONG_LISTENER")
    # The right plane with the wrong role.
    err, rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)),
                           who="security")  # fmt: skip
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    assert _one(rows).key() == ("auth.denied", "denied", "ROLE_REQUIRED")
    assert wired.venues.binance.requests == []


def sf_expect(fn: Any, request: Any, metadata: Any) -> Any:
    from tests.support.errors import expect_error

    return expect_error(fn, request, metadata=metadata, timeout=10)


# --- endpoints and request shape ---------------------------------------------------------------
@pytest.mark.parametrize("venue_id", ["withdraw-1", "transfer", "deposit-address", "convert-9"])
def test_blocked_endpoint_is_refused_end_to_end(wired: Wired, venue_id: str) -> None:
    """Coinbase puts the venue order id in the path: a fund-moving word there is refused."""
    key = sf.coinbase()
    cred = wired.onboard(key, "cb")
    rc = sf.begin(wired.vault, cred.name).name
    query = sf.trading_pb2.Order(operation=sf.B.ORDER_OPERATION_QUERY_ORDER, venue_order_id="abc-1")
    assert sf.sign(wired.vault, rc, query).signed_request.url.endswith("/orders/historical/abc-1")
    query.venue_order_id = venue_id
    for method, request in (
        ("SignOrder", sf.sign_request(rc, query)),
        ("ExecuteOrder", sf.execute_request(rc, query)),
    ):
        err, rows = sf.refusal(wired.vault, method, request)
        assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ENDPOINT_NOT_ALLOWED")
        assert err.metadata == {
            "method": "GET", "path": f"/api/v3/brokerage/orders/historical/{venue_id}",
        }  # fmt: skip
        row = _one(rows)
        assert row.key() == ("credential.use", "denied", "ENDPOINT_NOT_ALLOWED")
        assert row.credential == cred.name
    assert wired.venues.coinbase.requests == []


@pytest.mark.parametrize(
    "extras",
    [{"recvWindow": "60000"}, {"timestamp": "1"}, {"signature": "00"}, {"symbol": "BTCUSDT"},
     {"withdrawAddress": "x"}],
)  # fmt: skip
def test_extras_cannot_override_signed_fields(wired: Wired, extras: dict[str, str]) -> None:
    key, _name, rc = _binance(wired)
    err, rows = sf.refusal(
        wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key, extras=extras))
    )
    assert (err.code, err.reason, err.metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", {"field": "order.extras"},
    )  # fmt: skip
    assert _one(rows).key() == ("credential.use", "denied", "INVALID_FIELD")


def test_credential_hint_must_match_the_context(wired: Wired) -> None:
    key, _name, rc = _binance(wired)
    other = wired.onboard(sf.binance_hmac(), "bn2")
    err, rows = sf.refusal(
        wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key), credential=other.name)
    )
    assert (err.code, err.reason, err.metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", {"field": "credential"},
    )  # fmt: skip
    assert _one(rows).key() == ("credential.use", "denied", "INVALID_FIELD")
