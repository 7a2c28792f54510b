"""Keep the HTTP client's own DEBUG lines free of headers.

At ``log_level: DEBUG`` httpcore logs every exchange step, and the response-headers step prints
the full header list (``receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK',
[(b'Name', b'value'), ...])``): a venue that echoes the bearer token in a header would put it in
the log. The vault's redaction cannot know a third-party message's secrets, so the header list
is cut out of those lines at the logger that makes them (the step names and statuses stay, which
is what the lines are for). The filter is attached to httpcore's protocol loggers, because a
logger's filters see only the records created on that very logger.
"""

from __future__ import annotations

import logging
import re

# Every logger httpcore creates records on (its ``_trace`` uses the module's logger).
HTTPCORE_LOGGERS = (
    "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
    "httpcore.socks",
)  # fmt: skip
_HEADER_LIST = re.compile(r"\[\(b['\"].*\]", re.DOTALL)
DROPPED = "[headers dropped]"


class DropHeaderLists(logging.Filter):
    """Rewrites a record's message without any ``[(b'name', b'value'), ...]`` list."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "[(b" in message:
            record.msg, record.args = _HEADER_LIST.sub(DROPPED, message), ()
        return True


_FILTER = DropHeaderLists()


def install() -> None:
    """Attach the filter (idempotent)."""
    for name in HTTPCORE_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
