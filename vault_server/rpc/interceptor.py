"""The call pipeline every API RPC passes through, as one grpc.aio interceptor.

Order: request id -> concurrency cap -> identity -> admission (deadline, role, plane, reason,
workspace grant) -> servicer -> error mapping -> metrics and one access-log line. Refusals before
the servicer runs are audited as ``auth.denied``, except a credential write outside the caller's
workspace grant: that is audited under the write's action (``details.denial``: ``auth.denied``).
Health and reflection are not intercepted.

The request id is echoed in the trailing metadata, which leaves with the response and status in
one write (echoing it as initial metadata cost every call a separate send). The wrapped handler
of each method is built once, not per call.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from vault_server.auth.authorizer import WorkspaceNotGranted
from vault_server.auth.principal import Principal
from vault_server.auth.rpc_roles import Plane
from vault_server.auth.spiffe import peer_uri_sans
from vault_server.core.errors import (
    ConcurrencyLimited,
    InternalError,
    InvalidArgument,
    RateLimited,
    VaultError,
)
from vault_server.domain import CallContext
from vault_server.observability.logging import get_logger
from vault_server.observability.metrics import Metrics
from vault_server.rpc import call_state
from vault_server.rpc.admission import (
    REASON_HEADER,
    REQUEST_ID_HEADER,
    Admission,
    Limits,
    denied_context,
    peer_address,
    request_id_from,
)
from vault_server.rpc.headers import read_headers
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.status import CODES, internal_status, to_status
from vault_server.workspaces import DenialRecorder

API_PREFIX = "/pipsync.vault.v1."
_CRED = f"{API_PREFIX}CredentialService/"
# Credential writes: a refusal of any of them (after admission) is audited under its action.
WRITE_ACTIONS = {
    f"{_CRED}CreateCredential": "credential.create",
    f"{_CRED}GenerateCredentialKey": "credential.generate_key",
    f"{_CRED}AttachCredentialApiKey": "credential.attach_api_key",
    f"{_CRED}RotateCredential": "credential.rotate",
    f"{_CRED}PromoteCredentialVersion": "credential.promote",
    f"{_CRED}RevokeCredential": "credential.revoke",
    f"{_CRED}UpdateCredentialPolicy": "credential.policy_update",
}
Context = grpc.aio.ServicerContext[Any, Any]
_log = get_logger("pipvault.rpc")
_ROOT = logging.getLogger()  # its level is the configured log level (observability.logging)
# Request id and peer of the call running in this task, for its log lines (set on entry, before
# admission, so refused calls carry them too). Every RPC runs in its own task (its own context).
_WHERE: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "pipvault_rpc_where", default=("", "")
)


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        *,
        plane: Plane,
        admission: Admission,
        limits: Limits,
        denials: DenialRecorder,
        run: BlockingRunner,
        metrics: Metrics,
        max_concurrent: int,
    ) -> None:
        self._plane = plane
        self._admission = admission
        self._limits = limits
        self._denials = denials
        self._run = run
        self._metrics = metrics
        self._max = max_concurrent
        self._in_flight = 0
        # Metric children per method and per (method, code, reason): resolved once, not per call
        # (both sets are finite: the served methods and the error reasons).
        self._seconds: dict[str, Any] = {}
        self._totals: dict[tuple[str, str, str], Any] = {}
        # The wrapped handler per method (the server's handlers are fixed once it starts).
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any] | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = str(details.method)
        if method in self._handlers:
            return self._handlers[method]
        handler = await continuation(details)
        if handler is None or not method.startswith(API_PREFIX):
            return handler
        wrapped = self._wrap(method, handler)
        self._handlers[method] = wrapped
        return wrapped

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        decode = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=decode,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=decode,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, method: str, inner: Any) -> Any:
        async def behavior(request: Any, context: Context) -> Any:
            started, principal = self._begin(), None
            status, outcome = None, ("OK", "")
            ctx: CallContext | None = None
            try:
                ctx, principal = await self._enter(method, request, context)
                token = call_state.bind(ctx)
                try:
                    return await inner(request, context)
                finally:
                    call_state.unbind(token)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                status, outcome = _failure(method, exc)
                if ctx is not None and method in WRITE_ACTIONS:
                    await self._audit_write_refusal(method, ctx, request, exc)
            finally:
                self._end(method, outcome, started, principal)
            await context.abort_with_status(_with_request_id(status))
            return None  # unreachable: abort_with_status raises

        return behavior

    def _stream(self, method: str, inner: Any) -> Any:
        async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
            started, principal = self._begin(), None
            status, outcome = None, ("OK", "")
            try:
                ctx, principal = await self._enter(method, request, context)
                token = call_state.bind(ctx)
                try:
                    result = inner(request, context)
                    if inspect.isasyncgen(result):
                        async for item in result:
                            yield item
                    else:
                        await result
                finally:
                    # A client that cancels mid-send closes this generator from another context.
                    with contextlib.suppress(ValueError):
                        call_state.unbind(token)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                status, outcome = _failure(method, exc)
            finally:
                self._end(method, outcome, started, principal)
            if status is not None and not context.cancelled() and not context.done():
                await context.abort_with_status(_with_request_id(status))

        return behavior

    def _begin(self) -> float:
        self._in_flight += 1
        self._metrics.in_flight.inc()
        return time.perf_counter()

    def _end(
        self, method: str, outcome: tuple[str, str], started: float, principal: Principal | None
    ) -> None:
        self._in_flight -= 1
        self._metrics.in_flight.dec()
        self._observe(method, outcome, started, principal)

    async def _enter(
        self, method: str, request: Any, context: Context
    ) -> tuple[CallContext, Principal]:
        headers = read_headers(context.invocation_metadata())
        metadata = headers.values
        request_id = request_id_from(metadata)
        context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        raw_peer = context.peer() or ""
        peer = peer_address(raw_peer, metadata, self._limits)
        _WHERE.set((request_id, peer))
        principal: Principal | None = None
        try:
            if self._in_flight > self._max:
                raise ConcurrencyLimited("the server is at its concurrent-request limit")
            # The Unix socket is always plaintext (server.py): no certificate to look for.
            tls = not raw_peer.startswith("unix:")
            peer_ids = peer_uri_sans(context.auth_context() or {}) if tls else ()
            headers.refuse_repeated_identity()
            principal = self._admission.identify(metadata, peer_ids)
            headers.refuse_repeated()
            if isinstance(request, Undecodable):
                raise InvalidArgument("request", "is not a valid message of this method")
            ctx = self._admission.admit(
                method=method,
                plane=self._plane,
                request=request,
                metadata=metadata,
                time_remaining=context.time_remaining(),
                principal=principal,
                peer=peer,
                request_id=request_id,
            )
            return ctx, principal
        except (ConcurrencyLimited, RateLimited):
            # Load shedding is counted (metrics, access log), not audited: auditing every shed
            # call would turn a flood into a flood of audit writes.
            self._metrics.shed.inc()
            raise
        except VaultError as err:
            reason = getattr(request, "reason", "") or metadata.get(REASON_HEADER, "")
            denied = denied_context(
                principal=principal, method=method, peer=peer, request_id=request_id,
                reason=str(reason),
            )  # fmt: skip
            target = _target_of(request)
            # A credential write refused by the workspace grant is audited under its own action
            # (README: refused writes), so an alert on e.g. credential.rotate + denied sees it.
            action = "auth.denied"
            if isinstance(err, WorkspaceNotGranted) and method in WRITE_ACTIONS:
                action = WRITE_ACTIONS[method]
            try:
                await self._run(self._denials.record, denied, err, target, action)
            except VaultError:
                self._metrics.audit_failures.inc()
                _log.warning("audit.denial_not_recorded", method=method, request_id=request_id)
            raise

    async def _audit_write_refusal(
        self, method: str, ctx: CallContext, request: Any, exc: Exception
    ) -> None:
        """A refused credential write leaves its own audit event (the write rolled back)."""
        err = exc if isinstance(exc, VaultError) else InternalError("the write failed")
        parent, cred_id = getattr(request, "parent", ""), getattr(request, "credential_id", "")
        target = f"{parent}/credentials/{cred_id}" if parent else getattr(request, "name", "")
        try:
            await self._run(self._denials.record_write_refusal, ctx, WRITE_ACTIONS[method], err,
                            str(target))  # fmt: skip
        except VaultError:
            self._metrics.audit_failures.inc()
            _log.warning("audit.refusal_not_recorded", method=method, request_id=ctx.request_id)

    def _observe(
        self, method: str, outcome: tuple[str, str], started: float, principal: Principal | None
    ) -> None:
        elapsed = time.perf_counter() - started
        total = self._totals.get((method, *outcome))
        if total is None:
            short = method.rsplit("/", 1)[-1]
            total = self._metrics.rpc_total.labels(short, outcome[0], outcome[1])
            self._totals[(method, *outcome)] = total
        total.inc()
        seconds = self._seconds.get(method)
        if seconds is None:
            seconds = self._metrics.rpc_seconds.labels(method.rsplit("/", 1)[-1])
            self._seconds[method] = seconds
        seconds.observe(elapsed)
        if not _ROOT.isEnabledFor(logging.INFO):
            return  # the access line would be dropped: do not build it (the hot path's cost)
        _log.info(
            "rpc",
            method=method,
            code=outcome[0],
            reason=outcome[1],
            duration_ms=round(elapsed * 1000, 3),
            principal=principal.id if principal else "",
            plane=self._plane.value,
            request_id=_WHERE.get()[0],
            peer=_WHERE.get()[1],
        )


class Undecodable:
    """Stands in for a request that does not parse (e.g. invalid UTF-8 in a string field).

    Without it gRPC itself answers UNKNOWN with no ``ErrorInfo`` and logs a traceback; with it
    the call goes through the pipeline (identity first, so the refusal is audited with its actor)
    and ends INVALID_ARGUMENT ``INVALID_FIELD`` like any other malformed request.
    """

    __slots__ = ()


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError and whatever a parser raises on hostile bytes
            return Undecodable()

    return decode


def _with_request_id(status: grpc.Status) -> grpc.Status:
    """The error status with the call's request id in its trailing metadata (an abort replaces
    the trailing metadata set on the context)."""
    request_id = _WHERE.get()[0]
    if not request_id:
        return status
    trailing = (*tuple(status.trailing_metadata or ()), (REQUEST_ID_HEADER, request_id))
    return _Status(status.code, status.details, trailing)


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing


def _failure(method: str, exc: Exception) -> tuple[grpc.Status, tuple[str, str]]:
    """The status to answer with: the domain error's, or a generic INTERNAL (detail only logged)."""
    if isinstance(exc, VaultError):
        return to_status(exc), (status_name(exc), exc.reason)
    request_id, peer = _WHERE.get()
    _log.exception("rpc.unhandled", method=method, request_id=request_id, peer=peer)
    return internal_status(), ("INTERNAL", "INTERNAL")


def status_name(err: VaultError) -> str:
    return CODES[err.kind].name


def _target_of(request: Any) -> str:
    for field in ("name", "parent", "credential", "routing_context", "workspace"):
        value = getattr(request, field, None)
        if isinstance(value, str) and value:
            return value
    return ""
