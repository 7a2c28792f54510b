"""Fresh PostgreSQL databases for tests, on the server at PIPVAULT_TEST_PG_URL."""

from __future__ import annotations

import os
import secrets

import psycopg
from psycopg import sql

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("PIPVAULT_TEST_PG_URL", DEFAULT_URL)


def with_database(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


def create_database(prefix: str = "pipvault_test") -> str:
    """Create an empty database and return its URL."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url(), name)


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def as_role(url: str, role: str = "pipvault_app") -> str:
    """The same database, connecting as ``role`` (trust auth on the test server)."""
    scheme, _, rest = url.partition("://")
    _, _, hostpart = rest.rpartition("@")
    return f"{scheme}://{role}@{hostpart}"


def provisioned_database() -> tuple[str, str]:
    """A fresh database migrated by `pipvault db upgrade`; returns (admin URL, app-role URL)."""
    from vault_server.storage import roles
    from vault_server.storage.database import Database

    url = create_database()
    db = Database(url)
    try:
        roles.provision(db.engine)
    finally:
        db.dispose()
    _ADMIN_FOR[as_role(url)] = url
    return url, as_role(url)


_ADMIN_FOR: dict[str, str] = {}


def admin_for(url: str) -> str:
    """The owner/superuser URL behind an app-role URL (tests inspect past RLS with it)."""
    return _ADMIN_FOR.get(url, url)
