"""platform data: orders with their lines and history, refunds, reviews, waves, import runs, inbound deliveries

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("started_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "inbound_deliveries",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("import_run_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("source", "delivery_id"),
    )
    op.create_table(
        "platform_refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("refund_no", sa.String(length=64), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("platform_status", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("paid_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("buyer_nick", sa.String(length=100), nullable=True),
        sa.Column("requested_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("completed_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("return_carrier", sa.String(length=50), nullable=True),
        sa.Column("return_tracking_no", sa.String(length=64), nullable=True),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("imported_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "refund_no", name="uq_platform_refund"),
    )
    with op.batch_alter_table("platform_refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_refunds_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_platform_refunds_order_no"), ["order_no"], unique=False)

    op.create_table(
        "platform_reviews",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("review_id", sa.String(length=128), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("rating_label", sa.String(length=16), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("buyer_nick", sa.String(length=100), nullable=True),
        sa.Column("reviewed_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("imported_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "review_id", name="uq_platform_review"),
    )
    with op.batch_alter_table("platform_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_reviews_order_no"), ["order_no"], unique=False)

    op.create_table(
        "waves",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("location", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closes_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closed_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["location"],
            ["locations.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_waves_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index("ix_waves_location_state", ["location", "state"], unique=False)

    op.create_table(
        "platform_orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("shop", sa.String(length=100), nullable=True),
        sa.Column("buyer_nick", sa.String(length=100), nullable=True),
        sa.Column("receiver_name", sa.String(length=100), nullable=True),
        sa.Column("receiver_phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("platform_status", sa.String(length=64), nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("postage", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("paid_amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("ordered_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("paid_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("buyer_message", sa.Text(), nullable=True),
        sa.Column("seller_note", sa.Text(), nullable=True),
        sa.Column("address_changed", sa.Boolean(), nullable=False),
        sa.Column("risk_flag", sa.String(length=255), nullable=True),
        sa.Column("carrier", sa.String(length=50), nullable=True),
        sa.Column("tracking_no", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=32), nullable=True),
        sa.Column("inquiry_instance_id", sa.String(length=36), nullable=True),
        sa.Column("wave_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("fulfilment_state", sa.String(length=24), nullable=True),
        sa.Column("case_instance_id", sa.String(length=36), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("imported_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["waves.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "order_no", name="uq_platform_order"),
    )
    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.create_index("ix_platform_orders_paid_at", ["paid_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_platform_orders_wave_id"), ["wave_id"], unique=False)

    op.create_table(
        "platform_order_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["platform_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("platform_order_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_order_events_order_id"), ["order_id"], unique=False)

    op.create_table(
        "platform_order_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["platform_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "line_no", name="uq_platform_order_line"),
    )
    with op.batch_alter_table("platform_order_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_order_lines_sku"), ["sku"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("platform_order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_order_lines_sku"))

    op.drop_table("platform_order_lines")
    with op.batch_alter_table("platform_order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_order_events_order_id"))

    op.drop_table("platform_order_events")
    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_orders_wave_id"))
        batch_op.drop_index("ix_platform_orders_paid_at")

    op.drop_table("platform_orders")
    with op.batch_alter_table("waves", schema=None) as batch_op:
        batch_op.drop_index("ix_waves_location_state")
        batch_op.drop_index(batch_op.f("ix_waves_instance_id"))

    op.drop_table("waves")
    with op.batch_alter_table("platform_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_reviews_order_no"))

    op.drop_table("platform_reviews")
    with op.batch_alter_table("platform_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_refunds_order_no"))
        batch_op.drop_index(batch_op.f("ix_platform_refunds_instance_id"))

    op.drop_table("platform_refunds")
    op.drop_table("inbound_deliveries")
    op.drop_table("import_runs")
