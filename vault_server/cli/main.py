"""``pipvault``: run the vault sidecar and operate its storage.

pipvault serve --config FILE          production server
pipvault dev [--home DIR] [--kms openbao [--openbao-port N]]  dev mode, until Ctrl-C
pipvault db upgrade [--database-url]  apply schema migrations
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vault_server.auth.policy import PolicyError
from vault_server.cli.dev_openbao import DevOpenBaoError
from vault_server.config import ConfigError, Settings, load_settings
from vault_server.core import event_loop
from vault_server.observability.logging import configure_logging
from vault_server.rpc.listeners import ListenerConflict


def _prepare(args: argparse.Namespace, settings: Settings, *, reexec: bool = True) -> list[str]:
    """Process hygiene (``cli/hardening.py``): in a real ``pipvault`` process, re-execute without
    secrets in the environment block, then log what was set. Returns the secret variables to drop
    from ``os.environ`` once the vault is built. ``reexec=False`` once the process has children
    (an exec would orphan them); the caller re-executed before starting them."""
    from vault_server.cli import hardening
    from vault_server.observability.logging import get_logger

    names = hardening.secret_env_names(settings)
    if args.entry_point and reexec:
        hardening.reexec_without(names)  # returns only when nothing needs moving
        get_logger("pipvault.cli").info("process.hardened", **args.hardened)
    return names


def _serve(args: argparse.Namespace) -> int:
    from vault_server.app import VaultApp, serve_until_signalled
    from vault_server.cli.hardening import scrub_environ

    settings = load_settings(args.config)
    new_loop = event_loop.loop_factory(settings.event_loop)  # a missing loop stops us here
    configure_logging(settings.log_level, settings.log_format)
    secret_names = _prepare(args, settings)
    app = VaultApp(settings)
    scrub_environ(secret_names)
    event_loop.run(serve_until_signalled(app), new_loop)
    return 0


DEV_LISTEN = {
    "data_address": "127.0.0.1:8200",
    "admin_address": "127.0.0.1:8201",
    "health_address": "127.0.0.1:8202",
    "metrics_address": "127.0.0.1:8203",
}


def dev_home(args: argparse.Namespace) -> Path:
    """The dev state folder: ``--home`` > environment > ``--config`` file > ``.pipvault``."""
    flags = {"home": str(args.home.resolve())} if args.home is not None else {}
    return load_settings(args.config, defaults={"home": ".pipvault"}, mode="dev", **flags).home


def dev_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Dev mode: flags > ``PIPVAULT_*`` environment > ``--config`` file > dev defaults (the
    addresses above, a socket, policy and SQLite database under ``home``). ``overrides`` are
    settings a dev flag decided (``--kms openbao``: the keys section)."""
    from vault_server.cli.dev import ensure_dev_policy

    flags: dict[str, Any] = {
        "mode": "dev",
        "home": str(args.home.resolve()) if args.home is not None else None,
        "listen": {
            key: value
            for key, value in (
                ("data_address", args.data_address),
                ("admin_address", args.admin_address),
                ("health_address", args.health_address),
                ("metrics_address", args.metrics_address),
            )
            if value is not None  # not given: the environment, file or dev default decides
        },
    }
    defaults: dict[str, Any] = {"home": ".pipvault", "log_format": "console", "listen": DEV_LISTEN}
    home = load_settings(args.config, defaults=defaults, **flags).home.resolve()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    policy_file, _ = ensure_dev_policy(home)
    defaults["policy_file"] = str(policy_file)
    defaults["listen"] = {**DEV_LISTEN, "data_socket": str(home / "data.sock")}
    flags["home"] = str(home)
    return load_settings(args.config, defaults=defaults, **flags, **overrides)


