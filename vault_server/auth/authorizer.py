"""Decides whether a principal may call a method on a listener, and touch a workspace.

Deny by default: unknown method, wrong plane, missing role, or a workspace outside the grant.
A workspace outside the grant answers NOT_FOUND (indistinguishable from a missing one, §1.6).
"""

from __future__ import annotations

from vault_server.auth.principal import Principal
from vault_server.auth.rpc_roles import Plane, RpcRule, rule_for
from vault_server.core.errors import NotFound, PermissionDenied, WrongListener


def authorize_call(principal: Principal, method: str, plane: Plane) -> RpcRule:
    """Return the method's rule if ``principal`` may call it on ``plane``.

    Raises:
        WrongListener: the method belongs to the other plane.
        PermissionDenied: unknown method or no allowed role.
    """
    rule = rule_for(method)
    if rule is None:
        raise PermissionDenied("method is not in the access table", metadata={"method": method})
    if rule.plane is not plane:
        raise WrongListener(
            "this method is not served on this listener",
            metadata={"method": method, "plane": rule.plane.value},
        )
    if not (principal.roles & rule.roles):
        raise PermissionDenied(
            "the caller lacks a role this method needs",
            metadata={"method": method, "roles": ",".join(sorted(r.value for r in rule.roles))},
        )
    if rule.all_workspaces and not principal.all_workspaces:
        raise PermissionDenied(
            "this method acts on every workspace and needs a grant of all workspaces",
            metadata={"method": method},
        )
    return rule


class WorkspaceNotGranted(NotFound):
    """The workspace is outside the caller's grant. The caller sees a plain NOT_FOUND; the edge
    tells it apart only to audit a refused credential write under the write's own action."""


def authorize_workspace(principal: Principal, workspace_id: str) -> None:
    """Raise NOT_FOUND unless the principal's grant covers ``workspace_id``."""
    if not principal.can_access_workspace(workspace_id):
        raise WorkspaceNotGranted(f"workspaces/{workspace_id}")
