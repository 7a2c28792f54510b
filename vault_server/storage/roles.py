"""PostgreSQL roles: migrations run as an owner role; the server connects as an app role that
owns nothing and has neither SUPERUSER nor BYPASSRLS (DESIGN.md §9).

``provision`` is what ``pipvault db upgrade`` runs on PostgreSQL: create both roles if missing,
migrate *as the owner role* (so the owner, not the connecting superuser, owns every object), then
grant the app role exactly what it needs: no UPDATE or DELETE on the audit table.
``check_app_role`` is what the server runs at start: it refuses an owner or a superuser.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from vault_server.core.errors import InternalError

OWNER_ROLE = "pipvault_owner"
APP_ROLE = "pipvault_app"
APP_PASSWORD_ENV = "PIPVAULT_APP_ROLE_PASSWORD"
_RW = ("credentials", "credential_versions", "routing_contexts", "signed_orders", "venue_nonces",
       "venue_sessions", "platform_applications", "workspaces", "kek_state", "pager_outbox",
       "audit_chain_heads")  # fmt: skip


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[0].isalpha() or len(name) > 63:
        raise InternalError("role names are letters, digits and underscores")
    return f'"{name}"'


def _ensure_role(conn: Connection, name: str, *, login: bool) -> None:
    row = conn.execute(
        text(
            "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole"
            " FROM pg_roles WHERE rolname = :n"
        ),
        {"n": name},
    ).first()
    if row is not None and tuple(row) == (login, False, False, False, False):
        return  # already right: no catalog write (concurrent upgrades do not collide)
    attrs = ("LOGIN" if login else "NOLOGIN") + " NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
    verb = "ALTER" if row is not None else "CREATE"
    conn.execute(text(f"{verb} ROLE {_ident(name)} {attrs}"))


def provision(engine: Engine, *, owner: str = OWNER_ROLE, app: str = APP_ROLE) -> None:
    """Create roles, migrate as the owner, grant the app role. Idempotent."""
    from vault_server.storage import migrate

    with engine.begin() as conn:
        _ensure_role(conn, owner, login=False)
        _ensure_role(conn, app, login=True)
        password = os.environ.get(APP_PASSWORD_ENV)
        if password:
            conn.execute(text(f"ALTER ROLE {_ident(app)} PASSWORD :p"), {"p": password})
        conn.execute(text(f"GRANT {_ident(owner)} TO CURRENT_USER"))
        conn.execute(text(f"GRANT CREATE, USAGE ON SCHEMA public TO {_ident(owner)}"))
        db = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.execute(text(f"GRANT CONNECT ON DATABASE {_ident(db)} TO {_ident(app)}"))
    migrate.upgrade(engine, role=owner)
    with engine.begin() as conn:
        conn.execute(text(f"SET ROLE {_ident(owner)}"))
        a = _ident(app)
        conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {a}"))
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(_RW)} TO {a}"))
        conn.execute(text(f"GRANT SELECT, INSERT ON audit_events TO {a}"))
        conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {a}"))
        conn.execute(text(f"GRANT SELECT ON alembic_version TO {a}"))
        conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {a}"))
        conn.execute(text("RESET ROLE"))


def check_app_role(engine: Engine) -> str | None:
    """A reason the server must not run with this connection, or None when it may."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT r.rolsuper, r.rolbypassrls, "
                "(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                " WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'USAGE')) "
                "FROM pg_roles r WHERE r.rolname = current_user"
            )
        ).one()
    superuser, bypass, owned = bool(row[0]), bool(row[1]), int(row[2])
    if superuser:
        return "connects as a superuser (row-level security would not apply)"
    if bypass:
        return "connects as a role with BYPASSRLS"
    if owned:
        return "connects as a role that owns (or inherits ownership of) the schema's tables"
    return None
