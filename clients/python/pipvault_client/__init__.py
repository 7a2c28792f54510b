"""Typed Python client for the pipvault credential vault.

>>> from pipvault_client import VaultClient
>>> with VaultClient("unix:///run/pipvault/data.sock", token="...") as vault:  # doctest: +SKIP
...     ws = vault.freeze_workspace("workspaces/prod", reason="incident 42")

See the README of the ``pipvault-client`` distribution.
"""

from __future__ import annotations

from pipsync.vault.v1.credential_pb2 import OrderPolicy, SecretMaterial
from pipsync.vault.v1.signing_service_pb2 import SignOrderRequest
from pipsync.vault.v1.trading_pb2 import Order

from pipvault_client._aio import AsyncVaultClient
from pipvault_client._base import CallOptions
from pipvault_client._client import VaultClient
from pipvault_client._config import DEFAULT_TIMEOUT, RetryPolicy, TlsConfig
from pipvault_client._errors import (
    ERROR_DOMAIN,
    AbortedError,
    AlreadyExistsError,
    CallCancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    VaultClientError,
)
from pipvault_client._names import (
    credential_name,
    credential_version_name,
    routing_context_name,
    workspace_name,
)
from pipvault_client._signing import SignOrderResult
from pipvault_client._venues import VENUE_ALIASES, VENUES, broker_value, canonical_venue
from pipvault_client._version import __version__

__all__ = [
    "DEFAULT_TIMEOUT",
    "ERROR_DOMAIN",
    "VENUES",
    "VENUE_ALIASES",
    "AbortedError",
    "AlreadyExistsError",
    "AsyncVaultClient",
    "CallCancelledError",
    "CallOptions",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "Order",
    "OrderPolicy",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RetryPolicy",
    "SecretMaterial",
    "SignOrderRequest",
    "SignOrderResult",
    "TlsConfig",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "VaultClient",
    "VaultClientError",
    "__version__",
    "broker_value",
    "canonical_venue",
    "credential_name",
    "credential_version_name",
    "routing_context_name",
    "workspace_name",
]
