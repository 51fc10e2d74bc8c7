"""master data and the stock ledger: products, variants, locations, stock movements and balances,
and the owner's approved price deviations

The old flat `skus` table (two prices, one stock) and `stock_reservations` are replaced:
each old SKU becomes a product with one variant whose list price is the old offline (store) price,
its stock an opening `adjust` movement at the online warehouse, and each open reservation a
`reserve` movement under its old key. The downgrade rebuilds both old tables from the new ones;
the old online price does not come back (one price now: both old prices become the list price).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import ecomflow.engine.db.sqltypes

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ONLINE_WAREHOUSE = "WH-ONLINE"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = ecomflow.engine.db.sqltypes.UTCDateTime


def _now() -> datetime:
    return datetime.now(UTC)


def upgrade() -> None:
    op.create_table(
        "locations",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "products",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("brand", sa.String(length=64), nullable=False),
        sa.Column("online_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.Column("updated_at", When(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_products_title", "products", ["title"])
    op.create_table(
        "variants",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("list_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.Column("updated_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_variants_product_id", "variants", ["product_id"])
    op.create_index("ix_variants_barcode", "variants", ["barcode"])
    op.create_table(
        "stock_movements",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("business_key", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["location"], ["locations.code"]),
        sa.ForeignKeyConstraint(["sku"], ["variants.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "business_key", name="uq_stock_movement_once"),
    )
    op.create_index("ix_stock_movement_sku", "stock_movements", ["sku", "id"])
    op.create_index("ix_stock_movements_instance_id", "stock_movements", ["instance_id"])
    op.create_table(
        "stock_balances",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=32), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("updated_at", When(), nullable=False),
        sa.CheckConstraint("reserved >= 0 AND on_hand >= reserved", name="ck_stock_balance_never_negative"),
        sa.ForeignKeyConstraint(["location"], ["locations.code"]),
        sa.ForeignKeyConstraint(["sku"], ["variants.code"]),
        sa.PrimaryKeyConstraint("sku", "location"),
    )
    op.create_table(
        "price_deviations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("list_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("process_key", sa.String(length=64), nullable=False),
        sa.Column("approved_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["sku"], ["variants.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id", "sku", name="uq_price_deviation_once"),
    )
    op.create_index("ix_price_deviations_sku", "price_deviations", ["sku"])
    _carry_old_skus()
    op.drop_table("stock_reservations")
    op.drop_table("skus")


def _carry_old_skus() -> None:
    """Turn each old SKU into a product with one variant and its stock into movements at the online warehouse."""
    bind = op.get_bind()
    meta = sa.MetaData()
    meta.reflect(bind, only=["skus", "stock_reservations", "locations", "products", "variants"])
    meta.reflect(bind, only=["stock_movements", "stock_balances"])
    t = meta.tables
    now = _now()
    old = list(bind.execute(sa.select(t["skus"])).mappings())
    if not old:
        return
    bind.execute(
        t["locations"].insert(), [{"code": ONLINE_WAREHOUSE, "name": "线上仓", "kind": "warehouse", "created_at": now}]
    )
    held: dict[str, int] = {}
    reservations = list(
        bind.execute(
            sa.select(t["stock_reservations"]).where(t["stock_reservations"].c.released_at.is_(None))
        ).mappings()
    )
    for line in reservations:
        held[line["sku"]] = held.get(line["sku"], 0) + int(line["quantity"])
    for row in old:
        product_id = bind.execute(
            t["products"].insert().returning(t["products"].c.id),
            {
                "code": row["sku"],
                "title": row["name"],
                "category": row["category"],
                "brand": "",
                "online_only": False,
                "created_at": row["updated_at"],
                "updated_at": row["updated_at"],
            },
        ).scalar_one()
        bind.execute(
            t["variants"].insert(),
            {
                "code": row["sku"],
                "product_id": product_id,
                "attributes": {},
                "barcode": None,
                "list_price": row["offline_price"],
                "created_at": row["updated_at"],
                "updated_at": row["updated_at"],
            },
        )
        # The old stock was what was left after reservations: on hand is that plus what is still reserved.
        on_hand = int(row["stock"]) + held.get(row["sku"], 0)
        bind.execute(
            t["stock_movements"].insert(),
            {
                "kind": "adjust",
                "sku": row["sku"],
                "location": ONLINE_WAREHOUSE,
                "quantity": on_hand,
                "business_key": f"migration-0010/opening/{row['sku']}",
                "reason": "opening balance carried from the skus table",
                "instance_id": None,
                "actor": "system",
                "created_at": now,
            },
        )
        bind.execute(
            t["stock_balances"].insert(),
            {
                "sku": row["sku"],
                "location": ONLINE_WAREHOUSE,
                "on_hand": on_hand,
                "reserved": held.get(row["sku"], 0),
                "updated_at": now,
            },
        )
    if reservations:
        bind.execute(
            t["stock_movements"].insert(),
            [
                {
                    "kind": "reserve",
                    "sku": line["sku"],
                    "location": ONLINE_WAREHOUSE,
                    "quantity": int(line["quantity"]),
                    "business_key": line["key"],
                    "reason": None,
                    "instance_id": line["instance_id"],
                    "actor": "system",
                    "created_at": line["created_at"],
                }
                for line in reservations
            ],
        )


def downgrade() -> None:
    op.create_table(
        "skus",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("online_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("offline_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("price_policy", sa.String(length=16), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("updated_at", When(), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    op.create_table(
        "stock_reservations",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("order_key", sa.String(length=180), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("fulfilment", sa.String(length=16), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.Column("released_at", When(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"]),
        sa.ForeignKeyConstraint(["sku"], ["skus.sku"]),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_stock_reservations_instance_id", "stock_reservations", ["instance_id"])
    op.create_index("ix_stock_reservations_order_key", "stock_reservations", ["order_key"])
    bind = op.get_bind()
    # One old SKU per variant: both prices are the list price, the stock is what is available everywhere.
    bind.execute(
        sa.text(
            "INSERT INTO skus (sku, name, category, online_price, offline_price, price_policy, stock, updated_at) "
            "SELECT v.code, substr(p.title, 1, 200), substr(p.category, 1, 32), v.list_price, v.list_price, "
            "'flexible', COALESCE((SELECT SUM(b.on_hand - b.reserved) FROM stock_balances b WHERE b.sku = v.code), 0), "
            "v.updated_at FROM variants v JOIN products p ON p.id = v.product_id"
        )
    )
    # Reservations still held (reserved, neither released nor shipped) whose instance exists come back.
    bind.execute(
        sa.text(
            "INSERT INTO stock_reservations (key, order_key, instance_id, sku, quantity, fulfilment, created_at) "
            "SELECT m.business_key, m.instance_id, m.instance_id, m.sku, m.quantity, 'ship', m.created_at "
            "FROM stock_movements m JOIN process_instances i ON i.id = m.instance_id "
            "WHERE m.kind = 'reserve' AND NOT EXISTS (SELECT 1 FROM stock_movements o "
            "WHERE o.kind IN ('release', 'ship', 'store_pickup') AND o.business_key = m.business_key)"
        )
    )
    op.drop_table("price_deviations")
    op.drop_table("stock_balances")
    op.drop_table("stock_movements")
    op.drop_table("variants")
    op.drop_table("products")
    op.drop_table("locations")
