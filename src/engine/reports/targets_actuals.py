"""Targets against actuals (PDCA's check): the quarterly plan's revenue targets beside the GMV sold.

- A quarter's targets are those of its newest quarterly plan that stored any (a re-plan replaces the old).
- A month's actual is its GMV (sales.py's definition); a month not begun has an actual of 0.
- Departments are not booked sales of their own: a department's actual is the quarter's GMV attributed
  by its share of the quarter's target (目标分解 in reverse), so its gap shows its share of the team's.
- Gap = actual − target (negative: short); attainment = actual / target, to 0.0001.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import KpiTarget, ProcessInstance
from ecomflow.engine.reports.sales import CENT, RATE, SalesBy, sales_report

_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$")


def parse_quarter(text: str) -> str:
    """Return a quarter as the plan stores it (2026-Q4) from 2026-Q4 or 2026Q4; ValueError otherwise."""
    match = _QUARTER.fullmatch(text.strip().upper())
    if match is None:
        raise ValueError(f"a quarter is written like 2026-Q4 or 2026Q4, not {text!r}")
    return f"{match.group(1)}-Q{match.group(2)}"


def quarter_months(quarter: str) -> list[str]:
    """Return the quarter's months as YYYY-MM."""
    year, number = int(quarter[:4]), int(quarter[-1])
    return [f"{year}-{month:02d}" for month in range(3 * number - 2, 3 * number + 1)]


def month_days(month: str) -> tuple[date, date]:
    """Return the first and last day of a YYYY-MM month."""
    year, number = int(month[:4]), int(month[5:7])
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


@dataclass(frozen=True)
class PlanTargets:
    """The revenue targets one quarterly plan stored: per month (YYYY-MM) and per department (role key)."""

    plan_instance_id: str
    quarter: str
    months: dict[str, Decimal]
    departments: dict[str, Decimal]


def plan_targets(session: Session, quarter: str) -> PlanTargets | None:
    """Return the targets of the quarter's newest plan, or None when no plan stored any."""
    newest = session.scalar(
        select(KpiTarget.plan_instance_id)
        .join(ProcessInstance, ProcessInstance.id == KpiTarget.plan_instance_id)
        .where(KpiTarget.quarter == quarter)
        .order_by(ProcessInstance.created_at.desc(), ProcessInstance.id.desc())
        .limit(1)
    )
    if newest is None:
        return None
    rows = session.scalars(select(KpiTarget).where(KpiTarget.plan_instance_id == newest)).all()
    return PlanTargets(
        plan_instance_id=newest,
        quarter=quarter,
        months={r.key: r.revenue for r in rows if r.scope == "month"},
        departments={r.key: r.revenue for r in rows if r.scope == "department"},
    )


def month_target(session: Session, month: str) -> Decimal | None:
    """Return the revenue target the plan set for a YYYY-MM month, or None."""
    quarter = f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"
    targets = plan_targets(session, quarter)
    return None if targets is None else targets.months.get(month)


@dataclass(frozen=True)
class TargetLine:
    """One month's or department's target beside its actual."""

    key: str
    target: Decimal | None
    actual: Decimal

    @property
    def gap(self) -> Decimal | None:
        return None if self.target is None else self.actual - self.target

    @property
    def attainment(self) -> Decimal | None:
        return None if not self.target else (self.actual / self.target).quantize(RATE, ROUND_HALF_UP)

    def as_dict(self) -> dict[str, Any]:
        """Return the line with money and rates as strings."""
        return {
            "key": self.key,
            "target": None if self.target is None else str(self.target),
            "actual": str(self.actual),
            "gap": None if self.gap is None else str(self.gap),
            "attainment": None if self.attainment is None else str(self.attainment),
        }


@dataclass(frozen=True)
class QuarterReview:
    """A quarter's targets against its actuals, as of a day (later days of the quarter count nothing yet)."""

    quarter: str
    as_of: date
    plan_instance_id: str | None
    months: list[TargetLine]
    departments: list[TargetLine]
    total: TargetLine

    def as_dict(self) -> dict[str, Any]:
        return {
            "quarter": self.quarter,
            "as_of": self.as_of.isoformat(),
            "plan_instance_id": self.plan_instance_id,
            "months": [m.as_dict() for m in self.months],
            "departments": [d.as_dict() for d in self.departments],
            "total": self.total.as_dict(),
        }


def _month_actual(session: Session, month: str, *, as_of: date, timezone: str) -> Decimal:
    first, last = month_days(month)
    if first > as_of:
        return Decimal("0.00")
    report = sales_report(session, first=first, last=min(last, as_of), timezone=timezone, by=SalesBy.CHANNEL)
    return report.total.gmv


def review_quarter(session: Session, *, quarter: str, as_of: date, timezone: str) -> QuarterReview:
    """Compare the quarter's monthly and departmental targets with the GMV sold up to as_of."""
    targets = plan_targets(session, quarter)
    months = [
        TargetLine(
            key=month,
            target=None if targets is None else targets.months.get(month),
            actual=_month_actual(session, month, as_of=as_of, timezone=timezone),
        )
        for month in quarter_months(quarter)
    ]
    actual = sum((m.actual for m in months), Decimal("0.00"))
    quarter_target = None if targets is None else sum(targets.months.values(), Decimal("0.00"))
    departments = []
    for key, target in (targets.departments if targets else {}).items():
        share = target / quarter_target if quarter_target else Decimal(0)
        departments.append(TargetLine(key=key, target=target, actual=(actual * share).quantize(CENT, ROUND_HALF_UP)))
    return QuarterReview(
        quarter=quarter,
        as_of=as_of,
        plan_instance_id=None if targets is None else targets.plan_instance_id,
        months=months,
        departments=departments,
        total=TargetLine(key="total", target=quarter_target, actual=actual),
    )
