"""extended statistics on human_tasks (state, at_risk): the planner learns that only active tasks are at risk

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 23:00:00

PostgreSQL estimates "state = 'open' AND at_risk" as if the two were independent: 0.8 % of all
tasks are at risk and 7 % are open, so it expected 0.06 % of the table where 10 % of the open tasks
are (completed tasks never are). With 1M completed tasks a manager's at_risk inbox page 11 was
planned as a bitmap scan of every at-risk task past the cursor, then a sort: 26 rows expected, 6,958
read, 35 ms (bench/RESULTS.md). A most-common-values list over both columns gives the planner the
real joint frequencies, and it reads the index in order, stopping at the page's LIMIT. SQLite has
no such statistics (its plans were not misled); there this revision changes nothing.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

STATISTICS = "st_task_state_risk"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} (mcv) ON state, at_risk FROM human_tasks")
    # Filled by the next ANALYZE; do it now rather than wait for autovacuum's threshold of changed rows.
    op.execute("ANALYZE human_tasks")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")
