"""stored definition versions: each process's flows.yaml text that instances pin

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import yaml
from alembic import op

import ecomflow.engine.db.sqltypes
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.stored_text import SHARED_SECTIONS, process_text, text_sha256

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definition_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("process_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("declared_version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("stored_at", ecomflow.engine.db.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("process_key", "version", name="uq_definition_version"),
        sa.UniqueConstraint("process_key", "sha256", name="uq_definition_text"),
    )
    _store_the_texts_old_instances_ran()


# The processes as the last release without this table shipped them: its instances carry definition_version 1.
OLD_PROCESSES = Path(__file__).with_name("processes_before_versions.yaml")


def _store_the_texts_old_instances_ran() -> None:
    """Store version 1 of each process that has instances as that release defined it, so they keep their steps.

    The shared sections (roles, sla, rules) come from today's flows.yaml: the old release's rules no longer parse
    (the price rule changed), and the flows read rules through today's code anyway.
    """
    bind = op.get_bind()
    keys = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT process_key FROM process_instances"))]
    if not keys:
        return
    old = yaml.safe_load(OLD_PROCESSES.read_text(encoding="utf-8"))["processes"]
    current = get_definitions().source
    source = {**{name: current.get(name) for name in SHARED_SECTIONS}, "processes": old}
    table = sa.table(
        "definition_versions",
        sa.column("process_key"),
        sa.column("version"),
        sa.column("declared_version"),
        sa.column("sha256"),
        sa.column("text"),
        sa.column("stored_at", ecomflow.engine.db.sqltypes.UTCDateTime()),
    )
    now = datetime.now(UTC)
    rows = []
    for key in sorted(k for k in keys if k in old):
        text = process_text(source, key)
        row = {"process_key": key, "version": 1, "declared_version": 1, "sha256": text_sha256(text), "text": text}
        rows.append({**row, "stored_at": now})
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("definition_versions")
