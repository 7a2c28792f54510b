"""The one domain error hierarchy.

Every failure the vault reports to a caller is a :class:`VaultError` subclass with a stable
``reason`` (the UPPER_SNAKE name of a ``pipsync.vault.v1.ErrorReason`` value, without its prefix)
and a :class:`ErrorKind` that the RPC layer maps to a gRPC status code in exactly one table
(``vault_server.rpc.status``). Third-party exceptions are wrapped into these at the layer that
calls the library.

Messages and metadata are shown to callers: they must never contain secret material. Build them
from identifiers and field names only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class ErrorKind(enum.Enum):
    """Transport-neutral error categories; ``rpc/status.py`` maps each to a gRPC code."""

    INVALID_ARGUMENT = "invalid_argument"
    FAILED_PRECONDITION = "failed_precondition"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    ABORTED = "aborted"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHENTICATED = "unauthenticated"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    UNIMPLEMENTED = "unimplemented"
    DATA_LOSS = "data_loss"
    INTERNAL = "internal"


class VaultError(Exception):
    """Base of every error the vault reports on purpose.

    Args:
        message: developer-facing English, no secrets, no implementation detail.
        metadata: non-secret dynamic values (lowerCamel keys), copied into ``ErrorInfo.metadata``.
    """

    kind: ErrorKind = ErrorKind.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


# --- invalid input -------------------------------------------------------------------------------
class InvalidArgument(VaultError):
    """A request field is missing or malformed; ``metadata['field']`` names it."""

    kind = ErrorKind.INVALID_ARGUMENT
    reason = "INVALID_FIELD"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", metadata={"field": field})
        self.field = field


class ReasonRequired(VaultError):
    """A mutating or credential-touching call arrived without a non-empty reason."""

    kind = ErrorKind.INVALID_ARGUMENT
    reason = "REASON_REQUIRED"


class InvalidPageToken(VaultError):
    """The page token is not one this server issued for these parameters."""

    kind = ErrorKind.INVALID_ARGUMENT
    reason = "INVALID_PAGE_TOKEN"


class WithdrawalScopeRejected(VaultError):
    """A credential declared (or was attested with) a withdraw or transfer scope."""

    kind = ErrorKind.INVALID_ARGUMENT
    reason = "WITHDRAWAL_SCOPE_REJECTED"


class UnknownScope(VaultError):
    """A declared scope is not in the venue's vocabulary (unknown scopes are never guessed)."""

    kind = ErrorKind.INVALID_ARGUMENT
    reason = "UNKNOWN_SCOPE"


class DeadlineRequired(VaultError):
    """The call carried no deadline; every call must."""

    kind = ErrorKind.INVALID_ARGUMENT
    reason = "DEADLINE_REQUIRED"


# --- state preconditions -------------------------------------------------------------------------
class SingleTierNotAcknowledged(VaultError):
    """A single-permission-tier broker credential was onboarded without the acknowledgement."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "SINGLE_TIER_NOT_ACKNOWLEDGED"


class WorkspaceFrozen(VaultError):
    """The workspace is frozen (kill switch): nothing is signed or changed in it."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "WORKSPACE_FROZEN"


class WorkspaceNotFrozen(VaultError):
    """Unfreeze was asked of a workspace that is not frozen."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "WORKSPACE_NOT_FROZEN"


class WorkspaceAlreadyFrozen(VaultError):
    """Freeze was asked of a frozen workspace without the etag of its current freeze."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "WORKSPACE_ALREADY_FROZEN"


class CredentialRevoked(VaultError):
    """The credential is revoked and can never be used again."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "CREDENTIAL_REVOKED"


class CredentialNotActive(VaultError):
    """The credential is pending (no API key attached / no current version) or quarantined."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "CREDENTIAL_NOT_ACTIVE"


class VersionNotPending(VaultError):
    """Only a PENDING credential version can be promoted."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "VERSION_NOT_PENDING"


class RoutingContextRequired(VaultError):
    """Signing was asked without an active routing context owned by the caller."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "ROUTING_CONTEXT_REQUIRED"


class OrderPolicyViolation(VaultError):
    """The order breaks the credential's order policy; ``metadata['rule']`` names the rule."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "ORDER_POLICY_VIOLATION"


class DuplicateClientOrderId(VaultError):
    """The client order id was already signed for this credential inside its freshness window."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "DUPLICATE_CLIENT_ORDER_ID"


class ProxyOnlyVenue(VaultError):
    """The venue's scheme would expose the secret, so only ExecuteOrder (proxy mode) is allowed."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "PROXY_ONLY_VENUE"


class OperationNotSupported(VaultError):
    """The venue module does not support this operation, key type or broker."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "OPERATION_NOT_SUPPORTED"


