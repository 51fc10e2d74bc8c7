"""attachments (uploaded files), the instances that use them, and the design archive of approved creatives

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("image_facts", sa.JSON(), nullable=True),
        sa.Column("has_thumbnail", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_attachments_uploaded_by"), ["uploaded_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_attachments_uploaded_at"), ["uploaded_at"], unique=False)

    op.create_table(
        "attachment_references",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("attachment_id", sa.String(length=36), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("created_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["attachment_id"], ["attachments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attachment_id", "instance_id", "task_id", "field", name="uq_attachment_use"),
    )
    with op.batch_alter_table("attachment_references", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachment_references_attachment_id"), ["attachment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attachment_references_instance_id"), ["instance_id"], unique=False)

    op.create_table(
        "creatives",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("process_key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=True),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("attachment_ids", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("approved_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id"),
    )
    with op.batch_alter_table("creatives", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_creatives_process_key"), ["process_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_creatives_campaign"), ["campaign"], unique=False)
        batch_op.create_index(batch_op.f("ix_creatives_approved_at"), ["approved_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("creatives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_creatives_approved_at"))
        batch_op.drop_index(batch_op.f("ix_creatives_campaign"))
        batch_op.drop_index(batch_op.f("ix_creatives_process_key"))
    op.drop_table("creatives")
    with op.batch_alter_table("attachment_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_references_instance_id"))
        batch_op.drop_index(batch_op.f("ix_attachment_references_attachment_id"))
    op.drop_table("attachment_references")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_uploaded_at"))
        batch_op.drop_index(batch_op.f("ix_attachments_uploaded_by"))
        batch_op.drop_index(batch_op.f("ix_attachments_sha256"))
    op.drop_table("attachments")
