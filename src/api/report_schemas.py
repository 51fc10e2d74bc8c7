"""Response bodies of the reports API (GET /reports/kpi)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DurationPercentilesOut(BaseModel):
    """Durations of the done tasks, in seconds; null when no task was done."""

    p50: float | None = Field(description="median, by linear interpolation")
    p90: float | None = Field(description="90th percentile, by linear interpolation")


class KpiRowOut(BaseModel):
    """The KPIs of one person, role or process, or of everyone (the total row)."""

    key: str = Field(description="the person's name, the role key or the process key; 'total' for the total row")
    done: int = Field(description="tasks completed in the range (a person's: those they completed)")
    cycle_seconds: DurationPercentilesOut = Field(description="created → completed")
    queue_seconds: DurationPercentilesOut = Field(description="created → first claim or assignment")
    claimed_seconds: DurationPercentilesOut = Field(
        description="first → last claim, assignment or delegation (hand-overs, releases, re-claims)",
    )
    working_seconds: DurationPercentilesOut = Field(description="last claim, assignment or delegation → completed")
    on_time_rate: float | None = Field(
        description="share of done tasks with a due time completed by it; null when none had one"
    )
    rework_rate: float | None = Field(description="share of done tasks in round 2 or later (redone after a reject)")
    open: int = Field(description="tasks created and not ended at as_of (a person's: those they hold now)")
    overdue: int = Field(description="of the open tasks, those past their due time at as_of")


class KpiReportOut(BaseModel):
    """KPIs over [start, end) per group, with a total row; managers see every group, others their own row."""

    start: datetime
    end: datetime
    as_of: datetime = Field(description="the moment open and overdue are counted at: the earlier of end and now")
    timezone: str = Field(description="the team's time zone, in which dates given as YYYY-MM-DD were read")
    group_by: str = Field(description="person, role or process")
    rows: list[KpiRowOut]
    total: KpiRowOut = Field(
        description="everyone's tasks together, unassigned open ones included (for a non-manager: their own row again)",
    )


class SalesRowOut(BaseModel):
    """One day's, product's, channel's or store's sales facts; money as exact decimal strings (CNY)."""

    key: str | None = Field(description="YYYY-MM-DD, product code, platform or shop; null: no product or shop known")
    label: str | None = Field(description="the product's title; the key again for channels and stores")
    gmv: str = Field(description="paid_amount of the orders paid in the period, cancelled ones left out")
    paid_orders: int
    buyers: int = Field(description="distinct buyer nicks among the paid orders")
    aov: str | None = Field(description="GMV / paid orders, to the cent half up; null without orders")
    refund_amount: str = Field(description="refunds with status refunded, on the day they completed")
    refunds: int
    refund_rate: str | None = Field(description="refund amount / GMV, to 0.0001; null without GMV")
    visitors: int | None = Field(
        default=None, description="生意参谋 访客数 summed over the days; null where no traffic was imported"
    )
    paying_buyers: int | None = Field(default=None, description="生意参谋 支付买家数 of the same rows")
    conversion: str | None = Field(
        default=None, description="paying_buyers / visitors (支付转化率), to 0.0001; null without visitors"
    )


class SalesReportOut(BaseModel):
    """Sales facts of the local days from..to (inclusive), in the team's time zone."""

    first: str
    last: str
    timezone: str
    by: str = Field(description="day, product, channel or store")
    rows: list[SalesRowOut]
    total: SalesRowOut


class TargetLineOut(BaseModel):
    """A month's or department's revenue target beside its actual GMV; money as decimal strings (CNY)."""

    key: str = Field(description="YYYY-MM for a month, the role key for a department, 'total' for the quarter")
    target: str | None = Field(description="what the quarterly plan set; null when no plan set one")
    actual: str = Field(description="GMV (as /reports/sales); a department's is the quarter's GMV × its target share")
    gap: str | None = Field(description="actual − target; negative when short")
    attainment: str | None = Field(description="actual / target, to 0.0001")


class TargetsOut(BaseModel):
    """A quarter's targets against its actuals, counted up to as_of."""

    quarter: str
    as_of: str
    plan_instance_id: str | None = Field(description="the quarterly plan whose targets these are (the newest)")
    months: list[TargetLineOut]
    departments: list[TargetLineOut]
    total: TargetLineOut


class CustomerServiceKpisOut(BaseModel):
    """Inquiries answered in the range (each presales case's last answer) and how fast they were answered."""

    inquiries: int
    ordered: int
    conversion: str | None = Field(description="ordered / inquiries, to 0.0001; null without inquiries")
    first_response_p50_seconds: float | None = Field(description="answer_inquiry created → completed, median")
    first_response_p90_seconds: float | None


class WarehouseKpisOut(BaseModel):
    """Orders paid in the range whose dispatch promise ran out by as_of, or that shipped."""

    due: int
    within_promise: int
    not_shipped: int = Field(description="due and not shipped at as_of")
    dispatch_rate: str | None = Field(description="within_promise / due, to 0.0001; null when none is due")


class AdRoiOut(BaseModel):
    """A plan's, a channel's (plan null) or all ads' (both null) spend, attributed GMV and ROI."""

    source: str | None = Field(description="ztc (直通车) or zz (钻展)")
    plan: str | None
    impressions: int
    clicks: int
    spend: str
    gmv: str = Field(description="总成交金额 as the platform attributes it")
    roi: str | None = Field(description="gmv / spend, to 0.01; null without spend")


class EventRoiOut(BaseModel):
    """An approved campaign that ended in the range: its SKUs' GMV in its window over its approved budget."""

    campaign_id: int
    theme: str
    starts_on: str
    ends_on: str
    skus: list[str]
    platforms: list[str] = Field(description="the imported platforms its orders are counted on")
    gmv: str
    cost: str = Field(description="the budget the campaign was approved with")
    roi: str | None = Field(description="gmv / cost, to 0.01; null when the cost is 0")


class PromotionKpisOut(BaseModel):
    """ROI of the ads (直通车/钻展 imports) per plan, channel and in total, and of the events that ended."""

    ads: list[AdRoiOut]
    channels: list[AdRoiOut]
    ads_total: AdRoiOut
    events: list[EventRoiOut]


class CreativeCtrOut(BaseModel):
    """An approved creative's clicks and impressions as the ad creative it ran as (all linked ones: ids null)."""

    creative_id: int | None
    title: str | None
    ad_creative_id: str | None
    impressions: int
    clicks: int
    ctr: str | None = Field(description="clicks / impressions, to 0.0001; null without impressions")


class VisualKpisOut(BaseModel):
    """Click-through of the approved creatives linked to an ad creative."""

    creatives: list[CreativeCtrOut]
    total: CreativeCtrOut
    unlinked: int = Field(description="approved creatives with no ad creative id: not counted")


class RoleKpisOut(BaseModel):
    """KPIs per role computed from the data over the local days first..last."""

    first: str
    last: str
    as_of: datetime
    customer_service: CustomerServiceKpisOut
    warehouse: WarehouseKpisOut
    promotion: PromotionKpisOut
    visual: VisualKpisOut
    left_out: dict[str, str] = Field(description="roles whose KPIs need data not imported yet, and why")
