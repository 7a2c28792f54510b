"""The shared vocabulary of every capability: who is calling (``CallContext``),
resource names, page tokens and etags. Imports nothing above storage.
"""

from __future__ import annotations

from vault_server.domain._call import Actor, ActorType, CallContext, system_context
from vault_server.domain._etags import check_etag, etag
from vault_server.domain._names import (
    CredentialRef,
    check_id,
    credential_name,
    parse_credential,
    parse_routing_context,
    parse_version,
    parse_workspace,
    routing_context_name,
    version_name,
    workspace_name,
    workspace_of_name,
)
from vault_server.domain._pagination import PageTokens

__all__ = [
    "Actor",
    "ActorType",
    "CallContext",
    "CredentialRef",
    "PageTokens",
    "check_etag",
    "check_id",
    "credential_name",
    "etag",
    "parse_credential",
    "parse_routing_context",
    "parse_version",
    "parse_workspace",
    "routing_context_name",
    "system_context",
    "version_name",
    "workspace_name",
    "workspace_of_name",
]
