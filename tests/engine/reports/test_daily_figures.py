"""The 日报表's business sections: the day's sales against the month's target, sign-ups and overdue work."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from openpyxl import load_workbook

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.reports.daily_figures import DailyFigures, build_daily_figures
from ecomflow.engine.reports.daily_report import build_daily_report
from ecomflow.engine.reports.daily_xlsx import daily_report_xlsx
from tests.engine.reports.order_set import Line, Order, Refund, insert, shanghai
from tests.engine.reports.plans import insert_plan
from tests.factories import add_task_row, make_instance

DAY = date(2026, 11, 11)
LATER = datetime(2026, 12, 1, tzinfo=UTC)
ZONE = "Asia/Shanghai"


def event_task(instance_id: str, step: str, *, completed: str | None, output: dict[str, Any] | None = None) -> None:
    selection = {"event": "双11预售", "platform": "tmall", "channel": "platform_event"}
    with session_scope() as session:
        session.add(
            HumanTask(
                instance_id=instance_id,
                process_key="ads_and_events",
                step_key=step,
                kind="human",
                role="promotion",
                state="completed" if completed else "open",
                context={"selection": selection},
                output=output,
                created_at=shanghai("2026-11-01T09:00:00"),
                completed_at=shanghai(completed) if completed else None,
                completed_by="pat" if completed else None,
            )
        )


def signup(*, signed: str, reviewed: str | None, result: str = "approved") -> str:
    instance_id = make_instance(process="ads_and_events", params={})
    event_task(instance_id, "sign_up", completed=signed, output={"platform_reference": f"REF-{signed[8:10]}"})
    event_task(instance_id, "review_result", completed=reviewed, output={"result": result} if reviewed else None)
    return instance_id


@pytest.fixture
def shop_day(clean_db: str) -> None:
    # An older plan, replaced by the newer one whose targets count.
    insert_plan({"2026-11": "999999.00"}, {})
    insert_plan({"2026-10": "300000.00", "2026-11": "300000.00", "2026-12": "400000.00"}, {"promotion": "1000000.00"})
    line = [Line("TEA-100", Decimal("100.00"), 1)]
    insert(
        [
            Order(
                "taobao", "n1", "旗舰店", "amy", "completed", Decimal("100.00"), shanghai("2026-11-01T10:00:00"), line
            ),
            Order("taobao", "n11a", "旗舰店", "bob", "paid", Decimal("150.00"), shanghai("2026-11-11T00:00:00"), line),
            Order(
                "jd",
                "n11b",
                "专营店",
                "cat",
                "shipped",
                Decimal("50.00"),
                shanghai("2026-11-11T23:59:59"),
                line,
                [Refund("r11", Decimal("30.00"), "refunded", shanghai("2026-11-11T18:00:00"), "TEA-100")],
            ),
        ]
    )


def figures(now: datetime = LATER) -> DailyFigures:
    with session_scope() as session:
        return build_daily_figures(session, day=DAY, timezone=ZONE, now=now)


class TestSalesAgainstTarget:
    def test_the_day_and_the_month_to_date_beside_the_newest_plans_target(self, shop_day: None) -> None:
        sales = figures().sales
        assert (sales.day.gmv, sales.day.paid_orders, sales.day.refund_amount) == (
            Decimal("200.00"),
            2,
            Decimal("30.00"),
        )
        assert sales.month_to_date.gmv == Decimal("300.00")
        assert sales.month_target == Decimal("300000.00")
        # 300 / 300000; the target spread over November's 30 days, 11 of them gone.
        assert sales.month_attainment == Decimal("0.0010")
        assert (sales.day_target, sales.target_to_date) == (Decimal("10000.00"), Decimal("110000.00"))

    def test_channels_split_the_day(self, shop_day: None) -> None:
        assert [(r.key, r.gmv, r.refund_amount) for r in figures().channels] == [
            ("jd", Decimal("50.00"), Decimal("30.00")),
            ("taobao", Decimal("150.00"), Decimal("0.00")),
        ]

    def test_without_a_plan_there_is_no_target(self, clean_db: str) -> None:
        sales = figures().sales
        assert (sales.month_target, sales.month_attainment, sales.day_target) == (None, None, None)


class TestEventSignups:
    def test_cases_signed_up_or_reviewed_that_day_with_their_result(self, clean_db: str) -> None:
        approved = signup(signed="2026-11-11T10:00:00", reviewed="2026-11-12T09:00:00")
        rejected = signup(signed="2026-11-10T10:00:00", reviewed="2026-11-11T15:00:00", result="rejected")
        pending = signup(signed="2026-11-11T16:00:00", reviewed=None)
        signup(signed="2026-11-09T10:00:00", reviewed="2026-11-10T10:00:00")  # nothing moved on the day
        shown = [(s.instance_id, s.result, s.platform_reference, s.event) for s in figures().signups]
        assert shown == [
            (rejected, "rejected", "REF-10", "双11预售"),
            (approved, "approved", "REF-11", "双11预售"),
            (pending, "pending", "REF-11", "双11预售"),
        ]


class TestOverdueWork:
    def test_open_and_past_due_at_the_days_end(self, clean_db: str) -> None:
        instance_id = make_instance()
        late = add_task_row(
            instance_id=instance_id, created_at=shanghai("2026-11-10T08:00"), due_at=shanghai("2026-11-11T08:00")
        )
        done_late = add_task_row(  # done after its due time, but before the day ended
            instance_id=instance_id,
            state="completed",
            created_at=shanghai("2026-11-10T08:00"),
            due_at=shanghai("2026-11-11T08:00"),
            completed_at=shanghai("2026-11-11T12:00"),
        )
        add_task_row(
            instance_id=instance_id, created_at=shanghai("2026-11-11T08:00"), due_at=shanghai("2026-11-13T08:00")
        )
        result = figures()
        assert [(t.task_id, t.overdue_hours) for t in result.overdue] == [(late, Decimal("16.0"))]
        assert result.overdue_count == 1
        # Asked at 10:00 that day, the report counts as of then: the later-done task was still open and late.
        early = figures(now=shanghai("2026-11-11T10:00"))
        assert {(t.task_id, t.overdue_hours) for t in early.overdue} == {
            (late, Decimal("2.0")),
            (done_late, Decimal("2.0")),
        }
        assert early.overdue_count == 2


class TestReportText:
    def test_markdown_and_summary_carry_the_sales(self, shop_day: None) -> None:
        with session_scope() as session:
            report = build_daily_report(session, day=DAY, timezone=ZONE, now=LATER)
        markdown = report.markdown()
        assert "| 当日合计 day total | 200.00 | 2 | 2 | 100.00 | 30.00 | 15.00% |" in markdown
        assert "- 本月目标 / Month target: 300,000.00" in markdown
        summary = report.summary()
        assert (summary["gmv"], summary["month_target"], summary["month_attainment"]) == (
            "200.00",
            "300000.00",
            "0.0010",
        )
        assert report.sales_rows()[-1]["month_to_date"] == "300.00"


class TestXlsx:
    def test_one_formatted_sheet_per_section_with_chinese_headers(self, shop_day: None) -> None:
        signup(signed="2026-11-11T10:00:00", reviewed="2026-11-11T15:00:00", result="rejected")
        with session_scope() as session:
            report = build_daily_report(session, day=DAY, timezone=ZONE, now=LATER)
        book = load_workbook(BytesIO(daily_report_xlsx(report)))
        assert book.sheetnames == ["销售", "退款", "活动报名", "逾期任务", "任务KPI"]
        sales = book["销售"]
        assert [c.value for c in sales[1]] == [
            "渠道",
            "成交金额 (元)",
            "支付订单数",
            "买家数",
            "客单价 (元)",
            "退款金额 (元)",
            "退款率",
        ]
        assert all(c.font.bold for c in sales[1])
        total = [c.value for c in sales[4]]
        assert total == ["当日合计", 200, 2, 2, 100, 30, 0.15]
        assert (sales["B4"].number_format, sales["G4"].number_format) == ("#,##0.00", "0.00%")
        assert sales.column_dimensions["A"].width == 16
        target = {sales.cell(r, 1).value: sales.cell(r, 2).value for r in range(6, sales.max_row + 1)}
        assert (target["本月目标 (元)"], target["本月目标完成率"]) == (300000, 0.001)
        assert [c.value for c in book["退款"][2]] == ["P-TEA", "P-TEA 标题", 1, 30]
        signups = book["活动报名"]
        assert [signups.cell(2, c).value for c in (2, 5, 7)] == ["双11预售", "REF-11", "驳回"]
        assert signups.cell(2, 6).value == datetime(2026, 11, 11, 10, 0)  # Shanghai wall clock
