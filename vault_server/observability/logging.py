"""Structured logging (structlog, JSON lines on stderr) that cannot print secrets.

Redaction is a mechanism, not a convention: a processor drops any event field whose value is (or
contains) a ``Secret``, and any field whose name says it is secret material, before rendering.
Request bodies are never logged; the access log carries method, code, duration, principal and
request id only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from vault_server.core.secret import is_secret

_SECRET_KEYS = frozenset(
    {
        "secret", "secret_key", "api_secret", "passphrase", "password", "private_key", "token",
        "authorization", "material", "dek", "kek", "key_material", "routing_key", "plaintext",
    }
)  # fmt: skip
REDACTED = "[dropped]"
# Exact types (not subclasses) that can hold no secret: the access log's fields, checked cheaply.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _is_proto(value: Any) -> bool:
    """A protobuf message, recognised without importing protobuf into this low layer."""
    return hasattr(value, "DESCRIPTOR") and hasattr(value, "SerializeToString")


def drop_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event.keys()):
        value = event[key]
        if key.lower() in _SECRET_KEYS:
            event[key] = REDACTED
        elif type(value) in _PLAIN:
            continue  # exactly a plain scalar: neither a Secret nor a container nor a message
        # API messages may hold SecretMaterial and Python's printer ignores debug_redact, so no
        # protobuf message is ever rendered into a log line.
        elif is_secret(value) or _is_proto(value):
            event[key] = REDACTED
    return event


class _Stderr:
    """Writes to whatever ``sys.stderr`` is *now* (test capture replaces it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Configure structlog and route stdlib logging (grpc, sqlalchemy) through the same filter."""
    out = stream or _Stderr()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # Plain tracebacks, never rich ones: those print every frame's local variables, and a
        # frame on the signing path holds revealed key bytes.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_secrets,
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=processors,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level))
    # Library chatter that could echo SQL parameters stays off even at DEBUG.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