class KeyGenerationNotSupported(VaultError):
    """The venue does not accept uploaded public keys of the requested algorithm."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "KEY_GENERATION_NOT_SUPPORTED"


# --- identity and access -------------------------------------------------------------------------
class Unauthenticated(VaultError):
    """No usable identity on the call (missing, unknown or invalid token / certificate)."""

    kind = ErrorKind.UNAUTHENTICATED
    reason = "AUTHENTICATION_REQUIRED"


class PermissionDenied(VaultError):
    """The principal lacks the role this RPC needs, or the workspace is not in its grant."""

    kind = ErrorKind.PERMISSION_DENIED
    reason = "ROLE_REQUIRED"


class WrongListener(VaultError):
    """An admin RPC arrived on the data plane (or the reverse)."""

    kind = ErrorKind.PERMISSION_DENIED
    reason = "WRONG_LISTENER"


class EndpointNotAllowed(VaultError):
    """The venue endpoint is not on the trading allow-list (or is fund-moving / key management)."""

    kind = ErrorKind.PERMISSION_DENIED
    reason = "ENDPOINT_NOT_ALLOWED"


class RateLimited(VaultError):
    """The principal exceeded its request rate."""

    kind = ErrorKind.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"


class ConcurrencyLimited(VaultError):
    """The server is at its concurrent-RPC cap."""

    kind = ErrorKind.RESOURCE_EXHAUSTED
    reason = "CONCURRENCY_LIMITED"


# --- existence -----------------------------------------------------------------------------------
class NotFound(VaultError):
    """The named resource does not exist *or belongs to another workspace* (indistinguishable)."""

    kind = ErrorKind.NOT_FOUND
    reason = "RESOURCE_NOT_FOUND"

    def __init__(self, resource_name: str) -> None:
        super().__init__(f"{resource_name} not found", metadata={"resource": resource_name})


class AlreadyExists(VaultError):
    """A resource with this name already exists in the caller's scope."""

    kind = ErrorKind.ALREADY_EXISTS
    reason = "RESOURCE_ALREADY_EXISTS"

    def __init__(self, resource_name: str) -> None:
        super().__init__(f"{resource_name} already exists", metadata={"resource": resource_name})


class EtagMismatch(VaultError):
    """The request's etag is stale: the resource changed since the caller read it."""

    kind = ErrorKind.ABORTED
    reason = "ETAG_MISMATCH"


# --- dependencies --------------------------------------------------------------------------------
class AuditUnavailable(VaultError):
    """The audit event could not be committed in time, so the action did not happen."""

    kind = ErrorKind.UNAVAILABLE
    reason = "AUDIT_UNAVAILABLE"


class StorageUnavailable(VaultError):
    """The database could not be reached or timed out."""

    kind = ErrorKind.UNAVAILABLE
    reason = "STORAGE_UNAVAILABLE"


class KeyProviderUnavailable(VaultError):
    """The key provider (local keyring or KMS) could not wrap/unwrap; never a plaintext fallback."""

    kind = ErrorKind.UNAVAILABLE
    reason = "KEY_PROVIDER_UNAVAILABLE"


class VenueUnavailable(VaultError):
    """The venue could not be reached in time (proxy mode / attestation)."""

    kind = ErrorKind.UNAVAILABLE
    reason = "VENUE_UNAVAILABLE"


class VenueTimeout(VenueUnavailable):
    """The venue did not finish answering within the egress bound (the smaller of
    ``signing.egress_timeout_s`` and what was left of the caller's deadline). The request may
    have reached the venue, so this is DEADLINE_EXCEEDED (outcome unknown), not UNAVAILABLE."""

    kind = ErrorKind.DEADLINE_EXCEEDED
    reason = "VENUE_TIMEOUT"


# --- venue sessions (issue 21) -------------------------------------------------------------------
class VenueLoginRefused(VaultError):
    """The venue refused the vault's login (wrong password or API key, consent revoked or
    without trading scope). Counts toward the session lockout breaker."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "VENUE_LOGIN_REFUSED"


class ReauthorizationRequired(VaultError):
    """The venue grant is lost or revoked: a new consent or password (RotateCredential)."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "REAUTHORIZATION_REQUIRED"


class SessionLockedOut(VaultError):
    """Logins stopped after repeated failures, before the broker locks the account."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "SESSION_LOCKED_OUT"


class SessionBackoff(VaultError):
    """Logins are backing off after a failure; ``metadata['retryAfterS']``. Nothing was sent."""

    kind = ErrorKind.UNAVAILABLE
    reason = "SESSION_BACKOFF"


class OrderOutcomeUnknown(VaultError):
    """The venue ended the session mid-order without saying whether it executed; not resent."""

    kind = ErrorKind.UNAVAILABLE
    reason = "ORDER_OUTCOME_UNKNOWN"


class PlatformApplicationMissing(VaultError):
    """OAuth onboarding needs the venue's platform application, which is not configured."""

    kind = ErrorKind.FAILED_PRECONDITION
    reason = "PLATFORM_APPLICATION_MISSING"


class IntegrityCheckFailed(VaultError):
    """A ciphertext, wrapped key or envelope failed authentication: tampering or a copied row."""

    kind = ErrorKind.DATA_LOSS
    reason = "INTEGRITY_CHECK_FAILED"


class NotImplementedYet(VaultError):
    """The RPC is part of the v1 contract but not implemented by this build."""

    kind = ErrorKind.UNIMPLEMENTED
    reason = "NOT_IMPLEMENTED"


class InternalError(VaultError):
    """An invariant broke; the message is generic and the detail only goes to the logs."""

    kind = ErrorKind.INTERNAL
    reason = "INTERNAL"
