"""Routing contexts: TTL default and cap, renewal, ending, their audit events, and a freeze with
automatic expiry (signing resumes by itself)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import signing_flow as sf
from tests.support.signing_flow import Wired
from tests.support.vault import RunningVault

RC = sf.spb.RoutingContext


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    routing = {"routing_ttl_default_s": 1.5, "routing_ttl_max_s": 3.0}
    with sf.venue_vault(tmp_path / "home", signing=routing) as w:
        yield w


def _lifetime(rc: sf.spb.RoutingContext) -> float:
    return rc.expire_time.ToDatetime().timestamp() - rc.create_time.ToDatetime().timestamp()


def test_ttl_default_cap_renew_and_end(wired: Wired) -> None:
    vault: RunningVault = wired.vault
    key = sf.binance_hmac()
    cred = wired.onboard(key, "bn")
    default = sf.begin(vault, cred.name)
    assert default.name.startswith("workspaces/ws-a/routingContexts/rc-")
    assert (default.credential, default.owner, default.state) == (
        cred.name,
        "router",
        RC.STATE_ACTIVE,
    )
    assert default.strategy_id == "strategy-1"
    assert _lifetime(default) == pytest.approx(1.5, abs=0.01)
    capped = sf.begin(vault, cred.name, ttl_s=3600)
    assert _lifetime(capped) == pytest.approx(3.0, abs=0.01)

    renewed = (
        sf.signing(vault)
        .RenewRouting(sf.spb.RenewRoutingRequest(name=default.name, reason="still trading",
                                                 ttl=sf.duration_pb2.Duration(seconds=60)),
                      metadata=vault.md("router"), timeout=10)
        .routing_context
    )  # fmt: skip
    assert 2.9 < _lifetime(renewed) < 3.5  # from now, capped at 3 s
    assert renewed.expire_time.ToDatetime() > default.expire_time.ToDatetime()
    time.sleep(max(0.0, default.expire_time.ToDatetime().timestamp() - time.time()) + 0.1)
    # Past the original expiry, the renewed context still signs.
    assert sf.sign(vault, default.name, sf.place_for(key)).signed_request.url
    ended = sf.end(vault, default.name)
    assert ended.state == RC.STATE_ENDED and ended.end_time.seconds > 0
    err, _ = sf.refusal(vault, "SignOrder", sf.sign_request(default.name, sf.place_for(key)))
    assert err.reason == "ROUTING_CONTEXT_REQUIRED"

    events = [
        (r.action, r.routing_context, r.details.get("strategy_id", ""))
        for r in sf.audit_rows(vault)
        if r.action.startswith("routing.")
    ]
    assert events == [
        ("routing.begin", default.name, "strategy-1"),
        ("routing.begin", capped.name, "strategy-1"),
        ("routing.renew", default.name, ""),
        ("routing.end", default.name, ""),
    ]


def test_begin_routing_needs_a_strategy_and_a_known_credential(wired: Wired) -> None:
    cred = wired.onboard(sf.binance_hmac(), "bn")
    for request, reason in (
        (
            sf.spb.BeginRoutingRequest(credential=cred.name, strategy_id="", reason="r"),
            "INVALID_FIELD",
        ),
        (sf.spb.BeginRoutingRequest(credential=cred.name, strategy_id="s"), "REASON_REQUIRED"),
        (
            sf.spb.BeginRoutingRequest(
                credential="workspaces/ws-a/credentials/nope", strategy_id="s", reason="r"
            ),
            "RESOURCE_NOT_FOUND",
        ),
    ):
        err, _ = sf.refusal(wired.vault, "BeginRouting", request)
        assert err.reason == reason


def test_freeze_with_ttl_expires_by_itself(wired: Wired) -> None:
    key = sf.binance_hmac()
    cred = wired.onboard(key, "bn")
    rc = sf.begin(wired.vault, cred.name, ttl_s=30).name
    # 2 s, not 1: on a loaded 2-core CI machine the refusal below must still fall inside it.
    sf.workspaces(wired.vault).FreezeWorkspace(
        sf.wpb.FreezeWorkspaceRequest(
            name="workspaces/ws-a", reason="incident", ttl=sf.duration_pb2.Duration(seconds=2)
        ),
        metadata=wired.vault.md("security"), timeout=10,
    )  # fmt: skip
    err, rows = sf.refusal(wired.vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)))
    assert err.reason == "WORKSPACE_FROZEN"
    assert [r.key() for r in rows] == [("credential.use", "denied", "WORKSPACE_FROZEN")]
    time.sleep(2.1)
    assert sf.sign(wired.vault, rc, sf.place_for(key)).signed_request.url
