"""Resource-name helpers (AIP-122): build and normalise names the API expects."""

from __future__ import annotations

import re

__all__ = [
    "credential_name",
    "credential_version_name",
    "routing_context_name",
    "workspace_name",
]

_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


def _check_id(value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"invalid {what} id: must match {_ID.pattern}")
    return value


def workspace_name(workspace: str) -> str:
    """``ws`` or ``workspaces/ws`` -> ``workspaces/ws``."""
    workspace = workspace.strip()
    if workspace.startswith("workspaces/"):
        _check_id(workspace.removeprefix("workspaces/"), "workspace")
        return workspace
    return f"workspaces/{_check_id(workspace, 'workspace')}"


def credential_name(workspace: str, credential: str) -> str:
    """``workspaces/{workspace}/credentials/{credential}``."""
    return f"{workspace_name(workspace)}/credentials/{_check_id(credential, 'credential')}"


def credential_version_name(workspace: str, credential: str, version: int) -> str:
    """``workspaces/{workspace}/credentials/{credential}/versions/{version}``."""
    if isinstance(version, bool) or version < 1:
        raise ValueError("credential versions start at 1")
    return f"{credential_name(workspace, credential)}/versions/{int(version)}"


def routing_context_name(workspace: str, routing_context: str) -> str:
    """``workspaces/{workspace}/routingContexts/{routing_context}``."""
    if not routing_context or "/" in routing_context:
        raise ValueError("invalid routing context id")
    return f"{workspace_name(workspace)}/routingContexts/{routing_context}"
