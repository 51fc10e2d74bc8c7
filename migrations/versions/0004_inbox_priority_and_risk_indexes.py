"""inbox priority and at_risk sorts read in index order

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (name, columns): the lead column sorts descending, then the due time ascending.
INDEXES = [
    ("ix_task_inbox_priority", ["state", "role", sa.text("priority DESC"), "due_at"]),
    ("ix_task_all_priority", ["state", sa.text("priority DESC"), "due_at"]),
    ("ix_task_inbox_risk", ["state", "role", sa.text("at_risk DESC"), "due_at"]),
    ("ix_task_all_risk", ["state", sa.text("at_risk DESC"), "due_at"]),
]


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "human_tasks", columns, unique=False)


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="human_tasks")
