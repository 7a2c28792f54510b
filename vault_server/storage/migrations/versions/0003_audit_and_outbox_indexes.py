"""Indexes for per-chain audit reads and outbox dedupe lookups.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_chain_id", "audit_events", ["chain_id", "id"])
    op.create_index("ix_pager_outbox_dedup_key", "pager_outbox", ["dedup_key"])


def downgrade() -> None:
    op.drop_index("ix_pager_outbox_dedup_key", table_name="pager_outbox")
    op.drop_index("ix_audit_events_chain_id", table_name="audit_events")
