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
