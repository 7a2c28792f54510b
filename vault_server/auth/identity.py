"""Identity sources: turn call credentials into a policy principal.

The foundation has hashed static bearer tokens (dev, bootstrap). mTLS SPIFFE and JWT sources
plug in here as further ``IdentitySource`` implementations; the authorizer does not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from vault_server.auth.policy import PolicyEntry

if TYPE_CHECKING:
    from vault_server.auth.policy_store import PolicyProvider


@dataclass(frozen=True)
class CallCredentials:
    """Transport facts about one call, extracted by the RPC edge."""

    metadata: Mapping[str, str]
    peer_spiffe_ids: tuple[str, ...] = ()


class IdentitySource(Protocol):
    def identify(self, creds: CallCredentials) -> PolicyEntry | None:
        """The policy entry for this call, or None when this source does not recognise it."""
        ...


class StaticTokenSource:
    """``authorization: Bearer <token>`` checked against sha256 hashes in the policy."""

    def __init__(self, policy: PolicyProvider) -> None:
        self._policy = policy

    def identify(self, creds: CallCredentials) -> PolicyEntry | None:
        header = creds.metadata.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._policy.current().by_token(token.strip())


def identify(sources: list[IdentitySource], creds: CallCredentials) -> PolicyEntry | None:
    for source in sources:
        entry = source.identify(creds)
        if entry is not None:
            return entry
    return None
