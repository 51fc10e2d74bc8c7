"""Promotion's and visual's KPIs from the imported ad reports and orders: ROI of ads and events, CTR of creatives.

What is counted, over the local days first..last:
- Ad ROI (投入产出比) = attributed GMV / spend, per channel (ztc 直通车, zz 钻展) and plan, and in total, from
  ad_daily. The GMV is the platform's 总成交金额 as imported (its attribution window, not ours). A plan's day
  counts once: its plan-level row where one was imported, else the sum of its creatives' rows (a 创意 report),
  so importing both reports of a day does not count it twice. To 0.01, half up; None without spend.
- Event ROI = GMV of the event's SKUs during its window / its cost. Events are the approved campaigns
  (themed campaigns and ads_and_events events) whose last day falls in first..last. The GMV is that of the
  orders counted as sales (sales.counted_orders: paid in the window, not cancelled unless closed by a refund)
  paid from the first day's 00:00 to the last day's 24:00 local time, on the campaign's platforms (tmall and
  taobao are the tmall exports, jd is jd; other channels have no imports and add nothing); of each such order
  the share of its paid amount that its lines of the event's SKUs hold by line value (price × quantity), each
  share rounded to the cent half up, as sales by product does. The cost is the budget the campaign was
  approved with (campaigns.budget); ROI None when it is 0.
- Creative CTR (点击率) = clicks / impressions of the approved creatives linked to an ad creative
  (creatives.ad_creative_id = ad_daily.creative_id), per creative and in total, to 0.0001; None without
  impressions. Creatives without a link are counted apart (unlinked), never guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import Campaign, Creative
from ecomflow.engine.db.platform_models import AdDay, PlatformOrder, PlatformOrderLine
from ecomflow.engine.reports.sales import CENT, RATE, counted_orders, day_range

ROI_PLACES = Decimal("0.01")
ZERO = Decimal("0.00")
# The platforms a campaign names → the imports that hold their orders (Taobao's are in the Tmall exports).
IMPORTED_PLATFORM = {"tmall": "tmall", "taobao": "tmall", "jd": "jd"}


def _ratio(part: Decimal | int, whole: Decimal | int, places: Decimal) -> Decimal | None:
    return None if not whole else (Decimal(part) / Decimal(whole)).quantize(places, ROUND_HALF_UP)


@dataclass(frozen=True)
class AdRoi:
    """One plan's (or a channel's, or the total's) spend, attributed GMV and their ratio."""

    source: str | None
    plan: str | None
    impressions: int
    clicks: int
    spend: Decimal
    gmv: Decimal

    @property
    def roi(self) -> Decimal | None:
        return _ratio(self.gmv, self.spend, ROI_PLACES)


@dataclass(frozen=True)
class EventRoi:
    """One campaign's window, SKUs, attributed GMV, cost (its approved budget) and their ratio."""

    campaign_id: int
    theme: str
    starts_on: str
    ends_on: str
    skus: tuple[str, ...]
    platforms: tuple[str, ...]
    gmv: Decimal
    cost: Decimal

    @property
    def roi(self) -> Decimal | None:
        return _ratio(self.gmv, self.cost, ROI_PLACES)


@dataclass(frozen=True)
class CreativeCtr:
    """An approved creative's impressions and clicks as the ad creative it ran as."""

    creative_id: int | None
    title: str | None
    ad_creative_id: str | None
    impressions: int
    clicks: int

    @property
    def ctr(self) -> Decimal | None:
        return _ratio(self.clicks, self.impressions, RATE)


@dataclass(frozen=True)
class PromotionKpis:
    ads: list[AdRoi]
    channels: list[AdRoi]
    ads_total: AdRoi
    events: list[EventRoi]


@dataclass(frozen=True)
class VisualKpis:
    creatives: list[CreativeCtr]
    total: CreativeCtr
    unlinked: int


def ad_rois(session: Session, *, first: date, last: date) -> tuple[list[AdRoi], list[AdRoi], AdRoi]:
    """Return ROI per (channel, plan), per channel and in total over the days first..last."""
    rows = session.execute(
        select(
            AdDay.source,
            AdDay.day,
            AdDay.store,
            AdDay.plan,
            AdDay.creative_id,
            AdDay.impressions,
            AdDay.clicks,
            AdDay.spend,
            AdDay.gmv,
        ).where(AdDay.day >= first, AdDay.day <= last)
    ).all()
    plan_days: dict[tuple, list] = {}
    has_plan_row = {(r.source, r.day, r.store, r.plan) for r in rows if r.creative_id is None}
    for r in rows:
        key = (r.source, r.day, r.store, r.plan)
        if r.creative_id is not None and key in has_plan_row:
            continue  # the plan's own row already holds its creatives
        figures = plan_days.setdefault(key, [0, 0, ZERO, ZERO])
        figures[0] += r.impressions
        figures[1] += r.clicks
        figures[2] += Decimal(r.spend).quantize(CENT)
        figures[3] += Decimal(r.gmv).quantize(CENT)
    by_plan: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, ZERO, ZERO])
    by_source: dict[str, list] = defaultdict(lambda: [0, 0, ZERO, ZERO])
    total = [0, 0, ZERO, ZERO]
    for (source, _, _, plan), figures in plan_days.items():
        for target in (by_plan[(source, plan)], by_source[source], total):
            for n in range(4):
                target[n] += figures[n]
    plans = [AdRoi(source, plan, *by_plan[(source, plan)]) for source, plan in sorted(by_plan)]
    channels = [AdRoi(source, None, *by_source[source]) for source in sorted(by_source)]
    return plans, channels, AdRoi(None, None, *total)


