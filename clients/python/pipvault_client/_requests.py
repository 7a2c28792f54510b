"""Request builders shared by the sync and async clients (pure: no I/O, no logging)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable

from google.protobuf import duration_pb2, timestamp_pb2
from pipsync.vault.v1 import audit_pb2, credential_pb2, trading_pb2, workspace_pb2
from pipsync.vault.v1 import audit_service_pb2 as audit_svc
from pipsync.vault.v1 import credential_service_pb2 as cred_svc
from pipsync.vault.v1 import key_service_pb2 as key_svc
from pipsync.vault.v1 import signing_service_pb2 as sign_svc
from pipsync.vault.v1 import workspace_service_pb2 as ws_svc

from pipvault_client._venues import broker_value

DurationLike = datetime.timedelta | float | int
"""A duration: a ``timedelta`` or a number of seconds."""

BrokerLike = trading_pb2.Broker | str
"""A venue: the enum, or any spelling ``canonical_venue`` accepts (``binance_spot``,
``binance-spot``, ``BROKER_BINANCE_SPOT``, ``binance``)."""
EnvironmentLike = trading_pb2.Environment | str
KeyAlgorithmLike = trading_pb2.KeyAlgorithm | str
OutcomeLike = audit_pb2.AuditEvent.Outcome | str


def duration(value: DurationLike | None, what: str) -> duration_pb2.Duration | None:
    """A positive ``Duration`` (``None`` stays unset)."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else value
    if isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a positive duration")
    result = duration_pb2.Duration()
    result.FromTimedelta(datetime.timedelta(seconds=seconds))
    return result


def timestamp(value: datetime.datetime | None, what: str) -> timestamp_pb2.Timestamp | None:
    """A ``Timestamp`` from a timezone-aware datetime (``None`` stays unset)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value.astimezone(datetime.UTC))
    return result


def page_size(value: int) -> int:
    """0 (server default) to 1000."""
    if isinstance(value, bool) or not 0 <= value <= 1000:
        raise ValueError("page_size must be between 0 and 1000")
    return value


# WorkspaceService ----------------------------------------------------------------------------


def create_workspace(
    workspace_id: str, display_name: str, reason: str
) -> ws_svc.CreateWorkspaceRequest:
    return ws_svc.CreateWorkspaceRequest(
        workspace_id=workspace_id,
        workspace=workspace_pb2.Workspace(display_name=display_name),
        reason=reason,
    )


def freeze_workspace(
    name: str, reason: str, ttl: DurationLike | None, etag: str
) -> ws_svc.FreezeWorkspaceRequest:
    return ws_svc.FreezeWorkspaceRequest(
        name=name, reason=reason, ttl=duration(ttl, "ttl"), etag=etag
    )


# CredentialService ---------------------------------------------------------------------------


def create_credential(
    *,
    parent: str,
    credential_id: str,
    broker: BrokerLike,
    environment: EnvironmentLike,
    key_algorithm: KeyAlgorithmLike,
    material: credential_pb2.SecretMaterial,
    scopes: Iterable[str],
    reason: str,
    display_name: str,
    acknowledge_single_permission_tier: bool,
    policy: credential_pb2.OrderPolicy | None,
    attest_on_create: bool,
) -> cred_svc.CreateCredentialRequest:
    if not isinstance(material, credential_pb2.SecretMaterial):
        raise TypeError("material must be a pipsync.vault.v1.SecretMaterial")
    return cred_svc.CreateCredentialRequest(
        parent=parent,
        credential_id=credential_id,
        display_name=display_name,
        broker=broker_value(broker),
        environment=environment,
        key_algorithm=key_algorithm,
        material=material,
        scopes=_strings(scopes, "scopes"),
        acknowledge_single_permission_tier=acknowledge_single_permission_tier,
        policy=policy,
        attest_on_create=attest_on_create,
        reason=reason,
    )


def generate_credential_key(
    *,
    parent: str,
    credential_id: str,
    broker: BrokerLike,
    environment: EnvironmentLike,
    key_algorithm: KeyAlgorithmLike,
    scopes: Iterable[str],
    reason: str,
    display_name: str,
    policy: credential_pb2.OrderPolicy | None,
) -> cred_svc.GenerateCredentialKeyRequest:
    return cred_svc.GenerateCredentialKeyRequest(
        parent=parent,
        credential_id=credential_id,
        display_name=display_name,
        broker=broker_value(broker),
        environment=environment,
        key_algorithm=key_algorithm,
        scopes=_strings(scopes, "scopes"),
        policy=policy,
        reason=reason,
    )


def list_credentials(
    parent: str, size: int, broker: BrokerLike, show_revoked: bool, token: str
) -> cred_svc.ListCredentialsRequest:
    return cred_svc.ListCredentialsRequest(
        parent=parent,
        page_size=size,
        page_token=token,
        broker=broker_value(broker),
        show_revoked=show_revoked,
    )


def rotate_credential(
    name: str,
    material: credential_pb2.SecretMaterial | None,
    reason: str,
    generate_key: bool,
    etag: str,
) -> cred_svc.RotateCredentialRequest:
    if material is not None and not isinstance(material, credential_pb2.SecretMaterial):
        raise TypeError("material must be a pipsync.vault.v1.SecretMaterial")
    if (material is None) == (not generate_key):
        raise ValueError("rotate_credential needs exactly one of material or generate_key")
    return cred_svc.RotateCredentialRequest(
        name=name, material=material, generate_key=generate_key, etag=etag, reason=reason
    )


# SigningService ------------------------------------------------------------------------------


def begin_routing(
    credential: str, strategy_id: str, reason: str, ttl: DurationLike | None
) -> sign_svc.BeginRoutingRequest:
    return sign_svc.BeginRoutingRequest(
        credential=credential, strategy_id=strategy_id, ttl=duration(ttl, "ttl"), reason=reason
    )


def renew_routing(name: str, reason: str, ttl: DurationLike | None) -> sign_svc.RenewRoutingRequest:
    return sign_svc.RenewRoutingRequest(name=name, ttl=duration(ttl, "ttl"), reason=reason)


# AuditService --------------------------------------------------------------------------------


def audit_filter(
    *,
    workspace: str,
    credential: str,
    actor: str,
    action: str,
    outcome: OutcomeLike,
    start_time: datetime.datetime | None,
    end_time: datetime.datetime | None,
) -> audit_svc.AuditFilter:
    return audit_svc.AuditFilter(
        workspace=workspace,
        credential=credential,
        actor=actor,
        action=action,
        outcome=outcome,
        start_time=timestamp(start_time, "start_time"),
        end_time=timestamp(end_time, "end_time"),
    )


# KeyService ----------------------------------------------------------------------------------


def migrate_keys(
    target_provider_id: str, batch_size: int, reason: str
) -> key_svc.MigrateKeysRequest:
    if isinstance(batch_size, bool) or not 0 <= batch_size <= 1000:
        raise ValueError("batch_size must be between 0 and 1000")
    if not target_provider_id:
        raise ValueError("target_provider_id is required")
    return key_svc.MigrateKeysRequest(
        target_provider_id=target_provider_id, batch_size=batch_size, reason=reason
    )


def _strings(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be an iterable of strings, not a string")
    return list(values)
