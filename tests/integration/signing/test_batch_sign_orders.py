"""``BatchSignOrders``: one call, many items; each item is checked and audited as its own
``SignOrder`` and fails alone; the batch's events are one durable, verifiable chain.

The mixed batch holds items for a frozen workspace, a revoked credential, an ended routing
context, a policy violation, a replayed client order id and a workspace the caller may not see,
interleaved with good items: the good ones are signed (and verify at the venue stub), the others
fail with their own status and reason, and every item has exactly one audit event.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import audit_service_pb2 as apb
from pipsync.vault.v1 import audit_service_pb2_grpc as agrpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipvault_client import SignOrderRequest, VaultClient, VaultClientError

from tests.support import pg
from tests.support import signing_flow as sf
from tests.support.errors import expect_error
from tests.support.signing_flow import Wired
from tests.support.vault import ROLES

FP, NF, IA = (
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
)
BATCH_ROLES = {
    **ROLES,
    "router-ab": {"type": "service", "roles": ["router"], "workspaces": ["ws-a", "ws-b"]},
    "router-c": {"type": "service", "roles": ["router"], "workspaces": ["ws-c"]},
}
WORKSPACES = ("ws-a", "ws-b", "ws-c", "ws-d")


@pytest.fixture(params=["sqlite", "postgresql"])
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Wired]:
    admin = url = None
    if request.param == "postgresql":
        admin, url = pg.provisioned_database()
    try:
        with sf.venue_vault(tmp_path / "home", url, roles=BATCH_ROLES, ws_ids=WORKSPACES) as w:
            yield w
    finally:
        if admin is not None:
            pg.drop_database(admin)


def _route(wired: Wired, ws: str, cred_id: str, *, who: str = "router-ab", **kwargs: object):
    key = sf.binance_hmac()
    wired.venues.register(key)
    cred = sf.onboard(wired.vault, key, cred_id, ws=ws, **kwargs)  # type: ignore[arg-type]
    rc = sf.begin(wired.vault, cred.name, who=who).name
    return key, cred.name, rc


def _batch(wired: Wired, requests: list[spb.SignOrderRequest], who: str = "router-ab"):
    stub = sf.signing(wired.vault)
    return stub.BatchSignOrders(
        spb.BatchSignOrdersRequest(requests=requests), metadata=wired.vault.md(who), timeout=30
    )


def _reason(result: spb.BatchSignOrdersResult) -> tuple[int, str]:
    from google.rpc import error_details_pb2

    info = error_details_pb2.ErrorInfo()
    assert len(result.error.details) == 1
    result.error.details[0].Unpack(info)
    assert info.domain == "vault.pipsync.dev"
    return result.error.code, info.reason


def test_mixed_batch_fails_items_alone_and_audits_each_once(wired: Wired) -> None:
    vault = wired.vault
    good_a = _route(wired, "ws-a", "good-a")
    good_b = _route(wired, "ws-b", "good-b")
    others = _route(wired, "ws-a", "others", who="router")  # another caller's context
    revoked = _route(wired, "ws-a", "revoked")
    ended = _route(wired, "ws-b", "ended")
    strict = _route(wired, "ws-a", "strict", policy=sf.policy(symbols=["ETHBTC"]))
    foreign = _route(wired, "ws-c", "foreign", who="router-c")
    frozen_ab = _route(wired, "ws-b", "frozen-ab")
    sf.revoke(vault, revoked[1])
    sf.end(vault, ended[2], who="router-ab")
    replayed_id, twice = sf.coid("dup"), sf.coid("twice")
    first = sf.sign(vault, good_a[2], sf.place_for(good_a[0], replayed_id), who="router-ab")
    assert first.audit_event

    def item(route, coid: str | None = None, **changes: object) -> spb.SignOrderRequest:
        key, _cred, rc = route
        return sf.sign_request(rc, sf.place_for(key, coid, **changes))

    requests = [
        item(good_a),  # 0 ok
        item(revoked),  # 1 CREDENTIAL_REVOKED
        item(good_b),  # 2 ok
        item(ended),  # 3 ROUTING_CONTEXT_REQUIRED
        item(strict),  # 4 ORDER_POLICY_VIOLATION (LTCBTC is not allowed)
        item(good_a, replayed_id),  # 5 DUPLICATE_CLIENT_ORDER_ID
        item(foreign),  # 6 NOT_FOUND: ws-c is not the caller's
        item(good_b),  # 7 ok
        item(others),  # 8 NOT_FOUND: another caller's context
        item(good_b, twice),  # 9 ok: the first of an id twice in one batch
        item(good_b, twice),  # 10 DUPLICATE_CLIENT_ORDER_ID: the second
    ]
    mark = sf.last_audit_id(vault)
    response = _batch(wired, requests)
    results = list(response.results)
    assert len(results) == len(requests)
    ok = [i for i, r in enumerate(results) if r.WhichOneof("result") == "response"]
    assert ok == [0, 2, 7, 9]
    assert {i: _reason(results[i]) for i in range(len(results)) if i not in ok} == {
        1: (FP.value[0], "CREDENTIAL_REVOKED"),
        3: (FP.value[0], "ROUTING_CONTEXT_REQUIRED"),
        4: (FP.value[0], "ORDER_POLICY_VIOLATION"),
        5: (FP.value[0], "DUPLICATE_CLIENT_ORDER_ID"),
        6: (NF.value[0], "RESOURCE_NOT_FOUND"),
        8: (NF.value[0], "RESOURCE_NOT_FOUND"),
        10: (FP.value[0], "DUPLICATE_CLIENT_ORDER_ID"),
    }
    # Every signed item verifies at the venue, names its own event, in request order per chain.
    events = [results[i].response.audit_event for i in ok]
    assert len(set(events)) == 4
    for i in ok:
        assert sf.send(results[i].response.signed_request).status_code == 200
    seq_a = [int(e.rsplit("/", 1)[1]) for e in events if e.startswith("workspaces/ws-a/")]
    seq_b = [int(e.rsplit("/", 1)[1]) for e in events if e.startswith("workspaces/ws-b/")]
    assert seq_b == sorted(seq_b) and len(seq_b) == 3 and len(seq_a) == 1

    rows = sf.audit_rows(vault, after=mark)
    # An ended context is a read outside one: audited as such (and paged), as on SignOrder.
    uses = [r for r in rows if r.action in ("credential.use", "credential.read")]
    assert Counter(r.key() for r in uses) == Counter(
        {
            ("credential.use", "success", ""): 4,
            ("credential.use", "denied", "CREDENTIAL_REVOKED"): 1,
            ("credential.read", "denied", "ROUTING_CONTEXT_REQUIRED"): 1,
            ("credential.use", "denied", "ORDER_POLICY_VIOLATION"): 1,
            ("credential.use", "denied", "DUPLICATE_CLIENT_ORDER_ID"): 2,
            ("credential.use", "denied", "RESOURCE_NOT_FOUND"): 2,
        }
    )
    assert all(r.actor_id == "router-ab" for r in uses)
    # A frozen workspace fails its items only, and the same batch signs again after the thaw.
    sf.freeze(vault, "ws-b")
    again = _batch(wired, [item(good_a), item(frozen_ab), item(good_b)])
    assert [r.WhichOneof("result") for r in again.results] == ["response", "error", "error"]
    assert _reason(again.results[1]) == (FP.value[0], "WORKSPACE_FROZEN")
    assert _reason(again.results[2]) == (FP.value[0], "WORKSPACE_FROZEN")
    sf.unfreeze(vault, "ws-b")
    thawed = _batch(wired, [item(frozen_ab), item(good_b)])
    assert [r.WhichOneof("result") for r in thawed.results] == ["response", "response"]

    # No secret in any answer or audit row (the HMAC secrets are generated for this run).
    routes = (good_a, good_b, others, revoked, ended, strict, foreign, frozen_ab)
    seen = str(response) + str(again) + str(thawed) + "".join(r.raw for r in rows)
    assert not [r[1] for r in routes if r[0].secret_text in seen]

    audit = agrpc.AuditServiceStub(vault.channel())
    verdict = audit.VerifyAuditLog(apb.VerifyAuditLogRequest(), metadata=vault.md(), timeout=30)
    assert verdict.intact, verdict


def test_limits_and_reasons(wired: Wired) -> None:
    vault = wired.vault
    key, _cred, rc = _route(wired, "ws-a", "lim")
    limit = vault.app.settings.signing.max_batch_items
    too_many = [sf.sign_request(rc, sf.place_for(key)) for _ in range(limit + 1)]
    err = expect_error(
        sf.signing(vault).BatchSignOrders,
        spb.BatchSignOrdersRequest(requests=too_many),
        metadata=vault.md("router-ab"),
        timeout=30,
    )
    assert (err.code, err.reason, err.metadata.get("field")) == (IA, "INVALID_FIELD", "requests")
    err = expect_error(
        sf.signing(vault).BatchSignOrders, spb.BatchSignOrdersRequest(),
        metadata=vault.md("router-ab"), timeout=10,
    )  # fmt: skip
    assert (err.code, err.metadata.get("field")) == (IA, "requests")
    # An item without a reason (and no call reason) or with a malformed order fails alone.
    no_reason = sf.sign_request(rc, sf.place_for(key))
    no_reason.reason = ""
    bad_order = sf.sign_request(rc, sf.place_for(key, qty="-1"))
    response = _batch(wired, [no_reason, bad_order, sf.sign_request(rc, sf.place_for(key))])
    kinds = [r.WhichOneof("result") for r in response.results]
    assert kinds == ["error", "error", "response"]
    assert _reason(response.results[0]) == (IA.value[0], "REASON_REQUIRED")
    assert _reason(response.results[1])[1] == "INVALID_FIELD"


def test_client_sign_orders_sync_and_async(wired: Wired) -> None:
    vault = wired.vault
    key, _cred, rc = _route(wired, "ws-a", "cli")
    dup = sf.coid("d")
    requests = [
        SignOrderRequest(routing_context=rc, order=sf.place_for(key, dup)),
        SignOrderRequest(routing_context=rc, order=sf.place_for(key, dup)),
    ]
    with VaultClient(vault.data_target, token=vault.tokens["router-ab"]) as client:
        results = client.sign_orders(requests, reason="fan out a signal")
    assert isinstance(results[0], spb.SignOrderResponse)
    assert isinstance(results[1], VaultClientError)
    assert results[1].reason == "DUPLICATE_CLIENT_ORDER_ID"
    with pytest.raises(ValueError, match="reason"):
        VaultClient(vault.data_target, token=vault.tokens["router-ab"]).sign_orders(requests)

    from pipvault_client import AsyncVaultClient

    async def run() -> list[object]:
        async with AsyncVaultClient(vault.data_target, token=vault.tokens["router-ab"]) as c:
            return await c.sign_orders(
                [SignOrderRequest(routing_context=rc, order=sf.place_for(key), reason="signal")]
            )

    (only,) = asyncio.run(run())
    assert isinstance(only, spb.SignOrderResponse)
    assert sf.send(only.signed_request).status_code == 200


def test_batch_begin_routing_opens_what_begin_routing_would(wired: Wired) -> None:
    """BatchBeginRouting: each item opened and audited as its own BeginRouting, refusals alone;
    the contexts sign at once (their states were handed to the hot path on commit)."""
    vault = wired.vault
    keys = {}
    names = {}
    for ws, cred_id in (("ws-a", "f1"), ("ws-b", "f2"), ("ws-b", "f3"), ("ws-c", "f4")):
        keys[cred_id] = sf.binance_hmac()
        wired.venues.register(keys[cred_id])
        names[cred_id] = sf.onboard(vault, keys[cred_id], cred_id, ws=ws).name
    sf.revoke(vault, names["f3"])

    def begin(name: str, strategy: str = "follow-7", reason: str = "") -> spb.BeginRoutingRequest:
        return spb.BeginRoutingRequest(credential=name, strategy_id=strategy, reason=reason)

    mark = sf.last_audit_id(vault)
    with VaultClient(vault.data_target, token=vault.tokens["router-ab"]) as client:
        results = client.batch_begin_routing(
            [
                begin(names["f1"], reason="subscribe follower 1"),  # ok
                begin(names["f3"]),  # CREDENTIAL_REVOKED
                begin(names["f2"]),  # ok, the call's reason
                begin(names["f4"]),  # ws-c is not the caller's: NOT_FOUND
                begin(names["f2"], strategy=""),  # INVALID_FIELD strategy_id
            ],
            reason="subscribe followers",
        )
        assert [type(r).__name__ for r in results] == [

            "RoutingContext", "FailedPreconditionError",
            "RoutingContext", "NotFoundError", "InvalidArgumentError",
        ]  # fmt: skip
        assert (results[1].reason, results[3].reason, results[4].reason) == (
            "CREDENTIAL_REVOKED", "RESOURCE_NOT_FOUND", "INVALID_FIELD",
        )  # fmt: skip
        opened = [results[0], results[2]]
        assert [r.credential for r in opened] == [names["f1"], names["f2"]]
        assert all(
            r.owner == "router-ab" and r.state == spb.RoutingContext.STATE_ACTIVE for r in opened
        )
        rows = [r for r in sf.audit_rows(vault, after=mark) if r.action == "routing.begin"]
        assert sorted((r.credential, r.routing_context) for r in rows) == sorted(
            (r.credential, r.name) for r in opened
        )
        by_rc = {r.routing_context: r for r in rows}
        assert "subscribe follower 1" in by_rc[opened[0].name].raw
        assert "subscribe followers" in by_rc[opened[1].name].raw
        # The new contexts sign in one fan-out without loading a state from the database;
        # once the cache is cold, their states load together (one call, per workspace inside).
        loads = vault.app.signing.load_states
        calls: list[list[str]] = []

        def counting(ctx, names):  # type: ignore[no-untyped-def]
            calls.append(list(names))
            return loads(ctx, names)

        def fan_out(signal: str) -> list[object]:
            return client.sign_orders(
                [
                    SignOrderRequest(
                        routing_context=opened[0].name, order=sf.place_for(keys["f1"])
                    ),
                    SignOrderRequest(
                        routing_context=opened[1].name, order=sf.place_for(keys["f2"])
                    ),
                ],
                reason=signal,
            )

        vault.app.signing.load_states = counting  # type: ignore[method-assign]
        try:
            signed = fan_out("signal 1")
            assert calls == []
            vault.app.hot_state.invalidate(None)
            cold = fan_out("signal 2")
            assert calls == [sorted(r.name for r in opened)]
        finally:
            vault.app.signing.load_states = loads  # type: ignore[method-assign]
        assert all(isinstance(s, spb.SignOrderResponse) for s in signed + cold)
        assert sf.send(signed[1].signed_request).status_code == 200
