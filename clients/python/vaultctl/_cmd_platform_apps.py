"""``vaultctl platform-apps``: the OAuth applications the platform registered with venues
(e.g. the cTrader Open API application), held by the vault.

The client secret is read from a hidden prompt or from stdin (``--secret-stdin``), never from the
command line; output is metadata only (the client id masked, never the secret).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vaultctl import _convert, _secrets, _views
from vaultctl._context import Context
from vaultctl._errors import EXIT_OK
from vaultctl._output import to_dict

if TYPE_CHECKING:
    from vaultctl._args import SafeArgumentParser, Subparsers


def register(commands: Subparsers, common: SafeArgumentParser) -> None:
    group = commands.add_parser(
        "platform-apps", help="venue OAuth applications of the platform (metadata only)"
    )
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser(
        "set", parents=[common], help="store or replace a venue's OAuth application (security)"
    )
    p.add_argument("--broker", required=True, type=_convert.BROKER, help="venue, e.g. ctrader")
    p.add_argument(
        "--environment", required=True, type=_convert.ENVIRONMENT, help="live|paper|testnet"
    )
    p.add_argument("--client-id", required=True, help="the application's client id (public)")
    p.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the client secret from stdin, one line (default: hidden prompt)",
    )
    p.set_defaults(handler=set_)

    p = sub.add_parser("list", parents=[common], help="list the platform applications")
    p.set_defaults(handler=list_)


def set_(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    client_secret = _secrets.read_secret(
        prompt="Client secret: ", what="the client secret", from_stdin=args.secret_stdin
    )
    app = ctx.client().set_platform_application(
        args.broker, args.environment, args.client_id, client_secret, reason=reason
    )
    del client_secret
    if ctx.out.json_mode:
        ctx.out.json(to_dict(app))
    else:
        _views.platform_applications(ctx.out, [app])
    return EXIT_OK


def list_(ctx: Context, args: argparse.Namespace) -> int:
    items = list(ctx.client().list_platform_applications())
    if ctx.out.json_mode:
        ctx.out.json({"platform_applications": [to_dict(a) for a in items]})
    else:
        _views.platform_applications(ctx.out, items)
    return EXIT_OK
