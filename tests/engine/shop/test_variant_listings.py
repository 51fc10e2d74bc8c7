"""What a published listing writes into master data: each variant's online price and stock, and the stock rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, move
from ecomflow.engine.shop.variant_listings import (
    ListedVariant,
    listings_of,
    record_variant_listings,
    stock_findings,
)

pytestmark = pytest.mark.usefixtures("clean_db")
INSTANCE = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def seed(sku: str, stock: int) -> None:
    with session_scope() as session:
        seed_sku(session, sku=sku, title="纯棉短袖T恤", list_price="100", stock=stock)


def publish(*variants: ListedVariant, template: str = "包邮", hours: int = 48) -> dict[str, tuple[Decimal, int]]:
    with session_scope() as session:
        written = record_variant_listings(
            session,
            instance_id=INSTANCE,
            title="纯棉短袖T恤",
            variants=variants,
            shipping_template=template,
            dispatch_within_hours=hours,
            actor="system",
        )
        return {row.sku: (row.online_price, row.listed_stock) for row in written}


class TestStockFindings:
    def test_a_row_listing_more_than_the_online_warehouse_has_is_named(self) -> None:
        seed("TEE-M", stock=10)
        seed("TEE-L", stock=3)
        with session_scope() as session:
            move(
                session,
                kind="reserve",
                sku="TEE-M",
                location=ONLINE_WAREHOUSE,
                quantity=4,
                business_key="order-1",
                actor="system",
            )
            rows = [{"sku": "TEE-M", "stock": 6}, {"sku": "TEE-L", "stock": 5}, {"sku": "NOPE", "stock": 1}]
            findings = stock_findings(session, rows)
        # TEE-M: 10 on hand less 4 reserved leaves 6, so 6 is fine; TEE-L has 3; NOPE has none.
        assert [(f["field"], f["rule"]) for f in findings] == [
            ("skus[1].stock", "stock_available"),
            ("skus[2].stock", "stock_available"),
        ]
        assert findings[0]["message"] == f"TEE-L: lists 5 but {ONLINE_WAREHOUSE} has 3 available"


class TestRecordVariantListings:
    def test_the_latest_publish_wins_and_each_is_audited(self) -> None:
        seed("TEE-M", stock=10)
        assert publish(ListedVariant("TEE-M", Decimal("100"), 8)) == {"TEE-M": (Decimal("100"), 8)}
        assert publish(ListedVariant("TEE-M", Decimal("95.5"), 6), template="满99包邮", hours=24) == {
            "TEE-M": (Decimal("95.5"), 6)
        }
        with session_scope() as session:
            live = listings_of(session, ["TEE-M"])["TEE-M"]
            assert (live.online_price, live.listed_stock) == (Decimal("95.50"), 6)
            assert (live.shipping_template, live.dispatch_within_hours) == ("满99包邮", 24)
            events = session.scalars(select(AuditEvent).where(AuditEvent.type == "catalog.variants_listed")).all()
            assert [e.data["skus"]["TEE-M"]["stock"] for e in events] == [8, 6]

    def test_a_sku_the_catalogue_lacks_is_not_written(self) -> None:
        seed("TEE-M", stock=10)
        written = publish(ListedVariant("TEE-M", Decimal("100"), 1), ListedVariant("GONE", Decimal("100"), 1))
        assert list(written) == ["TEE-M"]
