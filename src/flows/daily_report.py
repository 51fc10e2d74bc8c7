"""日报表 — the daily report (scheduled 18:00 Asia/Shanghai): the day's figures and KPIs where managers look.

compute_kpis (the day's sales against the month's target, refunds, event sign-ups, overdue work, and the
KPIs by person, role and process) → publish_report (markdown, a KPI table, a sales table and a link to
the day's page with its XLSX, as Prefect artifacts) → notify (a report.daily audit event with the day's
totals, which webhooks and channels carry on, linking to the day's page).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.runtime import flow_run

from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.reports.daily_report import build_daily_report, record_report_event
from ecomflow.flows.artifacts import publish_link, publish_markdown, publish_table
from ecomflow.flows.primitives import ProcessRun
from ecomflow.flows.process_flow import ScheduledStart, process_flow

PROCESS = "daily_report"
MARKDOWN_KEY = "daily-report"
TABLE_KEY = "daily-report-table"
SALES_KEY = "daily-report-sales"
XLSX_KEY = "daily-report-xlsx"


def _timezone() -> str:
    return get_definitions().timezone


@task
def compute_kpis(report_date: str) -> dict[str, Any]:
    """Compute the day's KPIs by person, role and process, as table rows, markdown and a summary."""
    with session_scope() as session:
        report = build_daily_report(session, day=date.fromisoformat(report_date), timezone=_timezone(), now=utcnow())
    return {
        "report_date": report_date,
        "rows": report.table_rows(),
        "sales_rows": report.sales_rows(),
        "markdown": report.markdown(),
        "summary": report.summary(),
    }


@task
def publish_report(report: dict[str, Any]) -> dict[str, Any]:
    """Attach the report to the run as markdown, KPI and sales tables and its XLSX link; each key keeps every day."""
    day = report["report_date"]
    publish_table(TABLE_KEY, report["rows"], description=f"日报表 KPI 明细 / Daily report KPIs {day}")
    publish_table(SALES_KEY, report["sales_rows"], description=f"日报表 销售 / Daily report sales {day}")
    publish_markdown(MARKDOWN_KEY, report["markdown"], description=f"日报表 / Daily report {day}")
    # The workbook is made on demand from the same data; the link needs a manager's sign-in.
    link = f"{get_settings().resolved_public_url}/ui/reports/daily/{day}.xlsx"
    publish_link(XLSX_KEY, link, text=f"日报表 {day}.xlsx", description=f"日报表 XLSX / Daily report workbook {day}")
    return {"artifacts": [MARKDOWN_KEY, TABLE_KEY, SALES_KEY, XLSX_KEY]}


@task
def notify(instance_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Record the report.daily event with the day's totals; webhooks and channels turn it into notifications."""
    with session_scope() as session:
        record_report_event(session, instance_id=instance_id, summary=summary)
    return {"event": "report.daily"}


def report_date_of(run: ProcessRun) -> str:
    """Return the day the run reports on: the start form's, else the local day it was started."""
    return run.params.get("report_date") or run.started_at.astimezone(ZoneInfo(_timezone())).date().isoformat()


def scheduled_start() -> ScheduledStart:
    """Return the instance a scheduled run starts: the local day the scheduler meant it for, keyed by that day."""
    day = flow_run.scheduled_start_time.astimezone(ZoneInfo(_timezone())).date().isoformat()
    return ScheduledStart(business_key=day, params={"report_date": day})


@process_flow(PROCESS, written_for={1}, scheduled=scheduled_start)
def daily_report(run: ProcessRun) -> dict[str, Any]:
    """日报表: the day's KPIs by person, role and process, published as artifacts and announced."""
    report = run.auto("compute_kpis", compute_kpis, report_date_of(run))
    published = run.auto("publish_report", publish_report, report)
    run.auto("notify", notify, run.instance_id, report["summary"])
    return run.finish("published", artifacts=published["artifacts"], **report["summary"])
