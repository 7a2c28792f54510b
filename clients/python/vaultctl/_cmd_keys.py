"""``vaultctl keys``: key-encryption-key status, rotation and provider migration."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipsync.vault.v1 import key_service_pb2
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vaultctl import _convert, _views
from vaultctl._context import Context
from vaultctl._errors import EXIT_NOT_OK, EXIT_OK, UsageError
from vaultctl._output import to_dict

if TYPE_CHECKING:
    from vaultctl._args import SafeArgumentParser, Subparsers

_ROTATE_TIMEOUT = 300.0
_MIGRATE_TIMEOUT = 3600.0


def register(commands: Subparsers, common: SafeArgumentParser) -> None:
    group = commands.add_parser("keys", help="key-encryption keys")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser("status", parents=[common], help="providers, KEK versions, census")
    p.set_defaults(handler=status)

    p = sub.add_parser("rotate", parents=[common], help="add a KEK version and rewrap data keys")
    p.add_argument("--provider", default="", help="provider id (default: the primary)")
    p.set_defaults(handler=rotate)

    p = sub.add_parser("migrate", parents=[common], help="move every data key to another provider")
    p.add_argument("--to", dest="target", required=True, metavar="PROVIDER", help="provider id")
    p.add_argument(
        "--batch-size", type=_convert.positive_int, default=0, help="data keys per batch"
    )
    p.set_defaults(handler=migrate)


def status(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.client().get_key_status()
    if ctx.out.json_mode:
        ctx.out.json(to_dict(result))
    else:
        _views.key_status(ctx.out, result)
    return EXIT_OK


def rotate(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    result = ctx.client().rotate_key_encryption_key(
        args.provider, reason, timeout=ctx.timeout or _ROTATE_TIMEOUT
    )
    if ctx.out.json_mode:
        ctx.out.json(to_dict(result))
        return EXIT_OK
    ctx.out.line(
        f"{result.provider.provider_id}: new KEK version {result.new_version}, "
        f"{result.rewrapped} data key(s) rewrapped"
    )
    _views.key_status(ctx.out, key_service_pb2.GetKeyStatusResponse(providers=[result.provider]))
    return EXIT_OK


def migrate(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    if args.batch_size > 1000:
        raise UsageError("--batch-size is at most 1000")
    stream = ctx.client().migrate_keys(
        args.target, args.batch_size, reason, timeout=ctx.timeout or _MIGRATE_TIMEOUT
    )
    last = key_service_pb2.MigrateKeysResponse()
    if ctx.out.json_mode:
        for progress_report in stream:
            last = progress_report
        ctx.out.json(to_dict(last))
    else:
        columns = (
            TextColumn(f"migrating to {args.target}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=ctx.out.err_console, transient=False) as progress:
            task = progress.add_task("migrate", total=None)
            for last in stream:
                progress.update(task, total=last.total, completed=last.migrated)
        ctx.out.line(
            f"{last.migrated}/{last.total} data keys under {args.target}, {last.remaining} left"
            + ("" if last.done else " (incomplete: run again to resume)")
        )
    return EXIT_OK if last.done else EXIT_NOT_OK
