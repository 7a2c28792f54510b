"""A revoked credential, a frozen workspace and an ended routing context refuse the very next
SignOrder although the signing state is cached: on one server (both stores), and on a second
server sharing the PostgreSQL database whose change notifications are switched off - so only the
epoch check inside the signing batch can catch the change."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from tests.support import signing_flow as sf
from tests.support.errors import call_error
from tests.support.vault import RunningVault, iter_audit

CHANGES: dict[str, tuple[Callable[[RunningVault, str, str], None], str]] = {
    "revoke": (lambda v, cred, rc: sf.revoke(v, cred), "CREDENTIAL_REVOKED"),
    "freeze": (lambda v, cred, rc: sf.freeze(v), "WORKSPACE_FROZEN"),
    "end": (lambda v, cred, rc: sf.end(v, rc), "ROUTING_CONTEXT_REQUIRED"),
}


def _refusal(vault: RunningVault, rc: str, order: object) -> str:
    with pytest.raises(grpc.RpcError) as info:
        sf.sign(vault, rc, order)  # type: ignore[arg-type]
    return call_error(info.value).reason


def _warm(vault: RunningVault, rc: str, key: sf.VenueKey, n: int = 3) -> None:
    for _ in range(n):
        assert sf.sign(vault, rc, sf.place_for(key)).audit_event
    assert vault.app.hot_state.get(rc) is not None  # served from memory from here on


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_one_server_refuses_the_very_next_signature(
    vault_any_db: RunningVault, change: str
) -> None:
    vault = vault_any_db
    sf.create_workspace(vault)
    key = sf.binance_hmac()
    cred = sf.onboard(vault, key, "bn")
    rc = sf.begin(vault, cred.name).name
    _warm(vault, rc, key)
    apply, reason = CHANGES[change]
    apply(vault, cred.name, rc)
    assert _refusal(vault, rc, sf.place_for(key)) == reason
    assert _refusal(vault, rc, sf.place_for(key)) == reason  # and every one after it
    refused = [e for e in iter_audit(vault.app) if e.error_reason == reason]
    assert len(refused) == 2  # each refusal is audited


@pytest.mark.postgres
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_on_one_server_refuses_the_next_signature_on_another(
    two_servers: tuple[RunningVault, RunningVault], change: str
) -> None:
    a, b = two_servers
    sf.create_workspace(a)
    key = sf.binance_hmac()
    cred = sf.onboard(a, key, "bn")
    rc = sf.begin(b, cred.name).name
    _warm(b, rc, key)
    apply, reason = CHANGES[change]
    apply(a, cred.name, rc)  # through server A (the same router principal ends its context)
    assert b.app.hot_state.get(rc) is not None  # B still holds the state from before
    assert _refusal(b, rc, sf.place_for(key)) == reason


@pytest.mark.postgres
def test_an_unfreeze_on_one_server_lets_the_next_signature_through_on_another(
    two_servers: tuple[RunningVault, RunningVault],
) -> None:
    a, b = two_servers
    sf.create_workspace(a)
    key = sf.binance_hmac()
    cred = sf.onboard(a, key, "bn")
    rc = sf.begin(b, cred.name).name
    _warm(b, rc, key)
    sf.freeze(a)
    assert _refusal(b, rc, sf.place_for(key)) == "WORKSPACE_FROZEN"
    assert b.app.hot_state.get(rc) is not None  # B now holds the frozen state
    sf.unfreeze(a)
    assert sf.sign(b, rc, sf.place_for(key)).audit_event  # a refusal from memory is rechecked
