"""What the domain knows about the call it serves: who, from where, why, and until when."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

from vault_server.core.errors import AuditUnavailable


class ActorType(enum.Enum):
    USER = "user"
    SERVICE = "service"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str
    on_behalf_of: str = ""


SYSTEM_ACTOR = Actor(ActorType.SYSTEM, "pipvault")


@dataclass(frozen=True)
class CallContext:
    """One RPC (or one system job) as the domain sees it.

    Attributes:
        workspaces: workspace ids the caller may touch; ``None`` means all.
        deadline: ``time.monotonic()`` instant after which the work must not commit.
    """

    actor: Actor
    peer: str = ""
    reason: str = ""
    request_id: str = ""
    method: str = ""
    workspaces: frozenset[str] | None = None
    deadline: float | None = None
    routing_context: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: unbounded, for system jobs)."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def ensure_time_left(self) -> float | None:
        """Remaining seconds, or AUDIT_UNAVAILABLE if the deadline already passed."""
        left = self.remaining()
        if left is not None and left <= 0:
            raise AuditUnavailable("the request deadline passed before the action could commit")
        return left

    def may_see(self, workspace_id: str) -> bool:
        return self.workspaces is None or workspace_id in self.workspaces


def system_context(reason: str, *, method: str = "system") -> CallContext:
    return CallContext(actor=SYSTEM_ACTOR, reason=reason, method=method)
