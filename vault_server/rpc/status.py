"""The one table from domain errors to gRPC status, and the ``google.rpc.Status`` builder.

Every error leaves the server as a ``google.rpc.Status`` with exactly one ``ErrorInfo``
(domain ``vault.pipsync.dev``). Errors that are not ``VaultError`` become INTERNAL with a
generic message: their text never reaches the caller.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from vault_server.core.errors import ErrorKind, VaultError

DOMAIN = "vault.pipsync.dev"

CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.ABORTED: grpc.StatusCode.ABORTED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorKind.DATA_LOSS: grpc.StatusCode.DATA_LOSS,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}

INTERNAL_MESSAGE = "internal error"


def status_message(err: VaultError) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a domain error (one ``ErrorInfo``): what a failed call
    carries, and what a failed item of a batch holds."""
    code = CODES[err.kind]
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(
        code=getattr(code_pb2, code.name), message=err.message, details=[detail]
    )


def to_status(err: VaultError) -> grpc.Status:
    """The gRPC status (with details) for a domain error."""
    result: grpc.Status = rpc_status.to_status(status_message(err))
    return result


def internal_status() -> grpc.Status:
    """For unexpected exceptions: generic text, reason INTERNAL, no detail leaked."""
    err = VaultError(INTERNAL_MESSAGE)
    return to_status(err)
