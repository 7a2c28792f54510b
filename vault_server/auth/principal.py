"""Who is calling: the principal an identity source resolved, and what it was granted."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.Enum):
    ROUTER = "router"  # routing contexts, sign, execute
    ONBOARDING = "onboarding"  # create / rotate credentials
    SECURITY = "security"  # workspaces, freeze, revoke, keys, audit
    AUDITOR = "auditor"  # read audit and metadata


class PrincipalType(enum.Enum):
    USER = "user"
    SERVICE = "service"


ALL_WORKSPACES = "*"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
        id: stable identifier (policy principal name, SPIFFE ID, JWT subject).
        type: user or service.
        roles: granted roles.
        workspaces: workspace ids it may touch (``{"*"}``: all).
        may_assert_on_behalf_of: it may name the user it acts for (``x-pipvault-on-behalf-of``).
    """

    id: str
    type: PrincipalType
    roles: frozenset[Role]
    workspaces: frozenset[str]
    may_assert_on_behalf_of: bool = False

    def can_access_workspace(self, workspace_id: str) -> bool:
        return ALL_WORKSPACES in self.workspaces or workspace_id in self.workspaces

    @property
    def all_workspaces(self) -> bool:
        return ALL_WORKSPACES in self.workspaces
