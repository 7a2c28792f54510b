"""Row-level security on every table (PostgreSQL): tenant tables filtered by app.workspace_id.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT = ("credentials", "credential_versions", "routing_contexts", "signed_orders", "venue_nonces")
# Audit rows of a workspace are tenant data; the system chain (workspace_id NULL) is global.
AUDIT = ("audit_events", "audit_chain_heads")
# Global tables: no tenant data (or ids only); an explicit permissive policy of their own.
GLOBAL = ("workspaces", "kek_state", "pager_outbox")

_WS = "current_setting('app.workspace_id', true)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TENANT:
        _enable(table)
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (workspace_id = {_WS}) WITH CHECK (workspace_id = {_WS})"
        )
    for table in AUDIT:
        _enable(table)
        rule = f"(workspace_id IS NULL OR workspace_id = {_WS})"
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING {rule} WITH CHECK {rule}")
    for table in GLOBAL:
        _enable(table)
        op.execute(f"CREATE POLICY global_rows ON {table} USING (true) WITH CHECK (true)")


def _enable(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*TENANT, *AUDIT):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in GLOBAL:
        op.execute(f"DROP POLICY IF EXISTS global_rows ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
