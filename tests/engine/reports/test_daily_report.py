"""The daily report: a local day's KPIs as table rows and markdown, and its once-only audit event."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.reports.daily_report import (
    REPORT_EVENT,
    DailyReport,
    build_daily_report,
    local_day_bounds,
    record_report_event,
)
from tests.factories import add_task_row, make_instance

DAY = date(2025, 3, 2)
LATER = datetime(2025, 3, 10, tzinfo=UTC)
ZONE = "Asia/Shanghai"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def instance_id(clean_db: str) -> str:
    instance_id = make_instance()
    # wu: created 09:00, claimed 10:00, done 13:00 Shanghai time, due 14:00.
    add_task_row(
        instance_id=instance_id,
        state="completed",
        created_at=utc("2025-03-02T01:00"),
        events=(("task.claimed", utc("2025-03-02T02:00")),),
        completed_at=utc("2025-03-02T05:00"),
        completed_by="wu",
        assignee="wu",
        due_at=utc("2025-03-02T06:00"),
    )
    # Done at 00:30 Shanghai time on 2 March, which is still 1 March in UTC.
    add_task_row(
        instance_id=instance_id,
        role="customer_service",
        process="page_design",
        state="completed",
        round=2,
        created_at=utc("2025-03-01T15:00"),
        events=(("task.claimed", utc("2025-03-01T15:30")),),
        completed_at=utc("2025-03-01T16:30"),
        completed_by="li",
        assignee="li",
    )
    # Open at the day's end and past due: held by li.
    add_task_row(
        instance_id=instance_id,
        role="customer_service",
        state="claimed",
        assignee="li",
        created_at=utc("2025-03-02T03:00"),
        events=(("task.claimed", utc("2025-03-02T04:00")),),
        due_at=utc("2025-03-02T08:00"),
    )
    return instance_id


def report() -> DailyReport:
    with session_scope() as session:
        return build_daily_report(session, day=DAY, timezone=ZONE, now=LATER)


class TestDailyReport:
    def test_the_day_is_the_local_day(self) -> None:
        assert local_day_bounds(DAY, ZoneInfo(ZONE)) == (utc("2025-03-01T16:00"), utc("2025-03-02T16:00"))

    def test_table_has_a_row_per_person_role_and_process_then_the_total(self, instance_id: str) -> None:
        rows = report().table_rows()
        assert [(r["dimension"], r["key"], r["done"], r["open"], r["overdue"]) for r in rows] == [
            ("person", "li", 1, 1, 1),
            ("person", "wu", 1, 0, 0),
            ("role", "customer_service", 1, 1, 1),
            ("role", "warehouse", 1, 0, 0),
            ("process", "page_design", 1, 0, 0),
            ("process", "returns_exchange", 1, 1, 1),
            ("total", "total", 2, 1, 1),
        ]
        wu = rows[1]
        # 4 h cycle: 1 h in the queue, 3 h of work.
        assert (wu["cycle_p50_h"], wu["queue_p50_h"], wu["claimed_p50_h"], wu["working_p50_h"]) == (4.0, 1.0, 0.0, 3.0)
        assert (wu["on_time_rate"], wu["rework_rate"]) == (1.0, 0.0)

    def test_markdown_has_chinese_and_english_headings(self, instance_id: str) -> None:
        markdown = report().markdown()
        for heading in (
            "# 日报表 / Daily report — 2025-03-02",
            "## 任务合计 / Tasks total",
            "## 按人员 / By person",
            "## 按角色 / By role",
            "## 按流程 / By process",
        ):
            assert heading in markdown
        assert "| wu | 1 | 4.0 / 4.0 | 1.0 | 0.0 | 3.0 | 100% | 0% | 0 | 0 |" in markdown
        # li's task had no due time: no on-time rate to show.
        assert "| li | 1 | 1.5 / 1.5 | 0.5 | 0.0 | 1.0 | — | 100% | 1 | 1 |" in markdown

    def test_summary_holds_totals_and_no_names(self, instance_id: str) -> None:
        summary = report().summary()
        # Cycles 1.5 h and 4 h: p50 halfway, p90 at rank 0.9 = 1.5 + 0.9 × 2.5.
        assert summary == {
            "report_date": "2025-03-02",
            "done": 2,
            "open": 1,
            "overdue": 1,
            "on_time_rate": 1.0,
            "rework_rate": 0.5,
            "cycle_p50_seconds": 2.75 * 3600,
            "cycle_p90_seconds": 3.75 * 3600,
            # No orders on the day and no plan: zero sales, no target.
            "gmv": "0.00",
            "paid_orders": 0,
            "refund_amount": "0.00",
            "month_target": None,
            "month_to_date": "0.00",
            "month_attainment": None,
            "signups": 0,
            "signups_approved": 0,
        }


class TestReportEvent:
    def test_written_once_per_instance(self, instance_id: str) -> None:
        summary = report().summary()
        with session_scope() as session:
            assert record_report_event(session, instance_id=instance_id, summary=summary) is True
        with session_scope() as session:
            assert record_report_event(session, instance_id=instance_id, summary=summary) is False
        with session_scope() as session:
            events = session.scalars(select(AuditEvent).where(AuditEvent.type == REPORT_EVENT)).all()
            assert [(e.instance_id, e.actor, e.data) for e in events] == [(instance_id, "system", summary)]
