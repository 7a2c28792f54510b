"""A real gRPC server with fake vault servicers, shared by the client and vaultctl tests.

The servicers subclass the generated ``*Servicer`` classes, record every request with its
metadata and remaining deadline, and answer from per-method scripts (one-shot) or handlers
(persistent), or with an empty response. ``abort`` ends a call with a ``google.rpc.Status``
carrying one ``ErrorInfo`` as the real server does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf import message as _message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from pipsync.vault.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    credential_service_pb2,
    credential_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    signing_service_pb2,
    signing_service_pb2_grpc,
    workspace_service_pb2,
    workspace_service_pb2_grpc,
)

_SERVICES = (
    (workspace_service_pb2, workspace_service_pb2_grpc, "WorkspaceService"),
    (credential_service_pb2, credential_service_pb2_grpc, "CredentialService"),
    (signing_service_pb2, signing_service_pb2_grpc, "SigningService"),
    (audit_service_pb2, audit_service_pb2_grpc, "AuditService"),
    (key_service_pb2, key_service_pb2_grpc, "KeyService"),
)

Handler = Callable[[Any, grpc.ServicerContext], Any]


@dataclasses.dataclass
class Recorded:
    """One call as the server saw it."""

    method: str
    request: Any
    metadata: dict[str, str]
    time_remaining: float | None


def abort(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    reason: str,
    message: str,
    metadata: dict[str, str] | None = None,
) -> None:
    """Ends the call with a google.rpc.Status carrying exactly one ErrorInfo."""
    info = error_details_pb2.ErrorInfo(
        reason=reason, domain="vault.pipsync.dev", metadata=metadata or {}
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


def fail(code: grpc.StatusCode, reason: str, message: str = "", **metadata: str) -> Handler:
    """A handler that aborts with the given error."""

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        abort(context, code, reason, message or reason.lower().replace("_", " "), metadata)

    return handler


def reply(response: _message.Message) -> Handler:
    """A handler that returns ``response``."""
    return lambda request, context: response


class FakeVault:
    """The recording fake; ``address`` (TCP loopback) and ``unix_address`` once started."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []
        self._scripts: dict[str, list[Handler]] = defaultdict(list)
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self.address = ""
        self.unix_address = ""

    def script(self, method: str, *handlers: Handler) -> None:
        """Queues one-shot handlers for ``method`` (used in order, before any persistent one)."""
        with self._lock:
            self._scripts[method].extend(handlers)

    def on(self, method: str, handler: Handler) -> None:
        """Sets the persistent handler of ``method``."""
        with self._lock:
            self._handlers[method] = handler

    def calls_to(self, method: str) -> list[Recorded]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def last(self, method: str) -> Recorded:
        calls = self.calls_to(method)
        assert calls, f"no call to {method}"
        return calls[-1]

    def _handle(self, method: str, response_type: type, request: Any, context: Any) -> Any:
        recorded = Recorded(
            method=method,
            request=request,
            metadata=dict(context.invocation_metadata()),
            time_remaining=context.time_remaining(),
        )
        with self._lock:
            self.calls.append(recorded)
            queue = self._scripts.get(method)
            handler = queue.pop(0) if queue else self._handlers.get(method)
        if handler is None:
            return response_type()
        return handler(request, context)

    def servicers(self) -> list[tuple[Any, Callable[[Any, grpc.Server], None]]]:
        result = []
        for pb2, pb2_grpc, service in _SERVICES:
            base = getattr(pb2_grpc, f"{service}Servicer")
            methods = pb2.DESCRIPTOR.services_by_name[service].methods
            attrs: dict[str, Any] = {}
            for method in methods:
                response_type = getattr(pb2, method.output_type.name)
                attrs[method.name] = self._make_method(
                    method.name, response_type, method.server_streaming
                )
            cls = type(f"Fake{service}", (base,), attrs)
            result.append((cls(), getattr(pb2_grpc, f"add_{service}Servicer_to_server")))
        return result

    def _make_method(self, name: str, response_type: type, streaming: bool) -> Any:
        fake = self

        if streaming:

            def stream_method(self: Any, request: Any, context: Any) -> Iterator[Any]:
                result = fake._handle(name, response_type, request, context)
                if isinstance(result, _message.Message):
                    result = [result]
                yield from result or ()

            return stream_method

        def unary_method(self: Any, request: Any, context: Any) -> Any:
            return fake._handle(name, response_type, request, context)

        return unary_method


@contextlib.contextmanager
def running_fake_vault(server_credentials: Any = None) -> Iterator[FakeVault]:
    """Starts a sync ``grpc.server`` on 127.0.0.1:0 (TLS with ``server_credentials``) and a
    plaintext short-path Unix socket."""
    fake = FakeVault()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    for servicer, add in fake.servicers():
        add(servicer, server)
    if server_credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", server_credentials)
    sock_dir = tempfile.mkdtemp(prefix="pv-", dir="/tmp")
    sock = f"{sock_dir}/vault.sock"
    server.add_insecure_port(f"unix:{sock}")
    server.start()
    fake.address = f"127.0.0.1:{port}"
    fake.unix_address = f"unix://{sock}"
    try:
        yield fake
    finally:
        server.stop(grace=None)
        shutil.rmtree(sock_dir, ignore_errors=True)
