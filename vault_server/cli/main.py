"""``pipvault``: run the vault sidecar and operate its storage.

pipvault serve --config FILE          production server
pipvault dev [--home DIR]             dev mode on embedded defaults, until Ctrl-C
pipvault db upgrade [--database-url]  apply schema migrations
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from vault_server.auth.policy import PolicyError
from vault_server.config import ConfigError, Settings, load_settings
from vault_server.observability.logging import configure_logging
from vault_server.rpc.listeners import ListenerConflict


def _serve(args: argparse.Namespace) -> int:
    from vault_server.app import VaultApp, serve_until_signalled

    settings = load_settings(args.config)
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve_until_signalled(VaultApp(settings)))
    return 0


def dev_settings(args: argparse.Namespace) -> Settings:
    home: Path = args.home.resolve()
    from vault_server.cli.dev import ensure_dev_policy

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    policy_file, _ = ensure_dev_policy(home)
    return load_settings(
        args.config,
        mode="dev",
        home=str(home),
        policy_file=str(policy_file),
        log_format="console",
        listen={
            "data_socket": str(home / "data.sock"),
            "data_address": args.data_address,
            "admin_address": args.admin_address,
            "health_address": args.health_address,
            "metrics_address": args.metrics_address,
        },
    )


def _dev(args: argparse.Namespace) -> int:
    from vault_server.app import VaultApp, serve_until_signalled
    from vault_server.cli.dev import banner, ensure_dev_policy
    from vault_server.services.call import system_context
    from vault_server.storage.repositories import workspaces as ws_repo

    settings = dev_settings(args)
    configure_logging(settings.log_level, settings.log_format)
    _, tokens = ensure_dev_policy(settings.home)
    app = VaultApp(settings)

    def started(vault: Any) -> None:
        with vault.db.transaction() as session:
            exists = ws_repo.by_resource_id(session, "demo") is not None
        if not exists:
            vault.workspaces.create(system_context("dev mode bootstrap"), "demo", "Demo workspace")
        bound = vault.bound
        admin = f"127.0.0.1:{bound.admin_port}" if bound.admin_port else "-"
        data = f"127.0.0.1:{bound.data_port}" if bound.data_port else ""
        print(banner(admin, str(bound.data_socket), data, tokens), flush=True)

    asyncio.run(serve_until_signalled(app, started))
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from vault_server.storage import migrate
    from vault_server.storage.database import Database

    url = args.database_url
    if not url:
        settings = load_settings(args.config, mode="dev") if args.config else None
        url = settings.resolved_database_url() if settings else None
    if not url:
        raise ConfigError("database_url: pass --database-url or --config")
    db = Database(url)
    try:
        if db.is_postgres:
            from vault_server.storage import roles

            roles.provision(db.engine, owner=args.owner_role, app=args.app_role)
            print(f"roles: owner {args.owner_role}, app {args.app_role} (connect the server as it)")
        else:
            migrate.upgrade(db.engine)
        print(f"schema at {migrate.current_revision(db.engine)}")
    finally:
        db.dispose()
    return 0


def _keys_init_local(args: argparse.Namespace) -> int:
    from vault_server.core.errors import VaultError
    from vault_server.crypto.providers import init_local_keyring

    path: Path = args.path.resolve()
    try:
        init_local_keyring(path)
    except VaultError as exc:
        raise ConfigError(f"keys init-local: {exc.message}") from exc
    print(f"created local keyring {path} (mode 0600); reference it as local://{path}")
    return 0


def _keys_init_audit(args: argparse.Namespace) -> int:
    from vault_server.services.audit_checkpoints import CheckpointKeyError, create_signing_key

    path: Path = args.path.resolve()
    try:
        create_signing_key(path)
    except CheckpointKeyError as exc:
        raise ConfigError(f"keys init-audit: {exc}") from exc
    print(f"created audit checkpoint key {path} (0600) and its public key {path}.pub")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vault_server.cli.demo import demo
    from vault_server.observability.logging import configure_logging as _configure

    _configure("ERROR", "console")
    return demo(args.home, args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipvault", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the vault from a config file")
    serve.add_argument("--config", type=Path, required=True)
    serve.set_defaults(func=_serve)

    dev = sub.add_parser("dev", help="run in dev mode on embedded defaults")
    dev.add_argument("--home", type=Path, default=Path(".pipvault"))
    dev.add_argument("--config", type=Path, default=None)
    dev.add_argument("--admin-address", default="127.0.0.1:8201")
    dev.add_argument("--data-address", default="127.0.0.1:8200")
    dev.add_argument("--health-address", default="127.0.0.1:8202")
    dev.add_argument("--metrics-address", default="127.0.0.1:8203")
    dev.set_defaults(func=_dev)

    from vault_server.cli.audit import register as register_audit

    register_audit(sub)

    dm = sub.add_parser("demo", help="run a self-contained signing flow and exit")
    dm.add_argument("--home", type=Path, default=None, help="keep the demo vault's state here")
    dm.add_argument("--json", action="store_true", help="print one JSON object")
    dm.set_defaults(func=_demo)

    keys = sub.add_parser("keys", help="key material")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init-local", help="create a local keyring file (never overwrites)")
    init.add_argument("--path", type=Path, required=True)
    init.set_defaults(func=_keys_init_local)
    audit_key = keys_sub.add_parser(
        "init-audit", help="create the Ed25519 key that signs audit checkpoints (never overwrites)"
    )
    audit_key.add_argument("--path", type=Path, required=True)
    audit_key.set_defaults(func=_keys_init_audit)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations")
    up.add_argument("--database-url", default=None)
    up.add_argument("--config", type=Path, default=None)
    up.add_argument("--owner-role", default="pipvault_owner", help="PostgreSQL: owns the schema")
    up.add_argument("--app-role", default="pipvault_app", help="PostgreSQL: the server's login")
    up.set_defaults(func=_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, PolicyError) as exc:
        print(f"pipvault: {exc}", file=sys.stderr)
        return 2
    except ListenerConflict as exc:  # another process owns the socket or port: one line, exit 1
        print(f"pipvault: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
