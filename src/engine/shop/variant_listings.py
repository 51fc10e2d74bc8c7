"""What each variant is live with on the shop: the online price and stock its last published listing gave it.

listing_upload writes these on publish, so master data knows the shop's price and quantity of every variant
without anyone typing them again; the listing check refuses a listed stock the online warehouse cannot cover.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Variant, VariantListing
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, available_by_sku

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ListedVariant:
    """One SKU row of a listing as it goes live."""

    sku: str
    online_price: Decimal
    listed_stock: int


def stock_findings(session: Session, rows: list[dict]) -> list[dict[str, str]]:
    """Return a finding per SKU row that lists more than the online warehouse has available."""
    available = available_by_sku(session, [row["sku"] for row in rows], location=ONLINE_WAREHOUSE)
    return [
        {
            "field": f"skus[{index}].stock",
            "rule": "stock_available",
            "message": f"{row['sku']}: lists {row['stock']} but {ONLINE_WAREHOUSE} has "
            f"{available.get(row['sku'], 0)} available",
        }
        for index, row in enumerate(rows)
        if int(row["stock"]) > available.get(row["sku"], 0)
    ]


def record_variant_listings(
    session: Session,
    *,
    instance_id: str,
    title: str,
    variants: Iterable[ListedVariant],
    shipping_template: str,
    dispatch_within_hours: int,
    actor: str,
) -> list[VariantListing]:
    """Write each variant's live price and stock (the latest publish wins), audited in the same transaction."""
    variants = list(variants)
    known = set(session.scalars(select(Variant.code).where(Variant.code.in_([v.sku for v in variants]))))
    written = []
    for variant in variants:
        if variant.sku not in known:
            continue  # the listing check already named it; nothing in master data to write to
        row = session.get(VariantListing, variant.sku) or VariantListing(sku=variant.sku)
        # In cents, as the column keeps it, so what the result reports is what the database holds.
        row.online_price = Decimal(variant.online_price).quantize(CENT)
        row.listed_stock, row.title = variant.listed_stock, title
        row.shipping_template, row.dispatch_within_hours = shipping_template, dispatch_within_hours
        row.instance_id, row.published_at = instance_id, utcnow()
        session.add(row)
        written.append(row)
    session.flush()
    record_event(
        session,
        type="catalog.variants_listed",
        actor=actor,
        instance_id=instance_id,
        data={"skus": {r.sku: {"online_price": str(r.online_price), "stock": r.listed_stock} for r in written}},
    )
    return written


def listings_of(session: Session, skus: Iterable[str]) -> dict[str, VariantListing]:
    """Return the live listing of each SKU that has one."""
    return {row.sku: row for row in session.scalars(select(VariantListing).where(VariantListing.sku.in_(list(skus))))}
