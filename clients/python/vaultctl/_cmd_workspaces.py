"""``vaultctl workspaces``: create, get, list, freeze (kill switch), unfreeze."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipsync.vault.v1 import workspace_pb2

from vaultctl import _convert, _views
from vaultctl._context import Context
from vaultctl._errors import EXIT_OK
from vaultctl._output import to_dict

if TYPE_CHECKING:
    from vaultctl._args import SafeArgumentParser, Subparsers


def register(commands: Subparsers, common: SafeArgumentParser) -> None:
    group = commands.add_parser("workspaces", help="workspaces and their kill switch")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser("create", parents=[common], help="create a workspace")
    p.add_argument("workspace_id", metavar="ID", help="workspace id, e.g. prod-desk")
    p.add_argument("--display-name", default="", help="human-readable name")
    p.set_defaults(handler=create)

    p = sub.add_parser("get", parents=[common], help="show a workspace")
    p.add_argument("name", metavar="NAME", type=_convert.workspace, help="ws or workspaces/ws")
    p.set_defaults(handler=get)

    p = sub.add_parser("list", parents=[common], help="list workspaces")
    p.add_argument("--page-size", type=_convert.positive_int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(handler=list_)

    p = sub.add_parser(
        "freeze", parents=[common], help="engage the kill switch: the workspace signs nothing"
    )
    p.add_argument("name", metavar="NAME", type=_convert.workspace, help="ws or workspaces/ws")
    p.add_argument("--ttl", type=_convert.duration, help="lift automatically after e.g. 30m")
    p.add_argument("--etag", default="", help="only if the workspace still has this etag")
    p.set_defaults(handler=freeze)

    p = sub.add_parser("unfreeze", parents=[common], help="lift the kill switch")
    p.add_argument("name", metavar="NAME", type=_convert.workspace, help="ws or workspaces/ws")
    p.add_argument("--etag", default="", help="only if the workspace still has this etag")
    p.set_defaults(handler=unfreeze)


def _show(ctx: Context, ws: workspace_pb2.Workspace) -> int:
    if ctx.out.json_mode:
        ctx.out.json(to_dict(ws))
    else:
        _views.workspace(ctx.out, ws)
    return EXIT_OK


def create(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    ws = ctx.client().create_workspace(args.workspace_id, args.display_name, reason)
    return _show(ctx, ws)


def get(ctx: Context, args: argparse.Namespace) -> int:
    return _show(ctx, ctx.client().get_workspace(args.name))


def list_(ctx: Context, args: argparse.Namespace) -> int:
    items = ctx.client().list_workspaces(page_size=min(args.page_size, 1000))
    if ctx.out.json_mode:
        ctx.out.json({"workspaces": [to_dict(ws) for ws in items]})
    else:
        _views.workspaces(ctx.out, items)
    return EXIT_OK


def freeze(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    ws = ctx.client().freeze_workspace(args.name, reason, ttl=args.ttl, etag=args.etag)
    return _show(ctx, ws)


def unfreeze(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    ws = ctx.client().unfreeze_workspace(args.name, reason, etag=args.etag)
    return _show(ctx, ws)
