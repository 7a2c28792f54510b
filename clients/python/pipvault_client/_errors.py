"""Exceptions raised by the client, built from the server's ``google.rpc.Status``.

Every server error carries exactly one ``google.rpc.ErrorInfo`` (domain ``vault.pipsync.dev``,
UPPER_SNAKE ``reason``, lowerCamel ``metadata``). An error is built only from what the server
sent back (code, message, ErrorInfo) and the request id the client chose; never from request
fields, so secret material cannot leak into an exception, its ``str`` or its ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

__all__ = [
    "ERROR_DOMAIN",
    "AbortedError",
    "AlreadyExistsError",
    "CallCancelledError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "VaultClientError",
    "error_from_rpc_error",
]

ERROR_DOMAIN = "vault.pipsync.dev"
"""The ``ErrorInfo.domain`` of every error the vault returns."""

_MAX_MESSAGE_CHARS = 1000


class VaultClientError(Exception):
    """An RPC to the vault failed.

    Attributes:
        code: the ``grpc.StatusCode``.
        reason: ``ErrorInfo.reason`` (e.g. ``WORKSPACE_FROZEN``), or ``""`` when the server (or a
            proxy, or the transport) sent no ErrorInfo.
        metadata: ``ErrorInfo.metadata`` (lowerCamel keys, never secret).
        domain: ``ErrorInfo.domain`` (``vault.pipsync.dev`` for the vault's own errors).
        request_id: the ``x-request-id`` the call was sent with.
        message: the server's human-readable message.
        method: the full RPC method, e.g. ``/pipsync.vault.v1.WorkspaceService/GetWorkspace``.
    """

    def __init__(
        self,
        code: Any,
        message: str,
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        domain: str = "",
        request_id: str = "",
        method: str = "",
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.domain = domain
        self.request_id = request_id
        self.method = method
        super().__init__(self._render())

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. ``NOT_FOUND``."""
        name = getattr(self.code, "name", None)
        return str(name) if name else str(self.code)

    def _render(self) -> str:
        head = self.code_name + (f" {self.reason}" if self.reason else "")
        text = f"{head}: {self.message}" if self.message else head
        if self.request_id:
            text += f" (request id: {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code_name}, reason={self.reason!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class InvalidArgumentError(VaultClientError):
    """INVALID_ARGUMENT: a field is missing or malformed (``metadata['field']`` names it)."""


class NotFoundError(VaultClientError):
    """NOT_FOUND: the resource does not exist, or is in a workspace the caller cannot see."""


class AlreadyExistsError(VaultClientError):
    """ALREADY_EXISTS: a resource with this name exists."""


class PermissionDeniedError(VaultClientError):
    """PERMISSION_DENIED: the principal lacks the role, grant or listener for this call."""


class UnauthenticatedError(VaultClientError):
    """UNAUTHENTICATED: no valid identity on the call."""


class FailedPreconditionError(VaultClientError):
    """FAILED_PRECONDITION: e.g. WORKSPACE_FROZEN, ORDER_POLICY_VIOLATION."""


class AbortedError(VaultClientError):
    """ABORTED: e.g. ETAG_MISMATCH; re-read and try again."""


class ResourceExhaustedError(VaultClientError):
    """RESOURCE_EXHAUSTED: RATE_LIMITED or CONCURRENCY_LIMITED."""


class UnavailableError(VaultClientError):
    """UNAVAILABLE: the vault (or its audit log, storage, KMS or venue) could not be reached."""


class DeadlineExceededError(VaultClientError):
    """DEADLINE_EXCEEDED: the call's deadline passed before it finished."""


class UnimplementedError(VaultClientError):
    """UNIMPLEMENTED: the server does not implement the RPC."""


class DataLossError(VaultClientError):
    """DATA_LOSS: e.g. INTEGRITY_CHECK_FAILED."""


class InternalError(VaultClientError):
    """INTERNAL or UNKNOWN: a server invariant broke; details only in the server log."""


class OutOfRangeError(VaultClientError):
    """OUT_OF_RANGE."""


class CallCancelledError(VaultClientError):
    """CANCELLED: the call was cancelled."""


_BY_CODE: dict[Any, type[VaultClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.CANCELLED: CallCancelledError,
}


_CODE_BY_VALUE: dict[int, Any] = {code.value[0]: code for code in grpc.StatusCode}


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "…"


def _error_info(details: Any) -> tuple[str, str, dict[str, str]]:
    for detail in details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason, info.domain, dict(info.metadata)
    return "", "", {}


def error_from_status(status: Any, *, request_id: str = "", method: str = "") -> VaultClientError:
    """Builds the matching :class:`VaultClientError` from a ``google.rpc.Status`` message (a
    failed item of ``BatchSignOrders``)."""
    code = _CODE_BY_VALUE.get(int(status.code), grpc.StatusCode.UNKNOWN)
    reason, domain, info_metadata = _error_info(status.details)
    cls = _BY_CODE.get(code, VaultClientError)
    return cls(
        code,
        _clip(status.message),
        reason=reason,
        metadata=info_metadata,
        domain=domain,
        request_id=request_id,
        method=method,
    )


def error_from_rpc_error(err: Any, *, request_id: str = "", method: str = "") -> VaultClientError:
    """Builds the matching :class:`VaultClientError` from a ``grpc.RpcError`` (sync or aio).

    The ErrorInfo is read with ``grpc_status.rpc_status.from_call``. A status whose code or
    message disagrees with the call's (a tampering proxy) is ignored rather than trusted.
    """
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = err.details() if callable(getattr(err, "details", None)) else None
    message = _clip(str(details or ""))
    reason = ""
    domain = ""
    info_metadata: dict[str, str] = {}
    try:
        status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None
    except Exception:  # inconsistent or malformed details must not mask the real error
        status = None
    if status is not None:
        reason, domain, info_metadata = _error_info(status.details)
    cls = _BY_CODE.get(code, VaultClientError)
    return cls(
        code,
        message,
        reason=reason,
        metadata=info_metadata,
        domain=domain,
        request_id=request_id,
        method=method,
    )
