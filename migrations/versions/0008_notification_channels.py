"""notification channels: users' contact details, channel send budgets, daily digests, digest delivery

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CONTACT_COLUMNS = (("mobile", 32), ("email", 254), ("dingtalk_id", 64), ("wecom_id", 64), ("feishu_id", 64))


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name, length in CONTACT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivered_with", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
    op.create_table(
        "channel_sends",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("sent_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("channel_sends", schema=None) as batch_op:
        batch_op.create_index("ix_channel_sends_window", ["channel", "sent_at"], unique=False)
    op.create_table(
        "daily_digest_runs",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("made_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("daily_digest_runs")
    with op.batch_alter_table("channel_sends", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_sends_window")
    op.drop_table("channel_sends")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("delivered_with")
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name, _ in reversed(CONTACT_COLUMNS):
            batch_op.drop_column(name)
