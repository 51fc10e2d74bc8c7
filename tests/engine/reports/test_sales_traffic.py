"""Visitors and conversion in the sales facts, from imported 生意参谋 files, against a hand computation."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from ecomflow.engine.db.models import Product, Variant
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import importer
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.engine.reports.sales import SalesBy, sales_report
from ecomflow.sample_exports import write_export

pytestmark = pytest.mark.usefixtures("clean_db")
FIRST, LAST = date(2026, 11, 2), date(2026, 11, 5)
RATE = Decimal("0.0001")


def imported(tmp_path: Path, kind: str, count: int) -> list[dict[str, str]]:
    path = tmp_path / f"{kind}.csv"
    write_export(kind, "tmall", path, count=count)
    importer.import_file("traffic", path, load_mapping("tmall"), actor="ops-1")
    with path.open(encoding="gbk", newline="") as file:
        return list(csv.DictReader(file))


def report(by: SalesBy):
    with session_scope() as session:
        return sales_report(session, first=FIRST, last=LAST, timezone="Asia/Shanghai", by=by)


def rate(buyers: int, visitors: int) -> Decimal:
    return (Decimal(buyers) / visitors).quantize(RATE, ROUND_HALF_UP)


class TestTrafficInSales:
    def test_each_day_and_the_total_carry_the_shops_visitors_and_conversion(self, tmp_path: Path) -> None:
        shop = imported(tmp_path, "traffic", 8)
        imported(tmp_path, "traffic_items", 16)  # items' rows never add to the shop's visitors
        hand = {
            r["统计日期"]: (int(r["访客数"].replace(",", "")), int(r["支付买家数"]))
            for r in shop
            if FIRST <= date.fromisoformat(r["统计日期"]) <= LAST
        }
        days = report(SalesBy.DAY)
        assert {row.key: (row.visitors, row.paying_buyers) for row in days.rows} == hand
        for row in days.rows:
            assert row.conversion == rate(hand[row.key][1], hand[row.key][0])
        visitors, buyers = sum(v for v, _ in hand.values()), sum(b for _, b in hand.values())
        assert (days.total.visitors, days.total.conversion) == (visitors, rate(buyers, visitors))
        store = report(SalesBy.STORE)
        assert [(r.key, r.visitors, r.gmv) for r in store.rows] == [("棉言旗舰店", visitors, Decimal("0.00"))]
        assert store.rows[0].as_dict()["conversion"] == str(rate(buyers, visitors))

    def test_products_take_their_items_rows_by_product_or_variant_code(self, tmp_path: Path) -> None:
        with session_scope() as session:
            for code in ("TEE", "HOODIE", "DOWN"):
                session.add(Product(code=code, title=f"{code} 标题", category="c", brand="b"))
            session.flush()
            down = session.query(Product).filter_by(code="DOWN").one()
            session.add(Variant(code="DOWN-S", product_id=down.id, attributes={}, list_price=Decimal("1.00")))
        items = imported(tmp_path, "traffic_items", 24)  # TEE, HOODIE, JEANS-SL, DOWN-S in turn over 6 days
        hand: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
        product_of = {"TEE": "TEE", "HOODIE": "HOODIE", "DOWN-S": "DOWN", "JEANS-SL": None}
        for r in items:
            if FIRST <= date.fromisoformat(r["统计日期"]) <= LAST:
                hand[product_of[r["商家编码"]]][0] += int(r["商品访客数"])
                hand[product_of[r["商家编码"]]][1] += int(r["支付买家数"])
        rows = report(SalesBy.PRODUCT).rows
        assert {r.key: [r.visitors, r.paying_buyers] for r in rows} == dict(hand)
        assert [r.key for r in rows] == ["DOWN", "HOODIE", "TEE", None]
        assert all(r.conversion == rate(hand[r.key][1], hand[r.key][0]) for r in rows)

    def test_without_traffic_the_figures_are_null_not_zero(self) -> None:
        days = report(SalesBy.DAY)
        assert all(row.visitors is None and row.conversion is None for row in days.rows)
        assert days.total.as_dict()["visitors"] is None
