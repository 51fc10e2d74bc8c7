"""Visitors and conversion from the imported 生意参谋 days, grouped as the sales facts are.

- By day, channel (platform), store and in total: the shop's own rows (no item), whose visitors the platform
  counts once per shop and day; by product: the items' rows, an item's merchant code (商家编码) read as a
  product code, else as a variant's code (its product); unknown codes fall in the row without a product.
- Visitors over several days are the sum of the days' visitors (a person on two days counts twice), as the
  daily export gives no distinct count over a range.
- Conversion (支付转化率) = paying buyers / visitors of the same rows, both as 生意参谋 reports them, to 0.0001.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import Product, Variant
from ecomflow.engine.db.platform_models import TrafficDay

RATE = Decimal("0.0001")
Traffic = dict[str | None, list[int]]  # key → [visitors, paying buyers]


def conversion(visitors: int | None, buyers: int | None) -> Decimal | None:
    """Return paying buyers / visitors to 0.0001, or None without visitors."""
    if not visitors or buyers is None:
        return None
    return (Decimal(buyers) / visitors).quantize(RATE, ROUND_HALF_UP)


def traffic_by(session: Session, *, by: str, first: date, last: date) -> tuple[Traffic, list[int] | None]:
    """Return {key: [visitors, buyers]} grouped by day, product, channel or store, and the total (None: no data)."""
    in_range = (TrafficDay.day >= first, TrafficDay.day <= last)
    figures = (func.sum(TrafficDay.visitors), func.sum(TrafficDay.paid_buyers), func.count(TrafficDay.id))
    visitors, buyers, rows = session.execute(select(*figures).where(*in_range, TrafficDay.item_id.is_(None))).one()
    total = [int(visitors), int(buyers)] if rows else None
    if by == "product":
        return _by_product(session, in_range), total
    key = {"day": TrafficDay.day, "channel": TrafficDay.platform, "store": TrafficDay.store}[by]
    query = select(key, *figures[:2]).where(*in_range, TrafficDay.item_id.is_(None)).group_by(key)
    grouped = {(k.isoformat() if isinstance(k, date) else k): [int(v), int(b)] for k, v, b in session.execute(query)}
    return grouped, total


def _by_product(session: Session, in_range: tuple) -> Traffic:
    rows = session.execute(
        select(TrafficDay.sku, func.sum(TrafficDay.visitors), func.sum(TrafficDay.paid_buyers))
        .where(*in_range, TrafficDay.item_id.is_not(None))
        .group_by(TrafficDay.sku)
    ).all()
    codes = [sku for sku, _, _ in rows if sku]
    products = set(session.scalars(select(Product.code).where(Product.code.in_(codes))))
    of_variant = dict(
        session.execute(
            select(Variant.code, Product.code)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.code.in_(codes))
        ).all()
    )
    grouped: Traffic = defaultdict(lambda: [0, 0])
    for sku, visitors, buyers in rows:
        product = sku if sku in products else of_variant.get(sku)
        grouped[product][0] += int(visitors)
        grouped[product][1] += int(buyers)
    return dict(grouped)
