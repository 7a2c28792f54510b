"""``pipvault audit verify``: offline verification of every audit chain (and checkpoints).

Reads the database directly (run it as the owner or a superuser so every workspace's rows are
visible past row-level security), recomputes each keyed hash chain, and checks the chains against
the latest signed checkpoint when a checkpoints file and the audit public key are given. Without
checkpoints a truncated tail cannot be seen, and the output says so.

A log that is not intact pages the on-call: one page per break goes into the verified database's
outbox (delivered by the running vault's pager sender), unless ``--no-page``; a break already
paged (by this command, ``VerifyAuditLog`` or the periodic verifier) is not paged again.

Exit status: 0 intact, 1 not intact (the first bad event and the problem are printed), 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
from pathlib import Path
from typing import Any

from vault_server.config import ConfigError

SERVER_KEY_ENV = "PIPVAULT_SERVER_KEY"
DATABASE_URL_ENV = "PIPVAULT_DATABASE_URL"


def _read_key(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{what}: {path} must not be readable by group or others")
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{what}: {path} must hold base64") from exc
    if len(key) < 32:
        raise ConfigError(f"{what}: {path} must hold at least 32 bytes")
    return key


def chain_key(args: argparse.Namespace) -> bytes:
    """The chain HMAC key: given outright, or derived from the server key as the server does."""
    if args.chain_key_file is not None:
        return _read_key(args.chain_key_file, "--chain-key-file")
    from vault_server.app import derive_key  # the server's own derivation (heavy import: lazy)

    if args.server_key_file is not None:
        return derive_key(_read_key(args.server_key_file, "--server-key-file"), "audit-chain")
    raw = os.environ.get(SERVER_KEY_ENV, "")
    if raw:
        try:
            server_key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"${SERVER_KEY_ENV}: must hold base64") from exc
        return derive_key(server_key, "audit-chain")
    raise ConfigError(f"pass --server-key-file or --chain-key-file (or set ${SERVER_KEY_ENV})")


def _check_sqlite_path(url: str) -> None:
    """SQLite would create a missing file and report an empty log: refuse instead."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("--database-url: not a database URL") from exc
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise ConfigError(f"--database-url: no SQLite database at {parsed.database}")


def _verify(args: argparse.Namespace) -> int:
    from vault_server.audit import (
        ChainStore,
        CheckpointKeyError,
        load_public_key,
        read_checkpoints,
        verify_chains,
    )
    from vault_server.core.errors import VaultError
    from vault_server.storage.database import Database

    url = args.database_url or os.environ.get(DATABASE_URL_ENV, "")
    if not url:
        raise ConfigError(f"pass --database-url (or set ${DATABASE_URL_ENV})")
    if (args.checkpoints is None) != (args.public_key is None):
        raise ConfigError("--checkpoints and --public-key go together")
    _check_sqlite_path(url)
    key = chain_key(args)
    log = None
    if args.checkpoints is not None:
        try:
            log = read_checkpoints(args.checkpoints, load_public_key(args.public_key))
        except CheckpointKeyError as exc:
            raise ConfigError(str(exc)) from exc
    db = Database(url, pool_size=1)
    try:
        store = ChainStore(db)
        result = verify_chains(store, key, store.chains(None, discover=True), log)
        if not result.intact and not args.no_page:
            _page(db, result)
    except VaultError as exc:
        raise ConfigError(f"database: {exc.message}") from exc
    finally:
        db.dispose()
    from vault_server.rpc.convert_audit import verify_response

    doc = verify_document(verify_response(result))
    print(json.dumps(doc, indent=2) if args.json else _human(doc))
    return 0 if result.intact else 1


def _page(db: Any, result: Any) -> None:
    """Queue a page per break in the verified database's outbox (the running vault's sender
    delivers it; a break already paged by anyone pages nobody). A database this user may not
    write to is said on stderr: the verdict and the exit status stay the same."""
    from vault_server.core.clock import SystemClock
    from vault_server.observability.logging import configure_logging
    from vault_server.paging import FOUND_BY_CLI, AuditIntegrityPager, Pager

    configure_logging("WARNING", "console")  # stderr: stdout holds only the verdict
    try:
        queued = AuditIntegrityPager(db, Pager(SystemClock())).report(result, FOUND_BY_CLI)
    except Exception as exc:
        print(f"pipvault audit: could not queue a page: {type(exc).__name__}", file=sys.stderr)
        return
    print(f"pipvault audit: {queued} new page(s) queued for the on-call", file=sys.stderr)


def verify_document(msg: Any) -> dict[str, Any]:
    """The JSON schema of a verification, shared with ``vaultctl --json audit verify`` (which
    renders the same ``VerifyAuditLogResponse`` the same way; a test compares the two): the
    message as every ``--json`` prints one (``cli/proto_json``: proto field names with defaults,
    64-bit counts as JSON numbers), ``checkpoints`` null when unused."""
    from vault_server.cli.proto_json import to_document

    doc = to_document(msg)
    if not msg.HasField("checkpoints"):
        doc["checkpoints"] = None
    return doc


def _human(doc: dict[str, Any]) -> str:
    state = "INTACT" if doc["intact"] else "NOT INTACT"
    lines = [
        f"audit log {state}: {doc['chains_checked']} chains, {doc['events_checked']} events checked"
    ]
    if not doc["intact"]:
        lines += [
            f"first bad event: {doc['first_bad_event']}",
            f"problem: {doc['problem']} ({doc['detail']})",
        ]
        lines += [f"  also: {f['event']} {f['problem']}" for f in doc["findings"][1:]]
    cps = doc["checkpoints"]
    if cps is None:
        lines.append("note: no checkpoints given, so a truncated tail cannot be detected")
    else:
        latest = cps["latest_time"] or "none"
        lines.append(
            f"checkpoints: {cps['valid']} valid, {cps['invalid']} invalid, latest {latest}"
        )
    return "\n".join(lines)


def _add_verify(sub: Any) -> None:
    v = sub.add_parser("verify", help="verify the hash chains (and signed checkpoints)")
    v.add_argument("--database-url", default=None, help=f"default ${DATABASE_URL_ENV}")
    v.add_argument("--server-key-file", type=Path, default=None, help="derive the chain key")
    v.add_argument("--chain-key-file", type=Path, default=None, help="base64 chain key")
    v.add_argument("--checkpoints", type=Path, default=None, help="checkpoints JSON-lines file")
    v.add_argument("--public-key", type=Path, default=None, help="audit Ed25519 public key")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.add_argument(
        "--no-page",
        action="store_true",
        help="do not queue a page in the database's outbox when the log is not intact "
        "(e.g. verifying a restored copy)",
    )
    v.set_defaults(func=_verify)


def register(subparsers: Any) -> None:
    """Add ``audit verify`` to the ``pipvault`` command line."""
    audit = subparsers.add_parser("audit", help="audit log")
    _add_verify(audit.add_subparsers(dest="audit_command", required=True))


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m vault_server.cli.audit verify ...``."""
    parser = argparse.ArgumentParser(prog="pipvault audit", description=__doc__.splitlines()[0])
    _add_verify(parser.add_subparsers(dest="audit_command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"pipvault audit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
