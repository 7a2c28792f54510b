"""Venue sessions and platform applications (issue 21).

``venue_sessions``: the login session or OAuth grant the vault holds per credential version,
shared by the fleet: the sealed tokens, their expiry, the lease of the
replica renewing them, and the lockout breaker's failure count. A tenant table: row-level
security binds it to the session's workspace like ``credentials``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_WS = "current_setting('app.workspace_id', true)"


def upgrade() -> None:
    op.create_table(
        "venue_sessions",
        sa.Column("credential_id", sa.String(36), nullable=False),
        sa.Column("credential_version", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=True),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renew_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_kind", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(64), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name="fk_venue_sessions_credential_id_credentials",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_venue_sessions_workspace_id_workspaces"
        ),
        sa.PrimaryKeyConstraint("credential_id", "credential_version", name="pk_venue_sessions"),
    )
    op.create_index("ix_venue_sessions_workspace_id", "venue_sessions", ["workspace_id"])
    op.create_table(
        "platform_applications",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_platform_applications"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE venue_sessions ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE venue_sessions FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON venue_sessions "
        f"USING (workspace_id = {_WS}) WITH CHECK (workspace_id = {_WS})"
    )
    # Global: sealed client secrets of the platform's own OAuth applications, read by whichever
    # workspace's transaction refreshes a grant, written only by SetPlatformApplication.
    op.execute("ALTER TABLE platform_applications ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE platform_applications FORCE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY global_rows ON platform_applications USING (true) WITH CHECK (true)")


def downgrade() -> None:
    op.drop_table("platform_applications")
    op.drop_table("venue_sessions")
