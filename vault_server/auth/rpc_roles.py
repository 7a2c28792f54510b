"""The one table of what every RPC needs: its plane, the roles allowed, and whether it needs a
reason. A method missing from this table is denied (deny by default); a test checks that every
method in the service descriptors appears here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vault_server.auth.principal import Role


class Plane(enum.Enum):
    DATA = "data"  # routing services: Unix socket / data TCP listener
    ADMIN = "admin"  # security team: admin listener


@dataclass(frozen=True)
class RpcRule:
    plane: Plane
    roles: frozenset[Role]
    reason_required: bool
    # Acts on every workspace at once (key operations): needs a grant of all workspaces.
    all_workspaces: bool = False


_P = "/pipsync.vault.v1."
_SEC = frozenset({Role.SECURITY})
_READ_ADMIN = frozenset({Role.SECURITY, Role.AUDITOR})
_ONBOARD = frozenset({Role.ONBOARDING, Role.SECURITY})
_CRED_READ = frozenset({Role.ONBOARDING, Role.SECURITY, Role.AUDITOR})
_ROUTER = frozenset({Role.ROUTER})


def _admin(roles: frozenset[Role], reason: bool) -> RpcRule:
    return RpcRule(Plane.ADMIN, roles, reason)


RULES: dict[str, RpcRule] = {
    f"{_P}WorkspaceService/CreateWorkspace": _admin(_SEC, True),
    f"{_P}WorkspaceService/GetWorkspace": _admin(_READ_ADMIN, False),
    f"{_P}WorkspaceService/ListWorkspaces": _admin(_READ_ADMIN, False),
    f"{_P}WorkspaceService/FreezeWorkspace": _admin(_SEC, True),
    f"{_P}WorkspaceService/UnfreezeWorkspace": _admin(_SEC, True),
    f"{_P}CredentialService/CreateCredential": _admin(_ONBOARD, True),
    f"{_P}CredentialService/GenerateCredentialKey": _admin(_ONBOARD, True),
    f"{_P}CredentialService/AttachCredentialApiKey": _admin(_ONBOARD, True),
    f"{_P}CredentialService/GetCredential": _admin(_CRED_READ, False),
    f"{_P}CredentialService/ListCredentials": _admin(_CRED_READ, False),
    f"{_P}CredentialService/RotateCredential": _admin(_ONBOARD, True),
    f"{_P}CredentialService/PromoteCredentialVersion": _admin(_ONBOARD, True),
    f"{_P}CredentialService/RevokeCredential": _admin(_SEC, True),
    f"{_P}CredentialService/AttestCredentialPermissions": _admin(_SEC, True),
    f"{_P}CredentialService/UpdateCredentialPolicy": _admin(_ONBOARD, True),
    f"{_P}CredentialService/ResetCredentialSession": _admin(_SEC, True),
    f"{_P}CredentialService/SetPlatformApplication": RpcRule(
        Plane.ADMIN, _SEC, True, all_workspaces=True
    ),
    f"{_P}CredentialService/ListPlatformApplications": RpcRule(
        Plane.ADMIN, _READ_ADMIN, False, all_workspaces=True
    ),
    f"{_P}SigningService/BeginRouting": RpcRule(Plane.DATA, _ROUTER, True),
    f"{_P}SigningService/BatchBeginRouting": RpcRule(Plane.DATA, _ROUTER, False),  # per item
    f"{_P}SigningService/RenewRouting": RpcRule(Plane.DATA, _ROUTER, True),
    f"{_P}SigningService/EndRouting": RpcRule(Plane.DATA, _ROUTER, True),
    f"{_P}SigningService/SignOrder": RpcRule(Plane.DATA, _ROUTER, True),
    # Each item carries its reason (or the call's metadata one): checked per item.
    f"{_P}SigningService/BatchSignOrders": RpcRule(Plane.DATA, _ROUTER, False),
    f"{_P}SigningService/ExecuteOrder": RpcRule(Plane.DATA, _ROUTER, True),
    f"{_P}AuditService/ListAuditEvents": _admin(_READ_ADMIN, False),
    f"{_P}AuditService/StreamAuditEvents": _admin(_READ_ADMIN, False),
    f"{_P}AuditService/VerifyAuditLog": _admin(_READ_ADMIN, False),
    f"{_P}KeyService/GetKeyStatus": RpcRule(Plane.ADMIN, _SEC, False, all_workspaces=True),
    f"{_P}KeyService/RotateKeyEncryptionKey": RpcRule(Plane.ADMIN, _SEC, True, all_workspaces=True),
    f"{_P}KeyService/MigrateKeys": RpcRule(Plane.ADMIN, _SEC, True, all_workspaces=True),
}

STREAMING = frozenset({f"{_P}AuditService/StreamAuditEvents", f"{_P}KeyService/MigrateKeys"})


def rule_for(method: str) -> RpcRule | None:
    return RULES.get(method)
