"""Promotion's ROI (ads, events) and visual's CTR, each against a hand computation in Decimal.

The ad figures come from generated 直通车/钻展 files imported through the real import path; the hand side
reads the same files with the csv module. The event's GMV is computed from the generated order objects.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from ecomflow.engine.db.models import Campaign, Creative
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import importer
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.engine.reports.ad_kpis import promotion_kpis, visual_kpis
from ecomflow.sample_exports import write_export
from ecomflow.sample_figures import creative_id
from tests.engine.reports.order_set import counts, generate, insert
from tests.factories import make_instance

pytestmark = pytest.mark.usefixtures("clean_db")
FIRST, LAST = date(2026, 11, 1), date(2026, 11, 4)
CENT, ROI, RATE = Decimal("0.01"), Decimal("0.01"), Decimal("0.0001")


def import_ads(tmp_path: Path, source: str, count: int, *, name: str | None = None) -> list[dict[str, str]]:
    path = tmp_path / (name or f"{source}.csv")
    if name is None:
        write_export("ads", "tmall", path, count=count, ad_source=source)
    importer.import_file("ads", path, load_mapping("tmall"), actor="promo-1", ad_source=source)
    with path.open(encoding="gbk", newline="") as file:
        return [row | {"source": source} for row in csv.DictReader(file)]


def hand_rois(rows: list[dict[str, str]]) -> dict[tuple, list]:
    """(source, plan) and (source,) and () → [impressions, clicks, spend, gmv] over the days FIRST..LAST."""
    sums: dict[tuple, list] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for row in rows:
        if not FIRST <= date.fromisoformat(row["日期"]) <= LAST:
            continue
        spend = Decimal(row.get("花费") or row["消耗"])
        gmv = Decimal(row.get("总成交金额") or row["成交金额"])
        for key in ((row["source"], row["计划名称"]), (row["source"],), ()):
            figures = sums[key]
            figures[0] += int(row["展现量"])
            figures[1] += int(row["点击量"])
            figures[2] += spend
            figures[3] += gmv
    return sums


def roi(gmv: Decimal, spend: Decimal) -> str | None:
    return None if not spend else str((gmv / spend).quantize(ROI, ROUND_HALF_UP))


class TestAdRoi:
    def test_roi_per_plan_channel_and_total_is_gmv_over_spend_of_the_days(self, tmp_path: Path) -> None:
        # 3 ztc plans and 2 zz plans a day over 6 days: days 5 and 6 fall outside the range.
        rows = import_ads(tmp_path, "ztc", 18) + import_ads(tmp_path, "zz", 12)
        hand = hand_rois(rows)
        with session_scope() as session:
            kpis = promotion_kpis(session, first=FIRST, last=LAST, timezone="Asia/Shanghai")
        found = {(r.source, r.plan): r for r in kpis.ads}
        assert set(found) == {key for key in hand if len(key) == 2}
        for key, row in found.items():
            impressions, clicks, spend, gmv = hand[key]
            assert (row.impressions, row.clicks, row.spend, row.gmv) == (impressions, clicks, spend, gmv)
            assert (None if row.roi is None else str(row.roi)) == roi(gmv, spend)
        assert {r.source: (r.spend, r.gmv) for r in kpis.channels} == {
            s: (hand[(s,)][2], hand[(s,)][3]) for s in ("ztc", "zz")
        }
        total = kpis.ads_total
        assert (total.spend, total.gmv, str(total.roi)) == (hand[()][2], hand[()][3], roi(hand[()][3], hand[()][2]))

    def test_a_plans_own_row_counts_and_its_creatives_rows_of_that_day_do_not(self, tmp_path: Path) -> None:
        path = tmp_path / "plan-and-creatives.csv"
        path.write_text(
            "日期,计划名称,创意ID,展现量,点击量,花费,总成交金额\r\n"
            "2026-11-02,爆款卫衣,,1000,40,80.00,300.00\r\n"
            "2026-11-02,爆款卫衣,C1,600,25,50.00,200.00\r\n"
            "2026-11-02,爆款卫衣,C2,400,15,30.00,100.00\r\n"
            "2026-11-03,爆款卫衣,C1,500,10,20.00,70.00\r\n",
            encoding="gbk",
        )
        import_ads(tmp_path, "ztc", 0, name=path.name)
        with session_scope() as session:
            (plan,) = promotion_kpis(session, first=FIRST, last=LAST, timezone="Asia/Shanghai").ads
        # 11-02: the plan row (80.00 / 300.00); 11-03 has only a creative's row (20.00 / 70.00).
        assert (plan.impressions, plan.clicks, plan.spend, plan.gmv) == (1500, 50, Decimal("100.00"), Decimal("370.00"))
        assert plan.roi == Decimal("3.70")


class TestEventRoi:
    def test_an_events_gmv_is_its_skus_share_of_the_windows_orders_over_its_budget(self) -> None:
        orders = generate(18, first=date(2026, 11, 1), days=20, orders=400)
        insert(orders)
        events = [
            # An ads_and_events event on JD (event prices for one SKU, the rest candidates).
            (
                "双11 京东",
                "2026-11-03",
                "2026-11-09",
                Decimal("2500.00"),
                {"platform": "jd", "kind": "event"},
                {"TEA-100"},
                {"CUP-S", "POT-1"},
            ),
            # A themed campaign on several channels: only the imported ones (tmall/taobao → tmall, jd) count.
            (
                "冬季上新",
                "2026-11-05",
                "2026-11-15",
                Decimal("0.00"),
                {"channels": ["taobao", "jd", "douyin"]},
                {"CUP-L"},
                set(),
            ),
        ]
        with session_scope() as session:
            for theme, starts, ends, budget, details, priced, candidates in events:
                instance = make_instance(process="ads_and_events", params={})
                session.add(
                    Campaign(
                        instance_id=instance,
                        theme=theme,
                        starts_on=starts,
                        ends_on=ends,
                        budget=budget,
                        details=details
                        | {
                            "skus": [{"sku": s, "online_price": 9.9} for s in priced],
                            "candidate_skus": sorted(candidates),
                        },
                    )
                )
        with session_scope() as session:
            found = promotion_kpis(session, first=date(2026, 11, 9), last=date(2026, 11, 30), timezone="Asia/Shanghai")
        by_theme = {e.theme: e for e in found.events}
        for theme, starts, ends, budget, details, priced, candidates in events:
            skus = priced | candidates
            platforms = {"jd"} if details.get("platform") == "jd" else {"tmall", "jd"}
            gmv = Decimal(0)
            for order in orders:
                if order.platform not in platforms or not counts(
                    order, date.fromisoformat(starts), date.fromisoformat(ends)
                ):
                    continue
                value = sum((line.price * line.quantity for line in order.lines), Decimal(0))
                for line in order.lines:
                    if line.sku in skus and value > 0:
                        gmv += (order.paid_amount * line.price * line.quantity / value).quantize(CENT, ROUND_HALF_UP)
            event = by_theme[theme]
            assert (event.gmv, event.cost, set(event.skus)) == (gmv, budget, skus)
            assert event.roi == (None if not budget else (gmv / budget).quantize(ROI, ROUND_HALF_UP))
        assert by_theme["双11 京东"].gmv > 0  # the set has such orders: the comparison is not of two zeros
        # An event that ended before the range is not one of its events.
        with session_scope() as session:
            earlier = promotion_kpis(
                session, first=date(2026, 11, 10), last=date(2026, 11, 30), timezone="Asia/Shanghai"
            )
        assert [e.theme for e in earlier.events] == ["冬季上新"]


class TestCreativeCtr:
    def test_ctr_is_clicks_over_impressions_of_the_linked_creatives_in_the_range(self, tmp_path: Path) -> None:
        rows = import_ads(tmp_path, "ztc", 18)  # plan n's creative is creative_id(n) every day
        with session_scope() as session:
            for n, ad_id in enumerate([creative_id(0), creative_id(2), None]):
                session.add(
                    Creative(
                        instance_id=make_instance(process="promo_image_design", params={}),
                        process_key="promo_image_design",
                        title=f"主图{n}",
                        ad_creative_id=ad_id,
                        approved_by="promo-1",
                        approved_at=datetime(2026, 11, 1, tzinfo=UTC),
                    )
                )
        with session_scope() as session:
            kpis = visual_kpis(session, first=FIRST, last=LAST)
        hand: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in rows:
            if FIRST <= date.fromisoformat(row["日期"]) <= LAST:
                hand[row["创意ID"]][0] += int(row["展现量"])
                hand[row["创意ID"]][1] += int(row["点击量"])
        for creative in kpis.creatives:
            impressions, clicks = hand[creative.ad_creative_id]
            assert (creative.impressions, creative.clicks) == (impressions, clicks)
            assert creative.ctr == (Decimal(clicks) / impressions).quantize(RATE, ROUND_HALF_UP)
        assert [c.ad_creative_id for c in kpis.creatives] == [creative_id(0), creative_id(2)]
        shown = [hand[creative_id(0)], hand[creative_id(2)]]
        total_impressions, total_clicks = sum(s[0] for s in shown), sum(s[1] for s in shown)
        assert (kpis.total.impressions, kpis.total.clicks) == (total_impressions, total_clicks)
        assert kpis.total.ctr == (Decimal(total_clicks) / total_impressions).quantize(RATE, ROUND_HALF_UP)
        assert kpis.unlinked == 1
