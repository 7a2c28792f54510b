"""Must show: each attack test FAILS when its defence is patched out.

For cross-workspace access, redaction (log pipeline and error text), the audit chain and
routing-context enforcement, the same attack runs twice against an in-process vault on real
sockets: once as shipped (the attack is refused), once with the defence disabled by a test-only
``monkeypatch`` (the attack must SUCCEED). If a defence were dead code, or an attack test could
not see the breach it looks for, the second half would fail. No production switch exists for any
of this.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import secrets
from pathlib import Path
from typing import Any

import grpc
import pytest
from pipsync.vault.v1 import audit_service_pb2 as apb
from pipsync.vault.v1 import audit_service_pb2_grpc as agrpc
from pipsync.vault.v1 import credential_service_pb2 as cpb
from sqlalchemy import select

from tests.integration.audit.audit_harness import Attacker
from tests.security.test_c01_cross_workspace_every_rpc import METHODS
from tests.security.test_c01_cross_workspace_every_rpc import (
    test_workspace_b_cannot_reach_workspace_a as cross_workspace_attack,
)
from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.custody import creds, make_workspace, onboard
from tests.support.errors import call_error
from tests.support.vault import ROLES, RunningVault, start_vault
from vault_server.audit import _verify as audit_verify
from vault_server.auth.principal import Principal
from vault_server.core.errors import VaultError
from vault_server.custody._views import CredentialQueries
from vault_server.domain._call import CallContext
from vault_server.domain._names import parse_routing_context
from vault_server.observability import logging as vault_logging
from vault_server.rpc import interceptor
from vault_server.rpc.status import to_status
from vault_server.signing import _hot_path as hot_signing
from vault_server.storage.models import Credential, RoutingContext
from vault_server.workspaces._manager import load_visible

# --- cross-workspace access -------------------------------------------------------------------


def _cross_setup(vault: RunningVault) -> dict[str, str]:
    make_workspace(vault, "ws-a")
    make_workspace(vault, "ws-b")
    cred = onboard(vault, "ws-a", "secret-cred", "A" * 24, secrets.token_hex(32))
    rc = sf.begin(vault, cred.name)
    return {
        "workspace": "workspaces/ws-a",
        "credential": cred.name,
        "version": f"{cred.name}/versions/1",
        "routing_context": rc.name,
        "credential_uid": cred.uid,
    }


@pytest.mark.parametrize("rpc", ["GetCredential", "ListCredentials", "GetWorkspace", "EndRouting"])
def test_cross_workspace_attack_succeeds_without_the_workspace_grant_check(
    vault: RunningVault, monkeypatch: pytest.MonkeyPatch, rpc: str
) -> None:
    setup = _cross_setup(vault)
    method = next(m for m in METHODS if m.name == rpc)
    cross_workspace_attack(vault, setup, method)  # defended: B gets NOT_FOUND
    # Patch out both layers of the grant (admission at the edge, may_see in the domain).
    monkeypatch.setattr(Principal, "can_access_workspace", lambda self, ws: True)
    monkeypatch.setattr(CallContext, "may_see", lambda self, ws: True)
    with pytest.raises(AssertionError, match="answered B with data|leaked"):
        cross_workspace_attack(vault, setup, method)


# --- redaction --------------------------------------------------------------------------------


def _careless_read(vault: RunningVault, monkeypatch: pytest.MonkeyPatch, canary: str) -> str:
    """A read whose code path logs secret-named fields (the mistake redaction exists for);
    returns the server log it produced."""
    buffer = io.StringIO()
    vault_logging.configure_logging("INFO", "json", stream=buffer)
    original = CredentialQueries.get
    log = vault_logging.get_logger("pipvault.careless")

    def get(self: CredentialQueries, ctx: CallContext, name: str) -> Any:
        log.info("credential.debug", passphrase=canary, secret_key=canary, dek=canary.encode())
        return original(self, ctx, name)

    monkeypatch.setattr(CredentialQueries, "get", get)
    make_workspace(vault, "ws-r")
    cred = onboard(vault, "ws-r", "c", "K" * 24, canary)
    creds(vault).GetCredential(
        cpb.GetCredentialRequest(name=cred.name), metadata=vault.md("security"), timeout=10
    )
    return buffer.getvalue()


def test_log_redaction_attack_succeeds_without_the_redacting_processor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = new_canary()
    vault = start_vault(tmp_path / "on")
    try:
        text = _careless_read(vault, monkeypatch, canary)
        assert "credential.debug" in text and not find(canary, text.encode())
    finally:
        vault.stop()
    monkeypatch.setattr(vault_logging, "drop_secrets", lambda _l, _m, event: event)
    vault = start_vault(tmp_path / "off")
    try:
        text = _careless_read(vault, monkeypatch, canary)
        assert find(canary, text.encode()), "with redaction off the canary should reach the log"
    finally:
        vault.stop()


def _exploding_read(
    vault: RunningVault, monkeypatch: pytest.MonkeyPatch, canary: str, ws: str
) -> str:
    """A read that fails with a library exception whose text holds key material."""

    def get(self: CredentialQueries, ctx: CallContext, name: str) -> Any:
        raise ValueError(f"could not parse key {canary}")

    monkeypatch.setattr(CredentialQueries, "get", get)
    make_workspace(vault, ws)
    cred = onboard(vault, ws, "c", "K" * 24, canary)
    try:
        creds(vault).GetCredential(
            cpb.GetCredentialRequest(name=cred.name), metadata=vault.md("security"), timeout=10
        )
    except grpc.RpcError as exc:
        err = call_error(exc)
        assert err.code == grpc.StatusCode.INTERNAL
        return f"{err.message} {err.metadata} {exc.trailing_metadata()}"
    raise AssertionError("the exploding read succeeded")


def test_error_redaction_attack_succeeds_when_exception_text_reaches_the_caller(
    vault: RunningVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = new_canary()
    answer = _exploding_read(vault, monkeypatch, canary, "ws-x")
    assert "internal error" in answer and not find(canary, answer.encode())

    def leaky(method: str, exc: Exception) -> tuple[grpc.Status, tuple[str, str]]:
        return to_status(VaultError(str(exc))), ("INTERNAL", "INTERNAL")

    monkeypatch.setattr(interceptor, "_failure", leaky)
    answer = _exploding_read(vault, monkeypatch, canary, "ws-y")
    assert find(canary, answer.encode()), "with generic errors off the canary should be returned"


# --- the audit chain --------------------------------------------------------------------------


def _tamper_and_verify(vault: RunningVault) -> apb.VerifyAuditLogResponse:
    make_workspace(vault, "ws-t")
    onboard(vault, "ws-t", "c1", "K" * 24, secrets.token_hex(16))
    onboard(vault, "ws-t", "c2", "L" * 24, secrets.token_hex(16))
    attacker = Attacker(vault.app.settings.resolved_database_url())
    try:
        attacker.drop_guards()
        attacker.sql(
            "UPDATE audit_events SET reason = 'routine maintenance' "
            "WHERE workspace = 'workspaces/ws-t' AND action = 'credential.create'"
        )
    finally:
        attacker.close()
    return agrpc.AuditServiceStub(vault.channel()).VerifyAuditLog(
        apb.VerifyAuditLogRequest(workspace="workspaces/ws-t"),
        metadata=vault.md("auditor"),
        timeout=30,
    )


def test_audit_tamper_goes_unnoticed_without_the_chain_hash_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = start_vault(tmp_path / "on")
    try:
        result = _tamper_and_verify(vault)
        assert not result.intact and result.first_bad_event.startswith("workspaces/ws-t/")
    finally:
        vault.stop()
    monkeypatch.setattr(audit_verify.ChainVerifier, "_verifies", lambda self, row, seq=None: True)
    vault = start_vault(tmp_path / "off")
    try:
        result = _tamper_and_verify(vault)
        assert result.intact, "with the hash check off the edited rows should pass as intact"
    finally:
        vault.stop()


# --- routing-context enforcement --------------------------------------------------------------

TWO_ROUTERS = {
    **ROLES,
    "router-2": {"type": "service", "roles": ["router"], "workspaces": ["ws-a"]},
}


def _routing_attacks(vault: RunningVault) -> dict[str, str]:
    """Sign with an ended context and with another router's context: the outcome of each."""
    sf.create_workspace(vault, "ws-a")
    key = sf.binance_hmac(sf.new_api_key(), secrets.token_hex(32))
    cred = sf.onboard(vault, key, "bn")
    ended = sf.begin(vault, cred.name).name
    sf.end(vault, ended)
    foreign = sf.begin(vault, cred.name).name  # owned by "router"
    outcomes: dict[str, str] = {}
    for label, rc, who in (("ended", ended, "router"), ("foreign", foreign, "router-2")):
        try:
            signed = sf.sign(vault, rc, sf.place_for(key), who=who)
            outcomes[label] = "SIGNED" if signed.signed_request.url else "EMPTY"
        except grpc.RpcError as exc:
            outcomes[label] = call_error(exc).reason
    return outcomes


