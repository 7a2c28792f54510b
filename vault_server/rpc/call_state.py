"""The current call's domain context, set by the interceptor and read by servicers."""

from __future__ import annotations

import contextvars

from vault_server.core.errors import InternalError
from vault_server.domain import CallContext

_CURRENT: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "pipvault_call", default=None
)


def current() -> CallContext:
    ctx = _CURRENT.get()
    if ctx is None:
        raise InternalError("no call context: the interceptor did not run")
    return ctx


def bind(ctx: CallContext) -> contextvars.Token[CallContext | None]:
    return _CURRENT.set(ctx)


def unbind(token: contextvars.Token[CallContext | None]) -> None:
    _CURRENT.reset(token)
