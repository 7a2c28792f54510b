"""What every call the vault makes to a venue on a credential's behalf needs to know (signing
and permission attestation alike): the venue settings, and the hook that pages the on-call when a
credential was read outside a routing context."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vault_server.audit import AuditRecord
from vault_server.domain import CallContext

# Called in the refusal's audit transaction when a read happened outside a routing context.
PageHook = Callable[[Session, CallContext, AuditRecord, int, str], None]


@dataclass(frozen=True)
class SigningSettings:
    recv_window_cap_ms: int
    coinbase_strict: bool
    venue_base_urls: Mapping[str, str]
