"""vaultctl's own errors and exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOT_OK = 1  # the command ran and the answer is "no" (e.g. audit log not intact)
EXIT_USAGE = 2  # bad command line or input; nothing was sent
EXIT_SERVER_ERROR = 3  # the vault answered with an error
EXIT_UNAVAILABLE = 4  # the vault could not be reached in time (UNAVAILABLE, DEADLINE_EXCEEDED)
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command line or input (exit 2). Messages never contain secret material."""
