"""KPIs per role computed from the data (KPI必须科学化), beside the task KPIs; nothing here is typed in.

- Customer service: inquiry → order conversion = presales_order cases whose answer_inquiry (its last
  round) was completed in [start, end) with outcome ordered / all such cases; first-response time =
  answer_inquiry created → completed, p50 and p90 in seconds, over the same tasks.
- Warehouse: dispatch within the promise = orders paid in [start, end) (sales.py's counting) shipped
  (their first platform_order_events row of type shipped) within the promise after payment / those
  orders whose promise has run out by as_of or that shipped. The promise is the strictest
  dispatch_within_hours among the order's SKUs' live listings, DEFAULT_PROMISE_HOURS without one.
- Promotion (ROI of events and ads) and visual (click-through of approved creatives) come from the
  imported 直通车/钻展 reports and the orders: see ad_kpis.py for what each counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, VariantListing
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderEvent, PlatformOrderLine
from ecomflow.engine.reports.kpi import Percentiles, percentiles
from ecomflow.engine.reports.sales import RATE, counted_orders
from ecomflow.engine.tasks.states import TaskState

INQUIRY_PROCESS, INQUIRY_STEP = "presales_order", "answer_inquiry"
SHIPPED_EVENT = "shipped"
DEFAULT_PROMISE_HOURS = 48


def _rate(part: int, whole: int) -> Decimal | None:
    return None if not whole else (Decimal(part) / whole).quantize(RATE, ROUND_HALF_UP)


@dataclass(frozen=True)
class CustomerServiceKpis:
    """Inquiry → order conversion and first-response time of the inquiries answered in the range."""

    inquiries: int
    ordered: int
    first_response_seconds: Percentiles

    @property
    def conversion(self) -> Decimal | None:
        return _rate(self.ordered, self.inquiries)


@dataclass(frozen=True)
class WarehouseKpis:
    """Orders paid in the range that are due (promise run out) or shipped, and those shipped within it."""

    due: int
    within_promise: int
    not_shipped: int

    @property
    def dispatch_rate(self) -> Decimal | None:
        return _rate(self.within_promise, self.due)


def customer_service_kpis(session: Session, *, start: datetime, end: datetime) -> CustomerServiceKpis:
    """Compute conversion and first-response time from the answer_inquiry tasks completed in [start, end)."""
    rows = session.execute(
        select(HumanTask.instance_id, HumanTask.round, HumanTask.created_at, HumanTask.completed_at, HumanTask.output)
        .where(
            HumanTask.process_key == INQUIRY_PROCESS,
            HumanTask.step_key == INQUIRY_STEP,
            HumanTask.state == TaskState.COMPLETED,
            HumanTask.completed_at >= start,
            HumanTask.completed_at < end,
        )
        .order_by(HumanTask.instance_id, HumanTask.round)
    ).all()
    last_answer: dict[str, Any] = {}
    for row in rows:
        last_answer[row.instance_id] = row  # ordered by round: the last answer of each case wins
    ordered = sum(1 for row in last_answer.values() if (row.output or {}).get("outcome") == "ordered")
    return CustomerServiceKpis(
        inquiries=len(last_answer),
        ordered=ordered,
        first_response_seconds=percentiles((r.completed_at - r.created_at).total_seconds() for r in rows),
    )


def warehouse_kpis(session: Session, *, start: datetime, end: datetime, as_of: datetime) -> WarehouseKpis:
    """Compute the share of the range's paid orders shipped within their dispatch promise."""
    shipped = (
        select(PlatformOrderEvent.order_id, func.min(PlatformOrderEvent.at).label("at"))
        .where(PlatformOrderEvent.type == SHIPPED_EVENT)
        .group_by(PlatformOrderEvent.order_id)
        .subquery()
    )
    promise = (
        select(PlatformOrderLine.order_id, func.min(VariantListing.dispatch_within_hours).label("hours"))
        .join(VariantListing, VariantListing.sku == PlatformOrderLine.sku)
        .group_by(PlatformOrderLine.order_id)
        .subquery()
    )
    orders = session.execute(
        select(PlatformOrder.paid_at, shipped.c.at, promise.c.hours)
        .outerjoin(shipped, shipped.c.order_id == PlatformOrder.id)
        .outerjoin(promise, promise.c.order_id == PlatformOrder.id)
        .where(counted_orders(start, end))
    ).all()
    due = within = not_shipped = 0
    for paid_at, shipped_at, hours in orders:
        deadline = paid_at + timedelta(hours=hours or DEFAULT_PROMISE_HOURS)
        if shipped_at is None and deadline > as_of:
            continue  # still inside its promise: neither kept nor broken yet
        due += 1
        if shipped_at is None:
            not_shipped += 1
        elif shipped_at <= deadline:
            within += 1
    return WarehouseKpis(due=due, within_promise=within, not_shipped=not_shipped)
