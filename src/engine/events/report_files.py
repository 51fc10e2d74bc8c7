"""The files an email carries: the day's 日报表 workbook, built at delivery from the data, never kept in the outbox.

Chat robots cannot take a file: their message links to the workbook's download instead (notices.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.events.channels.common import FileAttachment, Outgoing
from ecomflow.engine.reports.daily_report import build_daily_report
from ecomflow.engine.reports.daily_xlsx import XLSX_TYPE, daily_report_xlsx

REPORT_EVENT = "report.daily"


def daily_report_filename(day: str) -> str:
    """Return the workbook's file name, as the download names it."""
    return f"daily-report-{day}.xlsx"


def with_daily_workbooks(outgoing: Outgoing, payloads: Sequence[dict[str, Any]]) -> Outgoing:
    """Return the message with the workbook of each day whose report.daily it carries attached."""
    days = {
        payload["notice"]["report"]["report_date"]: payload["notice"]["timezone"]
        for payload in payloads
        if payload["notice"]["event"] == REPORT_EVENT and payload["notice"].get("report", {}).get("report_date")
    }
    if not days:
        return outgoing
    files = []
    for day, timezone in sorted(days.items()):
        with read_scope() as session:
            report = build_daily_report(session, day=date.fromisoformat(day), timezone=timezone, now=utcnow())
        files.append(FileAttachment(daily_report_filename(day), XLSX_TYPE, daily_report_xlsx(report)))
    return replace(outgoing, attachments=(*outgoing.attachments, *files))
