"""Parse and format resource names (AIP-122) in exactly one place."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vault_server.core.errors import InvalidArgument

# Always ``fullmatch``: with ``match``, ``$`` also matches before a trailing newline, so
# "ws-a\n" passed as a distinct id that prints like "ws-a".
RESOURCE_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_ROUTING_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")


def check_id(field: str, value: str) -> str:
    if not RESOURCE_ID.fullmatch(value or ""):
        raise InvalidArgument(field, "must match ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
    return value


def workspace_name(ws: str) -> str:
    return f"workspaces/{ws}"


def credential_name(ws: str, cred: str) -> str:
    return f"workspaces/{ws}/credentials/{cred}"


def version_name(ws: str, cred: str, version: int) -> str:
    return f"workspaces/{ws}/credentials/{cred}/versions/{version}"


def routing_context_name(ws: str, ctx: str) -> str:
    return f"workspaces/{ws}/routingContexts/{ctx}"


def parse_workspace(field: str, name: str) -> str:
    parts = (name or "").split("/")
    if len(parts) != 2 or parts[0] != "workspaces":
        raise InvalidArgument(field, "must be workspaces/{workspace}")
    return check_id(field, parts[1])


@dataclass(frozen=True)
class CredentialRef:
    workspace: str
    credential: str


def parse_credential(field: str, name: str) -> CredentialRef:
    parts = (name or "").split("/")
    if len(parts) != 4 or parts[0] != "workspaces" or parts[2] != "credentials":
        raise InvalidArgument(field, "must be workspaces/{workspace}/credentials/{credential}")
    return CredentialRef(check_id(field, parts[1]), check_id(field, parts[3]))


@dataclass(frozen=True)
class VersionRef:
    workspace: str
    credential: str
    version: int


def parse_version(field: str, name: str) -> VersionRef:
    parts = (name or "").split("/")
    if (
        len(parts) != 6
        or parts[0] != "workspaces"
        or parts[2] != "credentials"
        or parts[4] != "versions"
        or not parts[5].isdigit()
        or len(parts[5]) > 9
    ):
        raise InvalidArgument(
            field, "must be workspaces/{workspace}/credentials/{credential}/versions/{n}"
        )
    return VersionRef(check_id(field, parts[1]), check_id(field, parts[3]), int(parts[5]))


@dataclass(frozen=True)
class RoutingRef:
    workspace: str
    routing_context: str


def parse_routing_context(field: str, name: str) -> RoutingRef:
    parts = (name or "").split("/")
    if len(parts) != 4 or parts[0] != "workspaces" or parts[2] != "routingContexts":
        raise InvalidArgument(field, "must be workspaces/{workspace}/routingContexts/{id}")
    if not _ROUTING_ID.fullmatch(parts[3]):
        raise InvalidArgument(field, "routing context id is malformed")
    return RoutingRef(check_id(field, parts[1]), parts[3])


def workspace_of_name(name: str) -> str | None:
    """The workspace id at the start of any resource name, without validating the rest."""
    parts = (name or "").split("/")
    if len(parts) >= 2 and parts[0] == "workspaces" and RESOURCE_ID.fullmatch(parts[1]):
        return parts[1]
    return None
