"""``vaultctl audit``: list, tail (stream, optionally following) and verify the audit log."""

from __future__ import annotations

import argparse
import datetime
import itertools
import time
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
    client = ctx.client()
    filters = _filter_kwargs(args)
    window = ctx.timeout or (_FOLLOW_WINDOW if args.follow else _BACKLOG_TIMEOUT)
    collected: list[dict[str, Any]] = []
    start: datetime.datetime | None = filters.pop("start_time")
    seen_at_start: set[str] = set()
    while True:
        opened = time.monotonic()
        stream = client.stream_audit_events(
            **filters, start_time=start, follow=args.follow, timeout=window
        )
        try:
            for event in stream:
                key = event.name or f"{event.workspace}#{event.sequence}"
                if key in seen_at_start:
                    continue  # already shown before the stream was reopened
                _emit(ctx, event, args.follow, collected)
                when = event.event_time.ToDatetime(tzinfo=datetime.UTC)
                if start is None or when > start:
                    start, seen_at_start = when, {key}
                elif when == start:
                    seen_at_start.add(key)
        except DeadlineExceededError:
            if not args.follow:
                raise
            # Reopen from the last event's time; never spin if the server ends streams at once.
            time.sleep(max(0.0, _MIN_REOPEN_INTERVAL - (time.monotonic() - opened)))
            continue
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        break
    if ctx.out.json_mode and not args.follow:
        ctx.out.json({"events": collected})
    return EXIT_OK


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
    proto field names with defaults, counts as JSON numbers, ``checkpoints`` null when unused."""
    doc = to_dict(msg)
    doc["chains_checked"], doc["events_checked"] = msg.chains_checked, msg.events_checked
    cps = msg.checkpoints if msg.HasField("checkpoints") else None
    doc["checkpoints"] = (
        None if cps is None else {**doc["checkpoints"], "valid": cps.valid, "invalid": cps.invalid}
    )
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
