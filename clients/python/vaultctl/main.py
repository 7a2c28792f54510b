"""Entry point of ``vaultctl``: ``main(argv) -> exit code``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import grpc  # type: ignore[import-untyped]
from pipvault_client import VaultClientError

from vaultctl._context import Context
from vaultctl._errors import (
    EXIT_INTERRUPTED,
    EXIT_SERVER_ERROR,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UsageError,
)
from vaultctl._output import Output
from vaultctl._parser import build_parser

_UNAVAILABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

Handler = Callable[[Context, argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit code (0 ok, 1 negative answer, 2 usage, 3 server
    error, 4 unavailable)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    out = Output(json_mode=bool(getattr(args, "json", False)))
    ctx = Context(args, out)
    handler: Handler = args.handler
    try:
        return handler(ctx, args)
    except UsageError as exc:
        out.error(str(exc))
        return EXIT_USAGE
    except VaultClientError as exc:
        _report(out, exc)
        return EXIT_UNAVAILABLE if exc.code in _UNAVAILABLE_CODES else EXIT_SERVER_ERROR
    except ValueError as exc:  # client-side validation; never carries request fields
        out.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # An unexpected failure prints its type only: a message or traceback could quote input.
        if os.environ.get("PIPVAULT_DEBUG") == "1":
            raise
        out.error(f"unexpected {type(exc).__name__} (set PIPVAULT_DEBUG=1 for the traceback)")
        return EXIT_SERVER_ERROR
    finally:
        ctx.close()


def _report(out: Output, exc: VaultClientError) -> None:
    head = exc.code_name + (f" {exc.reason}" if exc.reason else "")
    text = f"{head}: {exc.message}" if exc.message else head
    if exc.request_id:
        text += f" (request id: {exc.request_id})"
    out.error(text)
    for key, value in sorted(exc.metadata.items()):
        out.stderr.write(f"  {key}: {value}\n")


if __name__ == "__main__":
    sys.exit(main())
