"""Parsing of friendly command-line values: enum names, durations, times, resource names."""

from __future__ import annotations

import argparse
import datetime
import re
from collections.abc import Callable

from google.protobuf import descriptor as _descriptor
from google.protobuf import timestamp_pb2
from pipsync.vault.v1 import audit_pb2, trading_pb2
from pipvault_client import VENUES, canonical_venue, credential_name, workspace_name

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# Short forms people actually type, on top of the enum names themselves (venues: the client's
# one alias table, pipvault_client.VENUE_ALIASES).
_ALIASES = {
    "KEY_ALGORITHM": {"hmac": "HMAC_SHA256", "ecdsa": "ECDSA_P256", "es256": "ECDSA_P256"},
    "ENVIRONMENT": {"demo": "PAPER", "practice": "PAPER"},
}


def friendly(enum: _descriptor.EnumDescriptor, number: int, prefix: str) -> str:
    """``BROKER_BINANCE_SPOT`` -> ``binance-spot`` (unknown numbers print as the number)."""
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)
    return value.name.removeprefix(prefix).lower().replace("_", "-")


def enum_parser(enum: _descriptor.EnumDescriptor, prefix: str) -> Callable[[str], str]:
    """An argparse ``type=`` turning ``binance-spot`` / ``BROKER_BINANCE_SPOT`` into the enum
    value name (``BROKER_BINANCE_SPOT``), which the message constructors accept."""
    aliases = _ALIASES.get(prefix.rstrip("_"), {})
    valid = [v.name for v in enum.values if not v.name.endswith("_UNSPECIFIED")]

    def parse(text: str) -> str:
        key = text.strip()
        key = aliases.get(key.lower(), key).upper().replace("-", "_")
        name = key if key.startswith(prefix) else prefix + key
        if name not in valid:
            choices = ", ".join(
                friendly(enum, enum.values_by_name[v].number, prefix) for v in valid
            )
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {choices})")
        return name

    parse.__name__ = prefix.rstrip("_").lower().replace("_", "-")
    return parse


def BROKER(text: str) -> str:  # noqa: N802 (an argparse type, named like its siblings)
    """Any venue spelling the client accepts (``binance_spot``, ``binance-spot``,
    ``BROKER_BINANCE_SPOT``, ``binance``) -> the enum value name ``BROKER_BINANCE_SPOT``."""
    try:
        return "BROKER_" + canonical_venue(text).upper()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid choice {text!r} (choose from {', '.join(VENUES)})"
        ) from None


BROKER.__name__ = "broker"


def venue(number: int) -> str:
    """``BROKER_BINANCE_SPOT`` -> ``binance_spot``, the canonical name (unknown: the number)."""
    try:
        return canonical_venue(number)
    except ValueError:
        return str(number)


ENVIRONMENT = enum_parser(trading_pb2.Environment.DESCRIPTOR, "ENVIRONMENT_")
KEY_ALGORITHM = enum_parser(trading_pb2.KeyAlgorithm.DESCRIPTOR, "KEY_ALGORITHM_")
ORDER_SIDE = enum_parser(trading_pb2.OrderSide.DESCRIPTOR, "ORDER_SIDE_")
ORDER_TYPE = enum_parser(trading_pb2.OrderType.DESCRIPTOR, "ORDER_TYPE_")
OUTCOME = enum_parser(audit_pb2.AuditEvent.Outcome.DESCRIPTOR, "OUTCOME_")


def generated_key_algorithm(text: str) -> str:
    """``ed25519`` or ``rsa`` (the algorithms the vault can generate)."""
    name = KEY_ALGORITHM(text)
    if name not in ("KEY_ALGORITHM_ED25519", "KEY_ALGORITHM_RSA"):
        raise argparse.ArgumentTypeError("the vault generates ed25519 or rsa keys")
    return name


generated_key_algorithm.__name__ = "algorithm"


def duration(text: str) -> datetime.timedelta:
    """``30s``, ``5m``, ``2h``, ``1h30m``, ``1d``, ``500ms`` or plain seconds; positive."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        if not value or _DURATION_PART.sub("", value):
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r} (use e.g. 30s, 5m, 2h, 1h30m)"
            ) from None
        seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))
    if not 0 < seconds < 10 * 365 * 86400:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return datetime.timedelta(seconds=seconds)


def seconds(text: str) -> float:
    """A duration as seconds (for ``--timeout``)."""
    return duration(text).total_seconds()


seconds.__name__ = "duration"


def time_point(text: str, *, now: datetime.datetime | None = None) -> datetime.datetime:
    """RFC 3339 (``2025-05-01T12:00:00Z``), a date (``2025-05-01``, midnight UTC), or a
    duration meaning that long ago (``2h``). Naive times are UTC."""
    value = text.strip()
    try:
        parsed = datetime.datetime.fromisoformat(
            value.replace("Z", "+00:00").replace("z", "+00:00")
        )
    except ValueError:
        try:
            ago = duration(value)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"invalid time {text!r} (use RFC 3339, a date, or a duration ago like 2h)"
            ) from None
        return (now or datetime.datetime.now(datetime.UTC)) - ago
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


time_point.__name__ = "time"


def workspace(text: str) -> str:
    """``ws`` or ``workspaces/ws``."""
    try:
        return workspace_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def credential(text: str) -> str:
    """``workspaces/ws/credentials/c`` or ``ws/c``."""
    value = text.strip()
    parts = value.split("/")
    try:
        if len(parts) == 4 and parts[0] == "workspaces" and parts[2] == "credentials":
            return credential_name(parts[1], parts[3])
        if len(parts) == 2:
            return credential_name(parts[0], parts[1])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    raise argparse.ArgumentTypeError(
        f"invalid credential name {text!r} (use workspaces/WS/credentials/ID or WS/ID)"
    )


def credential_version(text: str) -> str:
    """``workspaces/ws/credentials/c/versions/2`` or ``ws/c/2``."""
    value = text.strip()
    parts = value.split("/")
    if len(parts) == 6 and parts[4] == "versions":
        base, number = credential("/".join(parts[:4])), parts[5]
    elif len(parts) == 3:
        base, number = credential("/".join(parts[:2])), parts[2]
    else:
        raise argparse.ArgumentTypeError(
            f"invalid version name {text!r} "
            "(use workspaces/WS/credentials/ID/versions/N or WS/ID/N)"
        )
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"invalid version number in {text!r}")
    return f"{base}/versions/{int(number)}"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


positive_int.__name__ = "number"


def decimal(text: str) -> str:
    """A plain decimal string (no exponent), as the API wants quantities and prices."""
    value = text.strip()
    if not re.fullmatch(r"\d+(\.\d+)?", value):
        raise argparse.ArgumentTypeError(f"invalid decimal {text!r} (e.g. 0.5 or 25000)")
    return value


def format_timestamp(ts: timestamp_pb2.Timestamp) -> str:
    """ISO 8601 UTC, or empty when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return ""
    return ts.ToDatetime(tzinfo=datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
