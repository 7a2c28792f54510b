"""Argument checks and conversions the RPC methods share (pure: no I/O, no logging)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable

from google.protobuf import duration_pb2, timestamp_pb2
from pipsync.vault.v1 import audit_pb2, credential_pb2, trading_pb2
from pipsync.vault.v1 import audit_service_pb2 as audit_svc

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
    """The filter of ``ListAuditEvents`` and ``StreamAuditEvents``."""
    return audit_svc.AuditFilter(
        workspace=workspace,
        credential=credential,
        actor=actor,
        action=action,
        outcome=outcome,
        start_time=timestamp(start_time, "start_time"),
        end_time=timestamp(end_time, "end_time"),
    )


def check_material(material: object) -> None:
    """Secret material is only ever a ``SecretMaterial`` message (never a dict or bytes)."""
    if not isinstance(material, credential_pb2.SecretMaterial):
        raise TypeError("material must be a pipsync.vault.v1.SecretMaterial")


def check_secret(value: object, what: str) -> None:
    """A secret argument is a non-empty string; the message never quotes the value."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string")
    if not value.strip():
        raise ValueError(f"{what} is required")


def strings(values: Iterable[str], what: str) -> list[str]:
    """A repeated string field; a lone string (an iterable of characters) is refused."""
    if isinstance(values, str):
        raise TypeError(f"{what} must be an iterable of strings, not a string")
    return list(values)
