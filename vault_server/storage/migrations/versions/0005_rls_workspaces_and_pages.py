"""Row-level security binds ``workspaces`` and ``pager_outbox`` to the session's workspace.

0002 gave both tables an allow-all policy, so a transaction bound to workspace A could read,
unfreeze or delete workspace B's row and read, delete or mark delivered B's pages. Now:

- ``workspaces``: a bound transaction sees and changes its own row only (creation binds to the
  new workspace's id first). The one cross-workspace read, the workspace directory (resolving
  ``workspaces/{name}`` to an id, ListWorkspaces, system jobs listing workspaces, cache epoch
  polling), is the job ``workspace_directory``: SELECT only.
- ``pager_outbox``: a bound transaction may enqueue and look up its own workspace's pages
  (nothing else: delivery state belongs to the sender); a transaction bound to no workspace may
  enqueue and look up system pages (``workspace_id`` NULL). The sender is the job
  ``pager_sender`` (SELECT, UPDATE: claim, deliver, retry, give up); pruning is the job
  ``pager_prune`` (SELECT, DELETE).

A job is named per transaction in ``app.cross_workspace_job`` (``storage.tenant``) and counts
only while ``app.workspace_id`` is unset or empty: naming a job never widens a transaction bound
to a workspace.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_WS = "current_setting('app.workspace_id', true)"
_UNBOUND = f"coalesce({_WS}, '') = ''"


def _job(name: str) -> str:
    return f"({_UNBOUND} AND current_setting('app.cross_workspace_job', true) = '{name}')"


_POLICIES = (
    # (table, policy, command, USING, WITH CHECK)
    ("workspaces", "workspace_own", "ALL", f"id = {_WS}", f"id = {_WS}"),
    ("workspaces", "workspace_directory", "SELECT", _job("workspace_directory"), None),
    (
        "pager_outbox",
        "pages_read",
        "SELECT",
        f"workspace_id = {_WS} OR (workspace_id IS NULL AND {_UNBOUND})"
        f" OR {_job('pager_sender')} OR {_job('pager_prune')}",
        None,
    ),
    (
        "pager_outbox",
        "pages_enqueue",
        "INSERT",
        None,
        f"workspace_id = {_WS} OR (workspace_id IS NULL AND {_UNBOUND})",
    ),
    ("pager_outbox", "pages_deliver", "UPDATE", _job("pager_sender"), _job("pager_sender")),
    ("pager_outbox", "pages_prune", "DELETE", _job("pager_prune"), None),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ("workspaces", "pager_outbox"):
        op.execute(f"DROP POLICY IF EXISTS global_rows ON {table}")
    for table, name, command, using, check in _POLICIES:
        sql = f"CREATE POLICY {name} ON {table} FOR {command}"
        if using is not None:
            sql += f" USING ({using})"
        if check is not None:
            sql += f" WITH CHECK ({check})"
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, name, *_ in _POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
    for table in ("workspaces", "pager_outbox"):
        op.execute(f"CREATE POLICY global_rows ON {table} USING (true) WITH CHECK (true)")