def _disable_routing_checks(vault: RunningVault, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch out every place the owner, state and expiry of a routing context are checked: the
    lookup (``RoutingContexts._own``, used by both the cached and the locked signing paths), the
    locked path's state check, and the cached path's check of the loaded state."""
    routing = vault.app.routing

    def own(session: Any, ctx: CallContext, name: str, **_: Any) -> Any:
        ref = parse_routing_context("routing_context", name)
        ws = load_visible(session, ctx, ref.workspace)
        rc = session.execute(
            select(RoutingContext).where(
                RoutingContext.workspace_id == ws.id,
                RoutingContext.resource_id == ref.routing_context,
            )
        ).scalar_one()
        cred = session.execute(
            select(Credential).where(Credential.id == rc.credential_id)
        ).scalar_one()
        return ws, cred, rc

    monkeypatch.setattr(routing, "_own", own)
    monkeypatch.setattr(routing, "active_for_use", own)
    original = hot_signing._check_state

    def check_state(ctx: CallContext, st: Any, rc_name: str, hint: str, now: Any) -> None:
        trusting = dataclasses.replace(
            st, owner=ctx.actor.id, rc_state="active", rc_expire=now + dt.timedelta(hours=1)
        )
        original(ctx, trusting, rc_name, hint, now)

    monkeypatch.setattr(hot_signing, "_check_state", check_state)


def test_routing_context_attacks_succeed_without_the_owner_and_state_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = start_vault(tmp_path / "on", roles=TWO_ROUTERS)
    try:
        assert _routing_attacks(vault) == {
            "ended": "ROUTING_CONTEXT_REQUIRED",
            "foreign": "RESOURCE_NOT_FOUND",
        }
    finally:
        vault.stop()
    vault = start_vault(tmp_path / "off", roles=TWO_ROUTERS)
    try:
        _disable_routing_checks(vault, monkeypatch)
        assert _routing_attacks(vault) == {"ended": "SIGNED", "foreign": "SIGNED"}
    finally:
        vault.stop()
