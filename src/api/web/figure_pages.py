"""The business figures' pages (managers): the day's 日报表 with its XLSX download, and the dashboard's exports."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from ecomflow.api.file_responses import stream_table
from ecomflow.api.web.dashboard import PERIOD_DAYS
from ecomflow.api.web.deps import ManagerPage, Page, PageRefused
from ecomflow.api.web.labels import process_title, role_title, step_title
from ecomflow.api.web.rendering import HOME, render
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.reports.daily_report import DailyReport, build_daily_report
from ecomflow.engine.reports.daily_xlsx import XLSX_TYPE, daily_report_xlsx
from ecomflow.engine.reports.exports import (
    INSTANCE_COLUMNS,
    KPI_COLUMNS,
    TASK_COLUMNS,
    ListFilter,
    instance_rows,
    kpi_rows,
    task_rows,
)
from ecomflow.engine.reports.kpi import GroupBy, kpis_for
from ecomflow.engine.reports.tabular import ExportFormat

router = APIRouter(prefix="/ui", include_in_schema=False)


def _day(page: Page, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PageRefused(404, "daily.bad_date", page) from None


def _report(page: Page, day: date) -> DailyReport:
    with read_scope() as session:
        return build_daily_report(session, day=day, timezone=page.definitions.timezone, now=page.now)


@router.get("/reports/daily", response_class=RedirectResponse)
def today(page: ManagerPage) -> RedirectResponse:
    """Send the manager to today's report (the team's day)."""
    return RedirectResponse(f"{HOME}/reports/daily/{page.now.astimezone(page.zone).date().isoformat()}", 303)


@router.get("/reports/daily/{day}.xlsx")
def daily_xlsx(page: ManagerPage, day: str) -> Response:
    """Download the day's report as XLSX (one sheet per section)."""
    report = _report(page, _day(page, day))
    return Response(
        daily_report_xlsx(report),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="daily-report-{report.day.isoformat()}.xlsx"'},
    )


@router.get("/reports/daily/{day}", response_class=HTMLResponse)
def daily(page: ManagerPage, day: str) -> HTMLResponse:
    """Show the day's report: sales against the month's target, refunds, sign-ups, overdue work, task totals."""
    shown = _day(page, page.request.query_params.get("day") or day)
    if shown.isoformat() != day:
        return RedirectResponse(f"{HOME}/reports/daily/{shown.isoformat()}", 303)  # the date picker's choice
    report = _report(page, shown)
    definitions, t = page.definitions, page.t
    return render(
        "daily_report.html",
        page,
        report=report,
        figures=report.figures,
        previous_day=(shown - timedelta(days=1)).isoformat(),
        next_day=(shown + timedelta(days=1)).isoformat(),
        process_title=lambda key: process_title(definitions, t, key),
        step_title=lambda key, step: step_title(definitions, t, key, step),
        role_title=lambda key: role_title(definitions, t, key),
    )


def _export_format(page: Page) -> ExportFormat:
    value = page.request.query_params.get("format", "csv")
    return ExportFormat(value) if value in ExportFormat.__members__.values() else ExportFormat.CSV


def _export_days(page: Page) -> tuple[datetime, datetime]:
    """Return the dashboard's period (its days= choice) ending now."""
    value = page.request.query_params.get("days", "")
    days = int(value) if value.isdigit() and int(value) in PERIOD_DAYS else PERIOD_DAYS[0]
    return page.now - timedelta(days=days), page.now


@router.get("/exports/kpi")
def export_kpi(page: ManagerPage) -> StreamingResponse:
    """Download the dashboard's KPI table (its period; group_by person or role) as CSV or XLSX."""
    group_by = GroupBy.ROLE if page.request.query_params.get("group_by") == "role" else GroupBy.PERSON
    start, end = _export_days(page)
    with read_scope() as session:
        report = kpis_for(session, principal=page.user, start=start, end=end, group_by=group_by, now=page.now)
    return stream_table(
        _export_format(page),
        name=f"kpi-{group_by.value}",
        columns=KPI_COLUMNS,
        rows_of=lambda _session: kpi_rows(report),
        timezone=page.definitions.timezone,
    )


@router.get("/exports/{kind}")
def export_list(page: ManagerPage, kind: str) -> StreamingResponse:
    """Download the instances or tasks created in the dashboard's period (process= narrows) as CSV or XLSX."""
    if kind not in ("instances", "tasks"):
        raise PageRefused(404, "refused.page_missing", page)
    start, end = _export_days(page)
    where = ListFilter(start=start, end=end, process=page.request.query_params.get("process") or None)
    rows, columns = (instance_rows, INSTANCE_COLUMNS) if kind == "instances" else (task_rows, TASK_COLUMNS)
    return stream_table(
        _export_format(page),
        name=kind,
        columns=columns,
        rows_of=lambda session: rows(session, principal=page.user, where=where),
        timezone=page.definitions.timezone,
    )
