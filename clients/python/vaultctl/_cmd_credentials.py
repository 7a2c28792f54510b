"""``vaultctl credentials``: onboarding and lifecycle of broker credentials.

Secret material is read from a hidden prompt or from stdin (``--secret-stdin``), never from the
command line; output is metadata only.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipvault_client import OrderPolicy, SecretMaterial

from vaultctl import _convert, _secrets, _views
from vaultctl._context import Context
from vaultctl._errors import EXIT_OK, UsageError
from vaultctl._output import to_dict

if TYPE_CHECKING:
    from vaultctl._args import SafeArgumentParser, Subparsers


def register(commands: Subparsers, common: SafeArgumentParser) -> None:
    group = commands.add_parser("credentials", help="broker credentials (metadata only)")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    _register_onboarding(sub, common)
    _register_lifecycle(sub, common)


def _secret_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the secret from stdin: one line, a PEM private key, or a JSON object "
        '{"secret": ..., "passphrase": ..., "private_key": ...} (default: hidden prompt)',
    )


def _material_options(p: argparse.ArgumentParser) -> None:
    """The non-secret parts of password-session and OAuth-consent material, and the switch
    that makes the secret read an OAuth authorization code."""
    p.add_argument(
        "--username", default="", help="login of a password session (IG username, email)"
    )
    p.add_argument(
        "--server",
        default="",
        help="login server: TradeLocker server, DXtrade domain, Match-Trader broker id, "
        "MetaApi region",
    )
    p.add_argument(
        "--authorization-code",
        action="store_true",
        help="OAuth consent: the secret read (hidden prompt, or --secret-stdin) is the "
        "authorization code from the venue's redirect; never give it on the command line "
        "(implied by --key-algorithm oauth-consent)",
    )
    p.add_argument(
        "--redirect-uri", default="", help="OAuth consent: the redirect URI the code was issued for"
    )


def _read_material(args: argparse.Namespace, key_algorithm: str, broker: str) -> SecretMaterial:
    return _secrets.read_material(
        api_key=args.api_key,
        account_id=args.account_id,
        key_algorithm=key_algorithm,
        broker=broker,
        from_stdin=args.secret_stdin,
        username=args.username,
        server=args.server,
        redirect_uri=args.redirect_uri,
        authorization_code=args.authorization_code,
    )


def _policy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-symbol", action="append", default=[], metavar="SYMBOL")
    p.add_argument(
        "--allow-side", action="append", default=[], type=_convert.ORDER_SIDE, metavar="SIDE"
    )
    p.add_argument(
        "--allow-order-type", action="append", default=[], type=_convert.ORDER_TYPE, metavar="TYPE"
    )
    p.add_argument("--max-quantity", type=_convert.decimal)
    p.add_argument("--max-notional", type=_convert.decimal)
    p.add_argument("--max-orders-per-interval", type=_convert.positive_int, default=0, metavar="N")
    p.add_argument("--interval", type=_convert.duration, help="for --max-orders-per-interval (60s)")
    p.add_argument("--max-freshness", type=_convert.duration, help="signed request lifetime")


def _policy_of(args: argparse.Namespace) -> OrderPolicy:
    new = OrderPolicy(
        allowed_symbols=args.allow_symbol,
        allowed_sides=args.allow_side,
        allowed_order_types=args.allow_order_type,
        max_quantity=args.max_quantity or "",
        max_notional=args.max_notional or "",
        max_orders_per_interval=args.max_orders_per_interval,
    )
    if args.interval is not None:
        new.rate_interval.FromTimedelta(args.interval)
    if args.max_freshness is not None:
        new.max_freshness.FromTimedelta(args.max_freshness)
    if args.interval is not None and not args.max_orders_per_interval:
        raise UsageError("--interval needs --max-orders-per-interval")
    return new


def _register_onboarding(sub: Subparsers, common: SafeArgumentParser) -> None:
    p = sub.add_parser("create", parents=[common], help="import a credential")
    p.add_argument("parent", metavar="PARENT", type=_convert.workspace, help="ws or workspaces/ws")
    p.add_argument("credential_id", metavar="ID", help="credential id, e.g. binance-main")
    p.add_argument("--broker", required=True, type=_convert.BROKER, help="venue, e.g. binance_spot")
    p.add_argument(
        "--environment", required=True, type=_convert.ENVIRONMENT, help="live|paper|testnet"
    )
    p.add_argument(
        "--key-algorithm", required=True, type=_convert.KEY_ALGORITHM, help="e.g. hmac-sha256"
    )
    p.add_argument("--api-key", default="", help="the venue's API key id (not secret)")
    p.add_argument("--account-id", default="", help="venue account id, where routing needs it")
    p.add_argument("--scope", action="append", default=[], help="venue scope (repeatable)")
    p.add_argument("--display-name", default="")
    p.add_argument(
        "--ack-single-tier",
        action="store_true",
        help="accept that a single-permission-tier key can do everything the account can",
    )
    p.add_argument("--attest", action="store_true", help="ask the venue for the key's permissions")
    _material_options(p)
    _policy_options(p)  # a password session needs --allow-symbol and --max-quantity
    _secret_source(p)
    p.set_defaults(handler=create)

    p = sub.add_parser(
        "generate-key",
        parents=[common],
        help="have the vault generate a key pair (prints the public key)",
    )
    p.add_argument("parent", metavar="PARENT", type=_convert.workspace)
    p.add_argument("credential_id", metavar="ID")
    p.add_argument("--broker", required=True, type=_convert.BROKER)
    p.add_argument("--environment", required=True, type=_convert.ENVIRONMENT)
    p.add_argument(
        "--algorithm", required=True, type=_convert.generated_key_algorithm, help="ed25519|rsa"
    )
    p.add_argument("--scope", action="append", default=[], help="venue scope (repeatable)")
    p.add_argument("--display-name", default="")
    p.set_defaults(handler=generate_key)

    p = sub.add_parser("attach-key", parents=[common], help="attach the venue's API key id")
    p.add_argument("name", metavar="NAME", type=_convert.credential)
    p.add_argument("--api-key", required=True, help="the API key id the venue assigned")
    p.add_argument("--etag", default="")
    p.set_defaults(handler=attach_key)


def _register_lifecycle(sub: Subparsers, common: SafeArgumentParser) -> None:
    p = sub.add_parser("list", parents=[common], help="list a workspace's credentials")
    p.add_argument("parent", metavar="PARENT", type=_convert.workspace)
    p.add_argument("--broker", type=_convert.BROKER, help="only this broker")
    p.add_argument("--show-revoked", action="store_true")
    p.set_defaults(handler=list_)

    p = sub.add_parser("show", parents=[common], help="show a credential's metadata")
    p.add_argument("name", metavar="NAME", type=_convert.credential, help="ws/cred or full name")
    p.set_defaults(handler=show)

    p = sub.add_parser("rotate", parents=[common], help="add a PENDING version")
    p.add_argument("name", metavar="NAME", type=_convert.credential)
    p.add_argument("--generate-key", action="store_true", help="vault-generated key pair")
    p.add_argument("--api-key", default="", help="API key id of the new version")
    p.add_argument("--account-id", default="")
    p.add_argument("--etag", default="")
    _material_options(p)
    _secret_source(p)
    p.set_defaults(handler=rotate)

    p = sub.add_parser(
        "reset-session",
        parents=[common],
        help="drop the venue session and clear a lockout or backoff (the next order logs in)",
    )
    p.add_argument("name", metavar="NAME", type=_convert.credential)
    p.set_defaults(handler=reset_session)

    p = sub.add_parser("promote", parents=[common], help="make a PENDING version CURRENT")
    p.add_argument(
        "name",
        metavar="VERSION_NAME",
        type=_convert.credential_version,
        help="ws/cred/N or full name",
    )
    p.add_argument("--etag", default="")
    p.set_defaults(handler=promote)

    p = sub.add_parser("revoke", parents=[common], help="stop all use and destroy the secret")
    p.add_argument("name", metavar="NAME", type=_convert.credential)
    p.add_argument("--etag", default="")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=revoke)

    p = sub.add_parser("attest", parents=[common], help="ask the venue what the key may do (pages)")
    p.add_argument("name", metavar="NAME", type=_convert.credential)
    p.set_defaults(handler=attest)

    p = sub.add_parser("policy", parents=[common], help="replace the credential's order policy")
    p.add_argument("name", metavar="NAME", type=_convert.credential)
    _policy_options(p)
    p.add_argument("--clear", action="store_true", help="remove every limit")
    p.add_argument("--etag", default="")
    p.set_defaults(handler=policy)


def _show(ctx: Context, cred: credential_pb2.Credential) -> int:
    if ctx.out.json_mode:
        ctx.out.json(to_dict(cred))
    else:
        _views.credential(ctx.out, cred)
    return EXIT_OK


def create(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    initial_policy = _policy_of(args)
    material = _read_material(args, args.key_algorithm, args.broker)
    cred = ctx.client().create_credential(
        args.parent,
        args.credential_id,
        broker=args.broker,
        environment=args.environment,
        key_algorithm=args.key_algorithm,
        material=material,
        scopes=args.scope,
        reason=reason,
        display_name=args.display_name,
        acknowledge_single_permission_tier=args.ack_single_tier,
        attest_on_create=args.attest,
        policy=None if initial_policy == OrderPolicy() else initial_policy,
    )
    del material
    return _show(ctx, cred)


def generate_key(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    response = ctx.client().generate_credential_key(
        args.parent,
        args.credential_id,
        broker=args.broker,
        environment=args.environment,
        key_algorithm=args.algorithm,
        scopes=args.scope,
        reason=reason,
        display_name=args.display_name,
    )
    if ctx.out.json_mode:
        ctx.out.json(to_dict(response))
        return EXIT_OK
    _views.credential(ctx.out, response.credential)
    ctx.out.line("Upload this public key to the venue, then run `vaultctl credentials attach-key`:")
    ctx.out.raw(response.public_key)
    return EXIT_OK


def attach_key(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    return _show(
        ctx, ctx.client().attach_credential_api_key(args.name, args.api_key, reason, args.etag)
    )


def list_(ctx: Context, args: argparse.Namespace) -> int:
    items = ctx.client().list_credentials(
        args.parent,
        broker=args.broker or "BROKER_UNSPECIFIED",
        show_revoked=args.show_revoked,
    )
    if ctx.out.json_mode:
        ctx.out.json({"credentials": [to_dict(c) for c in items]})
    else:
        _views.credentials(ctx.out, items)
    return EXIT_OK


def show(ctx: Context, args: argparse.Namespace) -> int:
    return _show(ctx, ctx.client().get_credential(args.name))


def rotate(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    client = ctx.client()
    if args.generate_key:
        if args.secret_stdin or args.api_key or _material_given(args):
            raise UsageError("--generate-key takes no secret material or --api-key")
        response = client.rotate_credential(
            args.name, None, reason, generate_key=True, etag=args.etag
        )
    else:
        key_algorithm = broker = ""
        if not args.secret_stdin:  # the prompts depend on the key type
            current = client.get_credential(args.name)
            key_algorithm = trading_pb2.KeyAlgorithm.Name(current.key_algorithm)
            broker = trading_pb2.Broker.Name(current.broker)
        material = _read_material(args, key_algorithm, broker)
        response = client.rotate_credential(args.name, material, reason, etag=args.etag)
        del material
    if ctx.out.json_mode:
        ctx.out.json(to_dict(response))
        return EXIT_OK
    _views.credential(ctx.out, response.credential)
    ctx.out.line(
        f"new version {response.version.version} is PENDING: "
        f"vaultctl credentials promote {response.version.name}"
    )
    if response.public_key:
        ctx.out.line("Upload this public key to the venue:")
        ctx.out.raw(response.public_key)
    return EXIT_OK


def _material_given(args: argparse.Namespace) -> bool:
    return bool(args.username or args.server or args.redirect_uri or args.authorization_code)


def reset_session(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    cred = ctx.client().reset_credential_session(args.name, reason=reason)
    if not ctx.out.json_mode:
        ctx.out.line(f"session of {cred.name} reset: the next order logs in afresh")
    return _show(ctx, cred)


def promote(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    return _show(ctx, ctx.client().promote_credential_version(args.name, reason, args.etag))


def revoke(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    if not args.yes:
        _confirm(args.name)
    return _show(ctx, ctx.client().revoke_credential(args.name, reason, args.etag))


def _confirm(name: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError("revoking cannot be undone: pass --yes to confirm")
    expected = name.rsplit("/", 1)[-1]
    sys.stderr.write(f"Revoking destroys every version of {name}. Type {expected!r} to confirm: ")
    sys.stderr.flush()
    if sys.stdin.readline().strip() != expected:
        raise UsageError("not confirmed; nothing was revoked")


def attest(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    response = ctx.client().attest_credential_permissions(args.name, reason)
    if ctx.out.json_mode:
        ctx.out.json(to_dict(response))
        return EXIT_OK
    _views.credential(ctx.out, response.credential)
    _views.attestation(ctx.out, response.attestation)
    return EXIT_OK


def policy(ctx: Context, args: argparse.Namespace) -> int:
    reason = ctx.reason()
    new = _policy_of(args)
    empty = new == OrderPolicy()
    if empty != args.clear:
        raise UsageError(
            "--clear removes every limit and takes no other policy flag"
            if args.clear
            else "give at least one policy flag (the policy is replaced as a whole), or --clear"
        )
    return _show(ctx, ctx.client().update_credential_policy(args.name, new, reason, args.etag))
