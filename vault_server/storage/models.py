"""SQLAlchemy 2 typed models: the whole schema.

Every tenant table carries ``workspace_id`` (the workspace's UUID) as the first column of its
composite unique keys, so uniqueness errors never reveal another tenant's rows, and PostgreSQL
row-level security filters on it (migrations 0002 and 0005). ``workspaces`` (its own row) and
``pager_outbox`` (a workspace's pages; ``workspace_id`` NULL for system pages) are bound to the
session's workspace as well, except for the named cross-workspace jobs (``storage.tenant``).
Global tables: ``kek_state``, and ``audit_chain_heads`` / ``audit_events`` for the system chain.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vault_server.storage.types import JsonText, UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UUID_LEN = 36


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TenantScoped:
    """Marker for tables filtered by workspace (ORM guard and RLS)."""

    workspace_id: Mapped[str]


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16))  # active | frozen
    freeze_reason: Mapped[str] = mapped_column(Text, default="")
    frozen_by: Mapped[str] = mapped_column(String(255), default="")
    freeze_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    freeze_expire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped in the same transaction as every change a cached signing state depends on
    # (storage/invalidation.py); never part of the etag.
    cache_epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Credential(TenantScoped, Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("workspace_id", "resource_id"),)

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    resource_id: Mapped[str] = mapped_column(String(63))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    broker: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    key_algorithm: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # pending | active | quarantined | revoked
    api_key_hint: Mapped[str] = mapped_column(String(32), default="")
    scopes: Mapped[list[str]] = mapped_column(JsonText, default=list)
    venue_scopes: Mapped[list[str]] = mapped_column(JsonText, default=list)
    single_permission_tier: Mapped[bool] = mapped_column(Boolean, default=False)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    policy: Mapped[dict[str, Any]] = mapped_column(JsonText, default=dict)
    attestation: Mapped[dict[str, Any] | None] = mapped_column(JsonText, nullable=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoke_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)


class CredentialVersion(TenantScoped, Base):
    __tablename__ = "credential_versions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "credential_id", "version"),
        Index("ix_credential_versions_kek", "provider_id", "kek_version"),
    )

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # pending | current | previous | destroyed
    api_key_hint: Mapped[str] = mapped_column(String(32), default="")
    # The sealed envelope (crypto/envelope.py). NULL once destroyed: the bytes are gone.
    envelope: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    provider_id: Mapped[str] = mapped_column(String(64), default="")
    kek_version: Mapped[int] = mapped_column(Integer, default=0)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    promote_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    destroy_after: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    destroy_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class RoutingContext(TenantScoped, Base):
    __tablename__ = "routing_contexts"
    __table_args__ = (UniqueConstraint("workspace_id", "resource_id"),)

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    resource_id: Mapped[str] = mapped_column(String(63))
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), index=True)
    strategy_id: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))  # active | ended
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expire_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    end_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SignedOrder(TenantScoped, Base):
    """Client order ids already signed, for duplicate refusal and per-interval rate limits."""

    __tablename__ = "signed_orders"
    __table_args__ = (
        UniqueConstraint("workspace_id", "credential_id", "client_order_id"),
        Index("ix_signed_orders_rate", "credential_id", "sign_time"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"))
    client_order_id: Mapped[str] = mapped_column(String(64))
    sign_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expire_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class VenueNonce(TenantScoped, Base):
    """The vault-owned, strictly increasing nonce per venue key (Kraken)."""

    __tablename__ = "venue_nonces"
    __table_args__ = (
        ForeignKeyConstraint(["credential_id"], ["credentials.id"]),
        UniqueConstraint("workspace_id", "credential_id"),
    )

    credential_id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    last_nonce: Mapped[int] = mapped_column(BigInteger)


class VenueSession(TenantScoped, Base):
    """The venue session (or OAuth grant) the vault holds for one credential version, shared by
    every replica (``vault_server/sessions``). Tokens only ever sealed. A version has its own
    row, so a rotation (a new password or consent) brings its own session before promotion."""

    __tablename__ = "venue_sessions"
    __table_args__ = (ForeignKeyConstraint(["credential_id"], ["credentials.id"]),)

    credential_id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    credential_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    # idle | active | renewing | needs_reauthorization | locked_out
    state: Mapped[str] = mapped_column(String(32), default="idle")
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    # The sealed tokens (crypto/envelope.py), bound to the credential and ``generation``, and
    # the KEK that wraps their data key (key census, rotation and migration count these too).
    envelope: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    provider_id: Mapped[str] = mapped_column(String(64), default="")
    kek_version: Mapped[int] = mapped_column(Integer, default=0)
    expire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    refresh_expire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    renew_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The replica renewing it right now, until when, and what it does (login | refresh).
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    lease_kind: Mapped[str] = mapped_column(String(16), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(64), default="")
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class PlatformApplication(Base):
    """A venue's OAuth application registered by the platform (global: one per venue and
    environment). The client secret is sealed, bound to this row's id and version."""

    __tablename__ = "platform_applications"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "{venue}-{environment}"
    broker: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer, default=1)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    provider_id: Mapped[str] = mapped_column(String(64), default="")
    kek_version: Mapped[int] = mapped_column(Integer, default=0)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AuditEvent(Base):
    """Append-only. One keyed hash chain per workspace (``chain_id``) plus a ``system`` chain."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "seq"),
        Index("ix_audit_events_ws_time", "workspace_id", "event_time"),
        Index("ix_audit_events_chain_id", "chain_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chain_id: Mapped[str] = mapped_column(String(UUID_LEN))
    seq: Mapped[int] = mapped_column(BigInteger)
    event_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    workspace_id: Mapped[str | None] = mapped_column(String(UUID_LEN), nullable=True)
    workspace: Mapped[str] = mapped_column(String(100), default="")
    credential: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # success | denied | failed
    actor_type: Mapped[str] = mapped_column(String(16))  # user | service | system
    actor_id: Mapped[str] = mapped_column(String(255))
    on_behalf_of: Mapped[str] = mapped_column(String(255), default="")
    peer: Mapped[str] = mapped_column(String(255), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    routing_context: Mapped[str] = mapped_column(String(200), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(128), default="")
    error_reason: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, str]] = mapped_column(JsonText, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """Latest sequence and hash per chain, locked per append: chains never serialize each other."""

    __tablename__ = "audit_chain_heads"

    chain_id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(String(UUID_LEN), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class PagerOutbox(Base):
    """Pages to deliver, written in the audit transaction (delivered by ``alerts/``)."""

    __tablename__ = "pager_outbox"
    __table_args__ = (
        Index("ix_pager_outbox_pending", "delivered_time", "next_attempt_time"),
        Index("ix_pager_outbox_dedup_key", "dedup_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(String(UUID_LEN), nullable=True)
    dedup_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonText)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    delivered_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(255), default="")


class KekState(Base):
    """Durable wrap counter and lifecycle per KEK version (global, not tenant data)."""

    __tablename__ = "kek_state"

    provider_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kek_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # active | decrypt_only | retired
    wrap_count: Mapped[int] = mapped_column(BigInteger, default=0)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


TENANT_ENTITIES: tuple[type[Any], ...] = (
    Credential,
    CredentialVersion,
    RoutingContext,
    SignedOrder,
    VenueNonce,
)
