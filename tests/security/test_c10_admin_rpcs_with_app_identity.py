"""Attack: an application identity (the router) — and every role short of the one a method needs —
calls every admin RPC, on the admin listener and on the data plane.

The method list is the service descriptors and the required roles the server's own access table,
so a new RPC is attacked the day it is added. Each call is refused before its servicer runs
(PERMISSION_DENIED ``ROLE_REQUIRED``, or ``WRONG_LISTENER`` on the other plane), audited as
``auth.denied`` with the caller, and no business row changes.
"""

from __future__ import annotations

import secrets

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from sqlalchemy import text

from tests.security.test_c01_cross_workspace_every_rpc import METHODS, _message_class, _request
from tests.support import signing_flow as sf
from tests.support.custody import make_workspace, onboard
from tests.support.errors import call_error
from tests.support.vault import ROLES, RunningVault, inspect_db, iter_audit, start_vault
from vault_server.auth.principal import Role
from vault_server.auth.rpc_roles import RULES, Plane

ADMIN = [
    m for m in METHODS if RULES[f"/{m.containing_service.full_name}/{m.name}"].plane is Plane.ADMIN
]
TABLES = ("workspaces", "credentials", "credential_versions", "routing_contexts", "kek_state")
CALLERS = {
    **ROLES,
    "router-all": {"type": "service", "roles": ["router"], "workspaces": ["*"]},
    "auditor-all": {"type": "user", "roles": ["auditor"], "workspaces": ["*"]},
    "onboarding-all": {"type": "user", "roles": ["onboarding"], "workspaces": ["*"]},
}


def _rows(vault: RunningVault) -> list[object]:
    db = inspect_db(vault.app)
    try:
        with db.transaction() as session:
            return [session.execute(text(f"SELECT * FROM {t}")).all() for t in TABLES]
    finally:
        if db is not vault.app.db:
            db.dispose()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    vault = start_vault(tmp_path_factory.mktemp("c10") / "home", roles=CALLERS)
    try:
        make_workspace(vault, "ws-a")
        cred = onboard(vault, "ws-a", "c", "A" * 24, secrets.token_hex(32))
        rc = sf.begin(vault, cred.name).name
        names = {
            "workspace": "workspaces/ws-a",
            "credential": cred.name,
            "version": f"{cred.name}/versions/1",
            "routing_context": rc,
        }
        yield vault, names
    finally:
        vault.stop()


def _call(vault: RunningVault, method: MethodDescriptor, names: dict[str, str], who: str,
          target: str) -> grpc.RpcError | None:  # fmt: skip
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = _request(method, names)
    out = _message_class(method, output=True)
    channel = vault.channel(target)
    try:
        if method.server_streaming:
            list(channel.unary_stream(path, request_serializer=type(request).SerializeToString,
                                      response_deserializer=out.FromString)(
                request, metadata=vault.md(who), timeout=10))  # fmt: skip
        else:
            channel.unary_unary(path, request_serializer=type(request).SerializeToString,
                                response_deserializer=out.FromString)(
                request, metadata=vault.md(who), timeout=10)  # fmt: skip
    except grpc.RpcError as exc:
        return exc
    return None


def _lacking(method: MethodDescriptor) -> list[str]:
    """Every caller whose roles miss the method's rule (all-workspace grants, so only the role
    decides)."""
    rule = RULES[f"/{method.containing_service.full_name}/{method.name}"]
    by_role = {
        Role.ROUTER: "router-all",
        Role.AUDITOR: "auditor-all",
        Role.ONBOARDING: "onboarding-all",
    }
    return [who for role, who in by_role.items() if role not in rule.roles]


@pytest.mark.parametrize("method", ADMIN, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_admin_rpc_refuses_every_role_it_does_not_name(target, method: MethodDescriptor) -> None:  # type: ignore[no-untyped-def]
    vault, names = target
    callers = _lacking(method)
    assert "router-all" in callers  # the application identity never holds an admin role
    before_rows = _rows(vault)
    for who in callers:
        before = [e.id for e in iter_audit(vault.app)]
        exc = _call(vault, method, names, who, vault.admin_target)
        assert exc is not None, f"{method.name} answered {who}"
        err = call_error(exc)
        assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"), (
            who,
            err,
        )
        new = [e for e in iter_audit(vault.app) if e.id not in before]
        assert [(e.action, e.actor_id) for e in new] == [("auth.denied", who)], (who, new)
    # The router on its own plane: the admin method is not served there at all.
    exc = _call(vault, method, names, "router", vault.socket_target)
    assert exc is not None and call_error(exc).reason == "WRONG_LISTENER"
    assert _rows(vault) == before_rows
