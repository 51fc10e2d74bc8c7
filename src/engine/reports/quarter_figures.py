"""A past quarter's business figures for the next quarterly plan: sales against targets and the review's actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.reports.sales import SalesBy, sales_report
from ecomflow.engine.reports.targets_actuals import month_days, plan_targets, quarter_months, review_quarter
from ecomflow.engine.tasks.states import TaskState

REVIEW_STEP = "quarter_review"


def recorded_review(session: Session, quarter: str) -> dict[str, Any] | None:
    """Return the quarter-end review the owner recorded on the quarter's newest plan, or None (not yet, or none)."""
    targets = plan_targets(session, quarter)
    if targets is None:
        return None
    task = session.scalar(
        select(HumanTask)
        .where(
            HumanTask.instance_id == targets.plan_instance_id,
            HumanTask.step_key == REVIEW_STEP,
            HumanTask.state == TaskState.COMPLETED,
        )
        .order_by(HumanTask.round.desc())
        .limit(1)
    )
    if task is None:
        return None
    output = task.output or {}
    return {
        "plan_instance_id": targets.plan_instance_id,
        "by": task.completed_by,
        "at": task.completed_at.isoformat() if task.completed_at else None,
        "assessment": output.get("assessment"),
        "actions": output.get("actions", []),
    }


def quarter_sales_figures(session: Session, *, quarter: str, timezone: str) -> dict[str, Any]:
    """Return a quarter's sales: targets against actuals per month and department, the channels, and its review."""
    months = quarter_months(quarter)
    first, last = month_days(months[0])[0], month_days(months[-1])[1]
    channels = sales_report(session, first=first, last=last, timezone=timezone, by=SalesBy.CHANNEL)
    return {
        "quarter": quarter,
        "targets": review_quarter(session, quarter=quarter, as_of=last, timezone=timezone).as_dict(),
        "channels": [row.as_dict() for row in channels.rows],
        "total": channels.total.as_dict(),
        "review": recorded_review(session, quarter),
    }
