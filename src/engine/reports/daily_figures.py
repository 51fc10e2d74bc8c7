"""The business half of the 日报表: the day's sales against the month's target, refunds, event sign-ups, overdue work.

- Sales and refunds follow sales.py's definitions, for the local day and by channel.
- The month's target is what the quarterly plan set for the day's month (targets_actuals.py). The report
  shows it whole and prorated evenly over the month's days: to date (target × day / days in the month).
- Event sign-ups (当天报名情况和最终审核结果): the ads_and_events cases whose sign-up or platform review
  was completed that day, with the review's result (pending while the review task is open).
- Overdue work: tasks open at the report's moment (the day's end, or now if earlier) and past their due
  time, longest overdue first, at most OVERDUE_SHOWN of them (the count covers all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.reports.sales import CENT, RATE, SalesBy, SalesRow, day_range, sales_report
from ecomflow.engine.reports.targets_actuals import month_days, month_target
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState

EVENTS_PROCESS = "ads_and_events"
SIGN_UP_STEP, REVIEW_STEP = "sign_up", "review_result"
OVERDUE_SHOWN = 200


@dataclass(frozen=True)
class SalesAgainstTarget:
    """The day's and the month-to-date GMV beside the month's target."""

    day: SalesRow
    month_to_date: SalesRow
    month_target: Decimal | None
    day_of_month: int
    days_in_month: int

    @property
    def target_to_date(self) -> Decimal | None:
        """Return the month's target prorated evenly to the report day."""
        if self.month_target is None:
            return None
        return (self.month_target * self.day_of_month / self.days_in_month).quantize(CENT, ROUND_HALF_UP)

    @property
    def day_target(self) -> Decimal | None:
        """Return the month's target spread evenly over its days."""
        if self.month_target is None:
            return None
        return (self.month_target / self.days_in_month).quantize(CENT, ROUND_HALF_UP)

    @property
    def month_attainment(self) -> Decimal | None:
        """Return month-to-date GMV / the month's whole target."""
        if not self.month_target:
            return None
        return (self.month_to_date.gmv / self.month_target).quantize(RATE, ROUND_HALF_UP)


@dataclass(frozen=True)
class EventSignup:
    """An event sign-up that moved on the day, and the platform's review result so far."""

    instance_id: str
    business_key: str
    event: str
    platform: str
    channel: str
    platform_reference: str | None
    signed_up_at: datetime | None
    result: str  # approved, rejected or pending
    reviewed_at: datetime | None


@dataclass(frozen=True)
class OverdueTask:
    """A task open and past due at the report's moment."""

    task_id: str
    process_key: str
    step_key: str
    role: str
    assignee: str | None
    due_at: datetime
    overdue_hours: Decimal


@dataclass(frozen=True)
class DailyFigures:
    """The business sections of one day's report."""

    sales: SalesAgainstTarget
    channels: list[SalesRow]
    refund_products: list[SalesRow]
    signups: list[EventSignup]
    overdue: list[OverdueTask]
    overdue_count: int


def sales_against_target(session: Session, *, day: date, timezone: str) -> SalesAgainstTarget:
    """Return the day's GMV and the month's so far, beside the month's target."""
    first, last = month_days(day.strftime("%Y-%m"))
    today = sales_report(session, first=day, last=day, timezone=timezone, by=SalesBy.CHANNEL).total
    to_date = sales_report(session, first=first, last=day, timezone=timezone, by=SalesBy.CHANNEL).total
    return SalesAgainstTarget(
        day=today,
        month_to_date=to_date,
        month_target=month_target(session, day.strftime("%Y-%m")),
        day_of_month=day.day,
        days_in_month=last.day,
    )


