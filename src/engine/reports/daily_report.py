"""The daily report (日报表): one local day's sales against the month's target, refunds, event sign-ups and overdue
work (daily_figures.py), and the team's KPIs by person, role and process, as table rows and markdown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.lifecycle import get_instance
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.reports.daily_figures import DailyFigures, build_daily_figures
from ecomflow.engine.reports.daily_text import figures_markdown, figures_summary, sales_table_rows
from ecomflow.engine.reports.kpi import GroupBy, KpiReport, KpiRow, compute_kpis

REPORT_EVENT = "report.daily"
HEADINGS = {
    GroupBy.PERSON: "按人员 / By person",
    GroupBy.ROLE: "按角色 / By role",
    GroupBy.PROCESS: "按流程 / By process",
}
COLUMNS = (
    "完成 Done",
    "周期 Cycle p50 / p90 (h)",
    "排队 Queue p50 (h)",
    "认领 Claimed p50 (h)",
    "处理 Working p50 (h)",
    "准时率 On time",
    "返工率 Rework",
    "未完成 Open",
    "逾期 Overdue",
)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Return [start, end) of a local day, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start.astimezone(UTC), datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _shown_hours(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 3600:.1f}"


def _shown_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def _table_row(dimension: str, row: KpiRow) -> dict[str, Any]:
    return {
        "dimension": dimension,
        "key": row.key,
        "done": row.done,
        "cycle_p50_h": _hours(row.cycle.p50),
        "cycle_p90_h": _hours(row.cycle.p90),
        "queue_p50_h": _hours(row.queue.p50),
        "claimed_p50_h": _hours(row.claimed.p50),
        "working_p50_h": _hours(row.working.p50),
        "on_time_rate": row.on_time_rate,
        "rework_rate": row.rework_rate,
        "open": row.open,
        "overdue": row.overdue,
    }


def _markdown_line(label: str, row: KpiRow) -> str:
    cells = [
        label,
        str(row.done),
        f"{_shown_hours(row.cycle.p50)} / {_shown_hours(row.cycle.p90)}",
        _shown_hours(row.queue.p50),
        _shown_hours(row.claimed.p50),
        _shown_hours(row.working.p50),
        _shown_rate(row.on_time_rate),
        _shown_rate(row.rework_rate),
        str(row.open),
        str(row.overdue),
    ]
    return "| " + " | ".join(cells) + " |"


@dataclass(frozen=True)
class DailyReport:
    """One local day's business figures and KPIs by person, role and process."""

    day: date
    timezone: str
    sections: tuple[KpiReport, ...]
    figures: DailyFigures

    @property
    def total(self) -> KpiRow:
        """Return everyone's KPIs for the day (the same in every section)."""
        return self.sections[0].total

    def table_rows(self) -> list[dict[str, Any]]:
        """Return one row per person, role and process, then the total, hours rounded to 0.01."""
        rows = [_table_row(section.group_by.value, row) for section in self.sections for row in section.rows]
        return [*rows, _table_row("total", self.total)]

    def sales_rows(self) -> list[dict[str, Any]]:
        """Return the day's sales by channel, then the day's total and the month's target line, money as strings."""
        return sales_table_rows(self.figures)

    def markdown(self) -> str:
        """Return the report as markdown with Chinese and English headings."""
        as_of = self.sections[0].as_of.astimezone(ZoneInfo(self.timezone))
        header = ["| " + " | ".join(("", *COLUMNS)) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
        lines = [
            f"# 日报表 / Daily report — {self.day.isoformat()}",
            "",
            f"任务数据截至 / Open and overdue as of {as_of.strftime('%Y-%m-%d %H:%M')} ({self.timezone}); "
            "时长单位为小时 / durations in hours.",
            "",
            figures_markdown(self.figures, timezone=self.timezone),
            "## 任务合计 / Tasks total",
            "",
            *header,
            _markdown_line("合计 total", self.total),
        ]
        for section in self.sections:
            lines += ["", f"## {HEADINGS[section.group_by]}", "", *header]
            lines += [_markdown_line(row.key, row) for row in section.rows] or ["| — |" + " |" * len(COLUMNS)]
        return "\n".join(lines) + "\n"

    def summary(self) -> dict[str, Any]:
        """Return the day's totals only: what a notification may carry (no names, no customer data)."""
        total = self.total
        return {
            "report_date": self.day.isoformat(),
            "done": total.done,
            "open": total.open,
            "overdue": total.overdue,
            "on_time_rate": total.on_time_rate,
            "rework_rate": total.rework_rate,
            "cycle_p50_seconds": total.cycle.p50,
            "cycle_p90_seconds": total.cycle.p90,
            **figures_summary(self.figures),
        }


def build_daily_report(session: Session, *, day: date, timezone: str, now: datetime) -> DailyReport:
    """Compute a local day's business figures and its KPIs by person, role and process."""
    start, end = local_day_bounds(day, ZoneInfo(timezone))
    sections = tuple(compute_kpis(session, start=start, end=end, group_by=group_by, now=now) for group_by in HEADINGS)
    figures = build_daily_figures(session, day=day, timezone=timezone, now=now)
    return DailyReport(day=day, timezone=timezone, sections=sections, figures=figures)


def record_report_event(session: Session, *, instance_id: str, summary: dict[str, Any]) -> bool:
    """Write the instance's report.daily audit event unless it has one; return whether it was written now."""
    # The instance's row lock makes a concurrent replay wait here and then find the event.
    get_instance(session, instance_id, for_update=True)
    written = select(AuditEvent.id).where(AuditEvent.instance_id == instance_id, AuditEvent.type == REPORT_EVENT)
    if session.scalar(written.limit(1)) is not None:
        return False
    record_event(session, type=REPORT_EVENT, actor=SYSTEM_ACTOR, instance_id=instance_id, data=summary)
    return True