def _dev(args: argparse.Namespace) -> int:
    bao = None
    overrides: dict[str, Any] = {}
    if args.openbao_port is not None and args.kms != "openbao":
        raise ConfigError("--openbao-port: only with --kms openbao")
    if args.kms == "openbao":
        from vault_server.cli.dev_openbao import start_dev_openbao

        if args.entry_point:  # re-execute (process hygiene) now: an exec later would orphan bao
            from vault_server.cli import hardening

            hardening.reexec_without(hardening.secret_env_names(dev_settings(args)))
        home = dev_home(args).resolve()
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        bao = start_dev_openbao(home, port=args.openbao_port)
        overrides["keys"] = bao.keys_settings(home)
        print(f"dev OpenBao (transit key transit/keys/pipvault) at {bao.address}", flush=True)
    try:
        return _dev_run(args, overrides, reexec=bao is None)
    finally:
        if bao is not None:
            bao.stop()


def _dev_run(args: argparse.Namespace, overrides: dict[str, Any], *, reexec: bool) -> int:
    from vault_server.app import VaultApp, serve_until_signalled
    from vault_server.cli.dev import banner, ensure_dev_policy, vaultctl_command
    from vault_server.cli.hardening import scrub_environ
    from vault_server.domain import system_context
    from vault_server.storage.repositories import workspaces as ws_repo

    settings = dev_settings(args, **overrides)
    new_loop = event_loop.loop_factory(settings.event_loop)
    configure_logging(settings.log_level, settings.log_format)
    secret_names = _prepare(args, settings, reexec=reexec)
    _, tokens = ensure_dev_policy(settings.home)
    app = VaultApp(settings)
    scrub_environ(secret_names)

    def started(vault: Any) -> None:
        with vault.db.transaction() as session:
            exists = ws_repo.by_resource_id(session, "demo") is not None
        if not exists:
            vault.workspaces.create(system_context("dev mode bootstrap"), "demo", "Demo workspace")
        print(banner(settings, _endpoints(vault), tokens, vaultctl_command()), flush=True)

    event_loop.run(serve_until_signalled(app, started), new_loop)
    return 0


def _endpoints(vault: Any) -> Any:
    """Where a started dev vault listens, as the banner shows it (ports resolved)."""
    from vault_server.cli.dev import Endpoints

    listen, bound = vault.settings.listen, vault.bound

    def at(address: str | None, port: int | None) -> str:
        return f"{address.rsplit(':', 1)[0]}:{port}" if address and port else ""

    metrics_port = getattr(vault, "metrics_port", None)
    return Endpoints(
        admin=at(listen.admin_address, bound.admin_port),
        data_socket=str(bound.data_socket) if bound.data_socket else "",
        data_address=at(listen.data_address, bound.data_port),
        health=at(listen.health_address, bound.health_port),
        metrics=at(listen.metrics_address, metrics_port),
    )


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


def _keys_init_pkcs11(args: argparse.Namespace) -> int:
    """Generate KEK version 1 inside the token of a configured pkcs11 provider (once)."""
    import os

    from vault_server.core.errors import VaultError
    from vault_server.crypto.providers import new_key_provider
    from vault_server.crypto.providers.pkcs11 import Pkcs11KeyProvider
    from vault_server.key_settings import key_provider_options

    settings = load_settings(args.config, mode="dev")  # only its keys section matters here
    uri = settings.keys.providers.get(args.provider, "")
    if not uri.startswith("pkcs11://"):
        raise ConfigError(f"keys.providers.{args.provider}: not a pkcs11:// provider")
    options = key_provider_options(
        settings.keys, uri, settings.limits.storage_threads, dict(os.environ)
    )
    try:
        provider = new_key_provider(uri, args.provider, **options)
        assert isinstance(provider, Pkcs11KeyProvider)
        version, created = provider.provision()
        provider.close()
    except VaultError as exc:
        raise ConfigError(f"keys init-pkcs11: {exc.message}") from exc
    if created:
        print(f"{uri}: created KEK version {version} in the token (sensitive, never extractable)")
    else:
        print(f"{uri}: found KEK version {version} already in the token; nothing created")
    return 0