def event_signups(session: Session, *, start: datetime, end: datetime) -> list[EventSignup]:
    """Return the ads_and_events cases signed up or reviewed in [start, end), with their latest review result."""
    moved = (
        select(HumanTask.instance_id)
        .where(
            HumanTask.process_key == EVENTS_PROCESS,
            HumanTask.step_key.in_((SIGN_UP_STEP, REVIEW_STEP)),
            HumanTask.state == TaskState.COMPLETED,
            HumanTask.completed_at >= start,
            HumanTask.completed_at < end,
        )
        .distinct()
    )
    tasks = session.execute(
        select(HumanTask, ProcessInstance.business_key)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(HumanTask.instance_id.in_(moved), HumanTask.step_key.in_((SIGN_UP_STEP, REVIEW_STEP)))
        .order_by(HumanTask.instance_id, HumanTask.round, HumanTask.created_at)
    ).all()
    by_instance: dict[str, dict[str, Any]] = {}
    for task, business_key in tasks:
        # The latest round of each step wins: a re-signed-up case shows its last sign-up and review.
        by_instance.setdefault(task.instance_id, {"business_key": business_key})[task.step_key] = task
    signups = []
    for instance_id, found in by_instance.items():
        sign_up, review = found.get(SIGN_UP_STEP), found.get(REVIEW_STEP)
        selection = ((sign_up or review).context or {}).get("selection") or {}
        done_review = review is not None and review.state == TaskState.COMPLETED
        signups.append(
            EventSignup(
                instance_id=instance_id,
                business_key=found["business_key"],
                event=str(selection.get("event", "")),
                platform=str(selection.get("platform", "")),
                channel=str(selection.get("channel", "")),
                platform_reference=((sign_up.output or {}).get("platform_reference") if sign_up else None),
                signed_up_at=sign_up.completed_at if sign_up else None,
                result=str((review.output or {}).get("result", "pending")) if done_review else "pending",
                reviewed_at=review.completed_at if done_review else None,
            )
        )
    return sorted(signups, key=lambda s: (s.signed_up_at is None, s.signed_up_at, s.business_key))


def _open_at(as_of: datetime) -> Any:
    not_ended = or_(
        HumanTask.completed_at >= as_of,
        and_(HumanTask.completed_at.is_(None), HumanTask.state.in_(sorted(ACTIVE_STATES))),
    )
    return and_(HumanTask.created_at < as_of, not_ended, HumanTask.due_at < as_of)


def overdue_work(session: Session, *, as_of: datetime) -> tuple[list[OverdueTask], int]:
    """Return the tasks open and past due at as_of (longest overdue first, at most OVERDUE_SHOWN) and their count."""
    count = session.scalar(select(func.count()).select_from(HumanTask).where(_open_at(as_of))) or 0
    rows = session.scalars(
        select(HumanTask).where(_open_at(as_of)).order_by(HumanTask.due_at, HumanTask.id).limit(OVERDUE_SHOWN)
    ).all()
    return [
        OverdueTask(
            task_id=t.id,
            process_key=t.process_key,
            step_key=t.step_key,
            role=t.role,
            assignee=t.assignee,
            due_at=t.due_at,
            overdue_hours=(Decimal((as_of - t.due_at).total_seconds()) / 3600).quantize(Decimal("0.1"), ROUND_HALF_UP),
        )
        for t in rows
    ], count


def build_daily_figures(session: Session, *, day: date, timezone: str, now: datetime) -> DailyFigures:
    """Compute the business sections of a local day's report."""
    start, end = day_range(day, day, ZoneInfo(timezone))
    overdue, overdue_count = overdue_work(session, as_of=min(end, now))
    refunds = sales_report(session, first=day, last=day, timezone=timezone, by=SalesBy.PRODUCT)
    return DailyFigures(
        sales=sales_against_target(session, day=day, timezone=timezone),
        channels=sales_report(session, first=day, last=day, timezone=timezone, by=SalesBy.CHANNEL).rows,
        refund_products=[row for row in refunds.rows if row.refunds],
        signups=event_signups(session, start=start, end=end),
        overdue=overdue,
        overdue_count=overdue_count,
    )
