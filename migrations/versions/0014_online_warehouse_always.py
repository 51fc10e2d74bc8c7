"""the online warehouse (WH-ONLINE) exists in every database, not only in ones converted by 0010

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 01:30:00

Paid orders without a location of their own join the online warehouse's waves, and their stock is
reserved there (engine/intake/waves.py). 0010 created the location only when it carried old stock
over, so a database made fresh at head had none: the first paid order imported failed on the
foreign key. This revision adds it where it is missing. The downgrade leaves it: the row is valid
in 0013's schema, stock and waves may point at it, and upgrading again finds it there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ONLINE_WAREHOUSE = "WH-ONLINE"


def upgrade() -> None:
    locations = sa.table(
        "locations",
        sa.column("code", sa.String(32)),
        sa.column("name", sa.String(100)),
        sa.column("kind", sa.String(16)),
        sa.column("created_at", ecomflow.engine.db.sqltypes.UTCDateTime()),
    )
    bind = op.get_bind()
    if bind.scalar(sa.select(locations.c.code).where(locations.c.code == ONLINE_WAREHOUSE)) is None:
        bind.execute(
            locations.insert().values(
                code=ONLINE_WAREHOUSE, name="线上仓", kind="warehouse", created_at=datetime.now(UTC)
            )
        )


def downgrade() -> None:
    """Keep the location: see the module docstring."""