def _keys_init_audit(args: argparse.Namespace) -> int:
    from vault_server.audit import CheckpointKeyError, create_signing_key

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
    if args.broker:
        from vault_server.cli.demo_broker import broker_demo

        return broker_demo(args.broker, args.home, args.json)
    return demo(args.home, args.json, kms=args.kms)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r} (1-65535)")
    return int(text)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pipvault")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipvault", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pipvault {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the vault from a config file")
    serve.add_argument("--config", type=Path, required=True)
    serve.set_defaults(func=_serve)

    dev = sub.add_parser("dev", help="run in dev mode on embedded defaults")
    # Flags default to None ("not given") so the environment and the file can set them too.
    dev.add_argument("--home", type=Path, default=None, help="state folder (default .pipvault)")
    dev.add_argument("--config", type=Path, default=None)
    dev.add_argument("--admin-address", default=None, help="default 127.0.0.1:8201")
    dev.add_argument("--data-address", default=None, help="default 127.0.0.1:8200")
    dev.add_argument("--health-address", default=None, help="default 127.0.0.1:8202")
    dev.add_argument("--metrics-address", default=None, help="default 127.0.0.1:8203")
    dev.add_argument(
        "--kms", choices=["local", "openbao"], default="local",
        help="openbao: start an OpenBao (bao) on loopback and wrap keys with its transit key",
    )  # fmt: skip
    dev.add_argument(
        "--openbao-port", type=_port, default=None, metavar="PORT",
        help="with --kms openbao: OpenBao's API port on 127.0.0.1 (default: a free port)",
    )  # fmt: skip
    dev.set_defaults(func=_dev)

    from vault_server.cli.audit import register as register_audit

    register_audit(sub)

    dm = sub.add_parser("demo", help="run a self-contained signing flow and exit")
    dm.add_argument("--home", type=Path, default=None, help="keep the demo vault's state here")
    dm.add_argument("--json", action="store_true", help="print one JSON object")
    dm.add_argument(
        "--kms", choices=["local", "openbao"], default="local",
        help="openbao: run the demo with keys in its own OpenBao transit (started and stopped)",
    )  # fmt: skip
    dm.add_argument(
        "--broker", default="",
        help="a forex/CFD platform (ig, tradelocker, match_trader, dxtrade, metaapi, ctrader): "
        "its whole session flow against its loopback stub (needs the source checkout)",
    )  # fmt: skip
    dm.set_defaults(func=_demo)

    keys = sub.add_parser("keys", help="key material")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init-local", help="create a local keyring file (never overwrites)")
    init.add_argument("--path", type=Path, required=True)
    init.set_defaults(func=_keys_init_local)
    hsm = keys_sub.add_parser(
        "init-pkcs11", help="generate KEK version 1 in a configured pkcs11 provider's token"
    )
    hsm.add_argument("--config", type=Path, required=True)
    hsm.add_argument("--provider", required=True, help="the provider id in keys.providers")
    hsm.set_defaults(func=_keys_init_pkcs11)
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
    # argv None: a real `pipvault` process (console script or `python -m`), not an in-process
    # call; only then is the process hardened and possibly re-executed.
    entry_point = argv is None
    if entry_point:
        from vault_server.cli.hardening import restore_handed_over

        restore_handed_over()
    args = build_parser().parse_args(argv)
    args.entry_point = entry_point and args.command in ("serve", "dev")
    args.hardened = {}
    if args.entry_point:
        from vault_server.cli.hardening import harden_process

        args.hardened = harden_process()  # before any file is created or secret is read
    try:
        return int(args.func(args))
    except (ConfigError, PolicyError, event_loop.EventLoopUnavailable, DevOpenBaoError) as exc:
        print(f"pipvault: {exc}", file=sys.stderr)
        return 2
    except ListenerConflict as exc:  # another process owns the socket or port: one line, exit 1
        print(f"pipvault: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
