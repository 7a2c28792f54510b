"""Connection and call settings: TLS material, retry policy, deadlines, channel options."""

from __future__ import annotations

import dataclasses
import math
import pathlib

__all__ = [
    "DEFAULT_TIMEOUT",
    "RetryPolicy",
    "TlsConfig",
]

DEFAULT_TIMEOUT = 10.0
"""Default deadline of every call, in seconds. The server refuses calls without a deadline."""

MAX_RECEIVE_MESSAGE_LENGTH = 8 * 1024 * 1024
MAX_SEND_MESSAGE_LENGTH = 4 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS material for a TCP connection (paths to PEM files).

    Attributes:
        ca_file: CA bundle that signs the server's certificate (``None``: the system roots).
        cert_file: client certificate chain for mTLS (with ``key_file``).
        key_file: client private key for mTLS (with ``cert_file``).
        server_name: expected server name when it differs from the address's host
            (``grpc.ssl_target_name_override``).
    """

    ca_file: str | pathlib.Path | None = None
    cert_file: str | pathlib.Path | None = None
    key_file: str | pathlib.Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TLS client certificate and key must be given together")

    def __repr__(self) -> str:
        return (
            f"TlsConfig(ca_file={self.ca_file!r}, cert_file={self.cert_file!r}, "
            f"key_file={'<set>' if self.key_file else None}, server_name={self.server_name!r})"
        )

    def read(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """Reads (root certificates, private key, certificate chain) for
        ``grpc.ssl_channel_credentials``."""
        return (
            _read(self.ca_file, "CA bundle"),
            _read(self.key_file, "client key"),
            _read(self.cert_file, "client certificate"),
        )


def _read(path: str | pathlib.Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read TLS {what} {str(path)!r}: {exc.strerror}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, for read-only RPCs only.

    Only UNAVAILABLE, and RESOURCE_EXHAUSTED with reason CONCURRENCY_LIMITED, are retried, and
    only for RPCs that change nothing (Get*, List*, VerifyAuditLog, GetKeyStatus, and a stream of
    audit events that has not yet produced an event). Retries never outlive the call's deadline:
    a backoff that would end too close to it is not taken and the last error is raised.

    Attributes:
        max_attempts: attempts in total, including the first (1 disables retries).
        initial_backoff: upper bound of the first sleep, in seconds.
        max_backoff: cap of any sleep, in seconds.
        multiplier: growth of the bound per attempt.
        min_attempt_time: an attempt is only started with at least this much deadline left.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    min_attempt_time: float = 0.05

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for value in (self.initial_backoff, self.max_backoff, self.min_attempt_time):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError("backoff times must be finite and non-negative")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise ValueError("multiplier must be at least 1")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff_bound(self, retry_number: int) -> float:
        """Upper bound of the sleep before retry ``retry_number`` (1-based)."""
        return float(
            min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry_number - 1))
        )


def check_timeout(timeout: float) -> float:
    """Validates a deadline in seconds: finite and positive (there is no "no deadline")."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError("timeout must be a number of seconds")
    value = float(timeout)
    if not (math.isfinite(value) and value > 0):
        raise ValueError("timeout must be a finite, positive number of seconds")
    return value