def event_rois(session: Session, *, first: date, last: date, timezone: str) -> list[EventRoi]:
    """Return the ROI of each approved campaign that ended in first..last."""
    zone = ZoneInfo(timezone)
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.ends_on >= first.isoformat(), Campaign.ends_on <= last.isoformat())
        .order_by(Campaign.ends_on, Campaign.id)
    ).all()
    return [_event_roi(session, campaign, zone) for campaign in campaigns]


def _event_roi(session: Session, campaign: Campaign, zone: ZoneInfo) -> EventRoi:
    details = campaign.details or {}
    skus = {line["sku"] for line in details.get("skus") or [] if line.get("sku")}
    skus |= set(details.get("candidate_skus") or [])
    named = [details["platform"]] if details.get("platform") else list(details.get("channels") or [])
    platforms = sorted({IMPORTED_PLATFORM[p] for p in named if p in IMPORTED_PLATFORM})
    start, end = day_range(date.fromisoformat(campaign.starts_on), date.fromisoformat(campaign.ends_on), zone)
    gmv_cents = 0
    if skus and platforms:
        orders = (
            select(PlatformOrder.id, PlatformOrder.paid_amount)
            .where(counted_orders(start, end), PlatformOrder.platform.in_(platforms))
            .where(
                PlatformOrder.id.in_(select(PlatformOrderLine.order_id).where(PlatformOrderLine.sku.in_(sorted(skus))))
            )
        )
        paid = {order_id: _cents(amount) for order_id, amount in session.execute(orders)}
        lines = session.execute(
            select(
                PlatformOrderLine.order_id, PlatformOrderLine.sku, PlatformOrderLine.price, PlatformOrderLine.quantity
            ).where(PlatformOrderLine.order_id.in_(list(paid)))
        ).all()
        value: dict[int, int] = defaultdict(int)
        for line in lines:
            value[line.order_id] += _cents(line.price) * line.quantity
        for line in lines:
            if line.sku in skus and value[line.order_id] > 0:
                share, whole = paid[line.order_id] * _cents(line.price) * line.quantity, value[line.order_id]
                gmv_cents += (2 * share + whole) // (2 * whole)  # round(share / whole), half up
    return EventRoi(
        campaign_id=campaign.id,
        theme=campaign.theme,
        starts_on=campaign.starts_on,
        ends_on=campaign.ends_on,
        skus=tuple(sorted(skus)),
        platforms=tuple(platforms),
        gmv=(Decimal(gmv_cents) / 100).quantize(CENT),
        cost=Decimal(campaign.budget).quantize(CENT),
    )


def _cents(amount: Decimal | float) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), ROUND_HALF_UP))


def promotion_kpis(session: Session, *, first: date, last: date, timezone: str) -> PromotionKpis:
    """Compute ad ROI (per plan, channel and in total) and event ROI over the local days first..last."""
    plans, channels, total = ad_rois(session, first=first, last=last)
    return PromotionKpis(plans, channels, total, event_rois(session, first=first, last=last, timezone=timezone))


def visual_kpis(session: Session, *, first: date, last: date) -> VisualKpis:
    """Compute the CTR of the approved creatives linked to an ad creative, over the ad days first..last."""
    linked = session.execute(
        select(Creative.id, Creative.title, Creative.ad_creative_id)
        .where(Creative.ad_creative_id.is_not(None))
        .order_by(Creative.id)
    ).all()
    unlinked = session.scalar(select(func.count()).where(Creative.ad_creative_id.is_(None))) or 0
    ids = sorted({row.ad_creative_id for row in linked})
    figures = {
        creative_id: (int(impressions or 0), int(clicks or 0))
        for creative_id, impressions, clicks in session.execute(
            select(AdDay.creative_id, func.sum(AdDay.impressions), func.sum(AdDay.clicks))
            .where(AdDay.creative_id.in_(ids), AdDay.day >= first, AdDay.day <= last)
            .group_by(AdDay.creative_id)
        )
    }
    creatives = [
        CreativeCtr(row.id, row.title, row.ad_creative_id, *figures.get(row.ad_creative_id, (0, 0))) for row in linked
    ]
    # Two creatives linked to one ad creative share its figures: the total counts them once.
    counted = {c.ad_creative_id: (c.impressions, c.clicks) for c in creatives}
    total = CreativeCtr(None, None, None, sum(i for i, _ in counted.values()), sum(c for _, c in counted.values()))
    return VisualKpis(creatives=creatives, total=total, unlinked=unlinked)
