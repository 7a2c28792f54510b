"""Workspaces: creation, listing, the freeze kill switch (and its expiry), and
the audited refusal of calls into a workspace the caller was not granted.
"""

from __future__ import annotations

from vault_server.workspaces._denials import DenialRecorder
from vault_server.workspaces._manager import (
    WorkspaceManager,
    ensure_not_frozen,
    is_frozen,
    load_visible,
)
from vault_server.workspaces._view import WorkspaceView

__all__ = [
    "DenialRecorder",
    "WorkspaceManager",
    "WorkspaceView",
    "ensure_not_frozen",
    "is_frozen",
    "load_visible",
]
