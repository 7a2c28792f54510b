"""``vaultctl audit``: list, tail (stream, optionally following), export (JSON Lines) and verify
the audit log."""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipsync.vault.v1 import audit_pb2, audit_service_pb2
from pipvault_client import DeadlineExceededError

from vaultctl import _convert, _views
from vaultctl._context import Context
from vaultctl._errors import EXIT_NOT_OK, EXIT_OK
from vaultctl._output import to_dict

if TYPE_CHECKING:
    from vaultctl._args import SafeArgumentParser, Subparsers

_FOLLOW_WINDOW = 300.0  # each following stream is reopened after this long
_BACKLOG_TIMEOUT = 60.0
_VERIFY_TIMEOUT = 120.0
_MIN_REOPEN_INTERVAL = 1.0
_RETRY_MIN, _RETRY_MAX = 0.5, 5.0
_RECONNECT = frozenset({"UNAVAILABLE", "CANCELLED"})


def register(commands: Subparsers, common: SafeArgumentParser) -> None:
    group = commands.add_parser("audit", help="read and verify the audit log")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser("list", parents=[common], help="list audit events, oldest first")
    _filters(p)
    p.add_argument(
        "--limit", type=_convert.positive_int, default=100, help="at most N events (100)"
    )
    p.set_defaults(handler=list_)

    p = sub.add_parser("tail", parents=[common], help="stream audit events")
    _filters(p)
    p.add_argument("--follow", "-f", action="store_true", help="keep streaming new events")
    p.set_defaults(handler=tail)

    p = sub.add_parser(
        "export", parents=[common], help="write matching events as JSON Lines (for a SIEM)"
    )
    _filters(p)
    p.add_argument("--format", choices=["jsonl"], default="jsonl", help="jsonl: one event per line")
    p.set_defaults(handler=export)

    p = sub.add_parser("verify", parents=[common], help="verify the hash chains (exit 1 if broken)")
    p.add_argument("--workspace", type=_convert.workspace, help="one workspace only")
    p.set_defaults(handler=verify)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", type=_convert.workspace, help="ws or workspaces/ws")
    p.add_argument("--credential", type=_convert.credential, help="ws/cred or full name")
    p.add_argument("--actor", default="", help="actor id")
    p.add_argument("--action", default="", help="e.g. credential.use, or a prefix like credential.")
    p.add_argument(
        "--outcome",
        type=_convert.OUTCOME,
        help="success|denied|failed",
    )
    p.add_argument(
        "--since", type=_convert.time_point, help="RFC 3339 time, date, or e.g. 2h (ago)"
    )
    p.add_argument(
        "--until", type=_convert.time_point, help="RFC 3339 time, date, or e.g. 10m (ago)"
    )


def _filter_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workspace": args.workspace or "",
        "credential": args.credential or "",
        "actor": args.actor,
        "action": args.action,
        "outcome": args.outcome or "OUTCOME_UNSPECIFIED",
        "start_time": args.since,
        "end_time": args.until,
    }


def list_(ctx: Context, args: argparse.Namespace) -> int:
    events = ctx.client().list_audit_events(**_filter_kwargs(args), page_size=min(args.limit, 1000))
    limited = itertools.islice(events, args.limit)
    if ctx.out.json_mode:
        ctx.out.json({"events": [to_dict(e) for e in limited]})
    else:
        _views.audit_events(ctx.out, limited)
    return EXIT_OK


def tail(ctx: Context, args: argparse.Namespace) -> int:
    collected: list[dict[str, Any]] = []
    _resumable(
        ctx,
        _filter_kwargs(args),
        follow=args.follow,
        window=ctx.timeout or (_FOLLOW_WINDOW if args.follow else _BACKLOG_TIMEOUT),
        emit=lambda event: _emit(ctx, event, args.follow, collected),
    )
    if ctx.out.json_mode and not args.follow:
        ctx.out.json({"events": collected})
    return EXIT_OK


def export(ctx: Context, args: argparse.Namespace) -> int:
    """The matching backlog as JSON Lines (one event per line, whatever --json says)."""
    _resumable(
        ctx,
        _filter_kwargs(args),
        follow=False,
        window=ctx.timeout or _BACKLOG_TIMEOUT,
        emit=lambda event: ctx.out.json_line(to_dict(event)),
    )
    return EXIT_OK


def _resumable(
    ctx: Context,
    filters: dict[str, Any],
    *,
    follow: bool,
    window: float,
    emit: Callable[[audit_pb2.AuditEvent], None],
) -> None:
    """Stream, and reopen where it stopped: after the last event printed from each chain
    (``resume_after``), so a stream cut by its deadline or a server restart (when following)
    continues with no gap and no duplicate."""
    client = ctx.client()
    last: dict[str, str] = {}  # chain (`workspaces/ws` or `system`) -> last event name printed
    retry = _RETRY_MIN
    while True:
        opened = time.monotonic()
        stream = client.stream_audit_events(
            **filters, follow=follow, resume_after=list(last.values()), timeout=window
        )
        progressed = False
        try:
            for event in stream:
                emit(event)
                last[event.name.rpartition("/auditEvents/")[0]] = event.name
                retry, progressed = _RETRY_MIN, True
            if not follow:
                return  # the backlog is complete
        except DeadlineExceededError:
            if not follow and not progressed:
                raise  # a whole window without one event: give up rather than spin
            # the stream's window ended: reopen after the last event
        except Exception as exc:
            # UnavailableError / CallCancelledError: the server went away (e.g. a restart).
            code = str(getattr(exc, "code_name", ""))
            if not follow or code not in _RECONNECT:
                raise
            ctx.out.stderr.write(f"vaultctl: audit stream interrupted ({code}); resuming\n")
            ctx.out.stderr.flush()
            time.sleep(retry)
            retry = min(retry * 2, _RETRY_MAX)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        # Never spin if the server ends streams at once.
        time.sleep(max(0.0, _MIN_REOPEN_INTERVAL - (time.monotonic() - opened)))


def _emit(
    ctx: Context, event: audit_pb2.AuditEvent, follow: bool, collected: list[dict[str, Any]]
) -> None:
    if not ctx.out.json_mode:
        _views.audit_line(ctx.out, event)
    elif follow:
        ctx.out.json_line(to_dict(event))  # a stream that never ends: JSON Lines
    else:
        collected.append(to_dict(event))


def verify_document(msg: audit_service_pb2.VerifyAuditLogResponse) -> dict[str, Any]:
    """The JSON schema of a verification, shared with ``pipvault audit verify --json`` (which
    renders the same ``VerifyAuditLogResponse`` the same way; a test compares the two): the
    message as every ``--json`` prints one (``to_dict``: 64-bit counts as JSON numbers),
    ``checkpoints`` null when unused."""
    doc = to_dict(msg)
    if not msg.HasField("checkpoints"):
        doc["checkpoints"] = None
    return doc


def verify(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.client().verify_audit_log(
        args.workspace or "", timeout=ctx.timeout or _VERIFY_TIMEOUT
    )
    if ctx.out.json_mode:
        ctx.out.json(verify_document(result))
    else:
        _views.verify(ctx.out, result)
    return EXIT_OK if result.intact else EXIT_NOT_OK
