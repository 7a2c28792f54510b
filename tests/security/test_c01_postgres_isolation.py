"""The database guard on PostgreSQL, attacked with raw SQL as the server's app role."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from tests.support import pg

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def dbs() -> Iterator[tuple[str, str]]:
    admin, app = pg.provisioned_database()
    try:
        yield admin, app
    finally:
        pg.drop_database(admin)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _seed(admin: str) -> tuple[str, str]:
    """Two workspaces with one credential each (inserted by the owner, past RLS)."""
    ids = (str(uuid.uuid4()), str(uuid.uuid4()))
    with psycopg.connect(_plain(admin), autocommit=True) as conn:
        for ws, name in zip(ids, ("ws-a", "ws-b"), strict=True):
            conn.execute(
                "INSERT INTO workspaces (id, resource_id, display_name, state, freeze_reason, "
                "frozen_by, create_time, update_time, revision) "
                "VALUES (%s, %s, '', 'active', '', '', %s, %s, 1)",
                (ws, name, NOW, NOW),
            )
            conn.execute(
                "INSERT INTO credentials (id, workspace_id, resource_id, display_name, broker, "
                "environment, key_algorithm, state, api_key_hint, scopes, venue_scopes, "
                "single_permission_tier, current_version, policy, create_time, update_time, "
                "revision) VALUES (%s, %s, 'cred', '', 'binance_spot', 'live', 'hmac_sha256', "
                "'active', '', '[]', '[]', false, 1, '{}', %s, %s, 1)",
                (str(uuid.uuid4()), ws, NOW, NOW),
            )
    return ids


def test_app_role_sees_touches_and_writes_only_its_workspace(dbs: tuple[str, str]) -> None:
    admin, app = dbs
    ws_a, ws_b = _seed(admin)
    with psycopg.connect(_plain(app)) as conn:
        # No workspace set: nothing is visible.
        assert conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
        conn.rollback()
        with conn.transaction():
            conn.execute("SELECT set_config('app.workspace_id', %s, true)", (ws_b,))
            assert conn.execute("SELECT count(*) FROM credentials").fetchone() == (1,)
            assert conn.execute(
                "SELECT count(*) FROM credentials WHERE workspace_id = %s", (ws_a,)
            ).fetchone() == (0,)
            assert (
                conn.execute(
                    "UPDATE credentials SET display_name = 'x' WHERE workspace_id = %s", (ws_a,)
                ).rowcount
                == 0
            )
            assert (
                conn.execute("DELETE FROM credentials WHERE workspace_id = %s", (ws_a,)).rowcount
                == 0
            )
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SELECT set_config('app.workspace_id', %s, true)", (ws_b,))
            conn.execute(
                "INSERT INTO credentials (id, workspace_id, resource_id, display_name, broker, "
                "environment, key_algorithm, state, api_key_hint, scopes, venue_scopes, "
                "single_permission_tier, current_version, policy, create_time, update_time, "
                "revision) VALUES (%s, %s, 'evil', '', 'binance_spot', 'live', 'hmac_sha256', "
                "'active', '', '[]', '[]', false, 1, '{}', now(), now(), 1)",
                (str(uuid.uuid4()), ws_a),
            )
        # SET LOCAL scope: after the transaction the setting is gone again.
        assert conn.execute("SELECT count(*) FROM credentials").fetchone() == (0,)
    with psycopg.connect(_plain(admin)) as conn:
        assert conn.execute(
            "SELECT count(*) FROM credentials WHERE display_name = 'x'"
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM credentials").fetchone() == (2,)


def test_one_pooled_connection_used_by_a_then_b_leaks_nothing(dbs: tuple[str, str]) -> None:
    from sqlalchemy import select

    from vault_server.storage.database import Database
    from vault_server.storage.models import Credential
    from vault_server.storage.tenant import bind_workspace

    admin, app = dbs
    ws_a, ws_b = _seed(admin)
    db = Database(app, pool_size=1)
    try:
        with db.transaction() as session:
            bind_workspace(session, ws_a)
            assert [c.workspace_id for c in session.execute(select(Credential)).scalars()] == [ws_a]
        with db.transaction() as session:  # same pooled connection, never bound
            assert session.execute(select(Credential)).scalars().all() == []
            rows = (
                session.connection().exec_driver_sql("SELECT workspace_id FROM credentials").all()
            )
            assert rows == []
        with db.transaction() as session:
            bind_workspace(session, ws_b)
            assert [c.workspace_id for c in session.execute(select(Credential)).scalars()] == [ws_b]
    finally:
        db.dispose()


def test_catalog_every_table_has_forced_rls_and_the_app_role_is_powerless(
    dbs: tuple[str, str],
) -> None:
    admin, _app = dbs
    with psycopg.connect(_plain(admin)) as conn:
        tables = conn.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid), pg_get_userbyid(c.relowner) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'"
        ).fetchall()
        assert len(tables) >= 10
        for name, enabled, forced, policies, owner in tables:
            assert enabled and forced, f"{name}: row-level security must be enabled and forced"
            assert policies >= 1, f"{name}: a table without a policy"
            assert owner == "pipvault_owner", f"{name} owned by {owner}"
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'pipvault_app'"
        ).fetchone()
        assert role == (False, False, False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = 'pipvault_app')"
        ).fetchone()
        assert owned == (0,)
        grants = conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = 'pipvault_app' AND table_name = 'audit_events'"
        ).fetchall()
        assert sorted(g[0] for g in grants) == ["INSERT", "SELECT"]


def test_server_refuses_to_run_as_owner_or_superuser(dbs: tuple[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.vault import start_vault
    from vault_server.config import ConfigError

    admin, _app = dbs
    with pytest.raises(ConfigError, match="superuser"):
        start_vault(tmp_path / "home", admin)
