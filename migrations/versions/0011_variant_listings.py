"""variant listings: the online price and stock each variant's last published listing gave it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "variant_listings",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("online_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("listed_stock", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("shipping_template", sa.String(length=100), nullable=False),
        sa.Column("dispatch_within_hours", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("published_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sku"], ["variants.code"]),
        sa.PrimaryKeyConstraint("sku"),
    )


def downgrade() -> None:
    op.drop_table("variant_listings")
