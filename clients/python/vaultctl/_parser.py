"""The argparse command line."""

from __future__ import annotations

import argparse

from pipvault_client import __version__

from vaultctl import (
    _cmd_audit,
    _cmd_credentials,
    _cmd_keys,
    _cmd_platform_apps,
    _cmd_workspaces,
    _convert,
)
from vaultctl._args import SafeArgumentParser

_DESCRIPTION = """\
Admin CLI of the pipvault credential vault (gRPC only).

Secret material (API secrets, passwords, OAuth authorization codes and client secrets) is never
taken from the command line: it is read from a hidden prompt or from stdin (--secret-stdin).
Output is metadata only.

environment:
  PIPVAULT_ADDR        vault address, unix:///abs/path.sock or host:port (default 127.0.0.1:8201)
  PIPVAULT_TOKEN       bearer token (prefer this, or PIPVAULT_TOKEN_FILE, to --token)
  PIPVAULT_TOKEN_FILE  file holding the bearer token
  PIPVAULT_TLS_CA, PIPVAULT_TLS_CERT, PIPVAULT_TLS_KEY, PIPVAULT_TLS_SERVER_NAME
  PIPVAULT_REASON      reason for mutating commands (audited)

exit codes:
  0 ok, 1 negative answer (audit log not intact, migration incomplete), 2 usage or input error
  (nothing sent), 3 the vault returned an error, 4 the vault was unavailable or timed out
"""


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command accepts, before or after the command words."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection and output")
    group.add_argument("--addr", default=default(None), help="vault address (PIPVAULT_ADDR)")
    group.add_argument("--token", default=default(None), help="bearer token (PIPVAULT_TOKEN)")
    group.add_argument(
        "--token-file", default=default(None), help="file with the token (PIPVAULT_TOKEN_FILE)"
    )
    group.add_argument("--tls-ca", default=default(None), help="CA bundle PEM (PIPVAULT_TLS_CA)")
    group.add_argument(
        "--tls-cert", default=default(None), help="client certificate PEM (PIPVAULT_TLS_CERT)"
    )
    group.add_argument("--tls-key", default=default(None), help="client key PEM (PIPVAULT_TLS_KEY)")
    group.add_argument(
        "--tls-server-name",
        default=default(None),
        help="expected server name (PIPVAULT_TLS_SERVER_NAME)",
    )
    group.add_argument(
        "--timeout",
        type=_convert.seconds,
        default=default(None),
        help="deadline per call, e.g. 10s (default 10s; longer for verify, rotate, migrate)",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="one JSON document on stdout"
    )
    group.add_argument(
        "--reason", default=default(None), help="why (required to change anything; PIPVAULT_REASON)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = SafeArgumentParser(
        prog="vaultctl",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vaultctl {__version__}")
    _global_options(parser, suppress=False)
    common = SafeArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _cmd_workspaces.register(commands, common)
    _cmd_credentials.register(commands, common)
    _cmd_platform_apps.register(commands, common)
    _cmd_audit.register(commands, common)
    _cmd_keys.register(commands, common)
    return parser
