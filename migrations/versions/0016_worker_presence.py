"""worker presence: each live worker process renews its row, so workers know how many share the runs

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 07:40:00

Two workers polling the same scheduled runs both proposed Running for each, and the loser's take was
refused by the server (7.3 Prefect calls per human step with two workers against 5.5-5.7 with one).
With the live workers known, each prefers its own share of the runs (engine/orchestrator/run_shares.py).
The rows only say who is alive now: the downgrade drops the table, and the workers write it again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_presence",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("seen_until", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    with op.batch_alter_table("worker_presence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_worker_presence_seen_until"), ["seen_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("worker_presence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_presence_seen_until"))
    op.drop_table("worker_presence")
