"""traffic and ads: 生意参谋 traffic per day (shop or item), 直通车/钻展 figures per day and plan, creatives' ad ids

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 02:00:00

Both tables are filled by imports (engine/intake), keyed by (platform, row_key) so that a re-import
finds its rows. A creative's ad_creative_id names the 创意ID it ran as, for its click-through rate.
The downgrade drops what this revision added, the imported figures with it: they come from files
that can be imported again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("imported_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "traffic_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("row_key", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("store", sa.String(length=100), nullable=True),
        sa.Column("item_id", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("visitors", sa.BigInteger(), nullable=False),
        sa.Column("page_views", sa.BigInteger(), nullable=True),
        sa.Column("paid_buyers", sa.BigInteger(), nullable=False),
        sa.Column("paid_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "row_key", name="uq_traffic_daily"),
    )
    op.create_index("ix_traffic_daily_day", "traffic_daily", ["day"], unique=False)
    op.create_table(
        "ad_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("row_key", sa.String(length=400), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("store", sa.String(length=100), nullable=True),
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("creative_id", sa.String(length=64), nullable=True),
        sa.Column("creative", sa.String(length=255), nullable=True),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("spend", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("gmv", sa.Numeric(precision=14, scale=2), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "row_key", name="uq_ad_daily"),
    )
    op.create_index("ix_ad_daily_day", "ad_daily", ["day"], unique=False)
    op.create_index("ix_ad_daily_creative_id", "ad_daily", ["creative_id"], unique=False)
    with op.batch_alter_table("creatives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ad_creative_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_creatives_ad_creative_id"), ["ad_creative_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("creatives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_creatives_ad_creative_id"))
        batch_op.drop_column("ad_creative_id")
    op.drop_index("ix_ad_daily_creative_id", table_name="ad_daily")
    op.drop_index("ix_ad_daily_day", table_name="ad_daily")
    op.drop_table("ad_daily")
    op.drop_index("ix_traffic_daily_day", table_name="traffic_daily")
    op.drop_table("traffic_daily")
