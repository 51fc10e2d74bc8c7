"""inbox: a staff member's own tasks read in priority and at_risk order too

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 08:55:00

The inbox reads a staff member's own tasks (those of roles they lack included) by assignee. Sorted by
priority or at_risk, that read had no index in the sort's order: for a person holding 2,290 claimed
tasks (bench.inbox_latency, PostgreSQL, seed 1) page 11 read and sorted all of them twice, 4.3 of the
statement's 6.8 ms. These follow ix_task_assignee with the lead column before the due time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# (name, columns): the lead column sorts descending, then the due time ascending.
INDEXES = [
    ("ix_task_assignee_priority", ["assignee", "state", sa.text("priority DESC"), "due_at"]),
    ("ix_task_assignee_risk", ["assignee", "state", sa.text("at_risk DESC"), "due_at"]),
]


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "human_tasks", columns, unique=False)


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="human_tasks")
