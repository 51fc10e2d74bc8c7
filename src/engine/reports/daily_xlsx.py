"""The 日报表 as an XLSX workbook: one formatted sheet per section, Chinese headers, money and rates as numbers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ecomflow.engine.reports.daily_report import HEADINGS, DailyReport
from ecomflow.engine.reports.kpi import KpiRow
from ecomflow.engine.reports.tabular import Column

MONEY = "#,##0.00"
PERCENT = "0.00%"
HOURS = "0.0"
TIME = "yyyy-mm-dd hh:mm"
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="DDEBF7")
RESULT_NAMES = {"approved": "通过", "rejected": "驳回", "pending": "待审核"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def write_sheet(sheet: Worksheet, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
    """Write a bold, frozen header row and the rows, with each column's width and number format."""
    sheet.append([c.header for c in columns])
    for cell in sheet[1]:
        cell.font, cell.fill, cell.alignment = HEADER_FONT, HEADER_FILL, Alignment(horizontal="center")
    for row in rows:
        sheet.append(list(row))
    for index, column in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
        if column.number_format is not None:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = column.number_format
    sheet.freeze_panes = "A2"


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    # Excel has no time zones: write the team's wall-clock time.
    return None if moment is None else moment.astimezone(zone).replace(tzinfo=None)


def _sales_sheet(book: Workbook, report: DailyReport) -> None:
    sales, figures = report.figures.sales, report.figures
    columns = [
        Column("渠道", 16),
        Column("成交金额 (元)", 16, MONEY),
        Column("支付订单数", 12),
        Column("买家数", 10),
        Column("客单价 (元)", 14, MONEY),
        Column("退款金额 (元)", 16, MONEY),
        Column("退款率", 10, PERCENT),
    ]
    rows = [
        [r.key or "未知", r.gmv, r.paid_orders, r.buyers, r.aov, r.refund_amount, r.refund_rate]
        for r in figures.channels
    ]
    day = sales.day
    rows.append(["当日合计", day.gmv, day.paid_orders, day.buyers, day.aov, day.refund_amount, day.refund_rate])
    sheet = book.create_sheet("销售")
    write_sheet(sheet, columns, rows)
    target_rows = [
        ("本月目标 (元)", sales.month_target, MONEY),
        ("本月累计成交 (元)", sales.month_to_date.gmv, MONEY),
        ("本月目标完成率", sales.month_attainment, PERCENT),
        ("按天折算至今目标 (元)", sales.target_to_date, MONEY),
        ("当日目标 (月目标按天均分, 元)", sales.day_target, MONEY),
    ]
    sheet.append([])
    for label, value, number_format in target_rows:
        sheet.append([label, value])
        sheet.cell(sheet.max_row, 1).font = HEADER_FONT
        sheet.cell(sheet.max_row, 2).number_format = number_format


def _refund_sheet(book: Workbook, report: DailyReport) -> None:
    columns = [Column("商品编码", 16), Column("商品", 30), Column("退款笔数", 10), Column("退款金额 (元)", 16, MONEY)]
    rows = [[r.key or "未知", r.label or "", r.refunds, r.refund_amount] for r in report.figures.refund_products]
    write_sheet(book.create_sheet("退款"), columns, rows)


def _signup_sheet(book: Workbook, report: DailyReport, zone: ZoneInfo) -> None:
    columns = [
        Column("业务单号", 18),
        Column("活动", 24),
        Column("平台", 10),
        Column("类型", 16),
        Column("平台报名编号", 18),
        Column("报名时间", 18, TIME),
        Column("审核结果", 16),
        Column("审核时间", 18, TIME),
    ]
    rows = [
        [
            s.business_key,
            s.event,
            s.platform,
            s.channel,
            s.platform_reference,
            _local(s.signed_up_at, zone),
            RESULT_NAMES.get(s.result, s.result),
            _local(s.reviewed_at, zone),
        ]
        for s in report.figures.signups
    ]
    write_sheet(book.create_sheet("活动报名"), columns, rows)


def _overdue_sheet(book: Workbook, report: DailyReport, zone: ZoneInfo) -> None:
    columns = [
        Column("流程", 22),
        Column("步骤", 22),
        Column("角色", 16),
        Column("处理人", 14),
        Column("截止时间", 18, TIME),
        Column("逾期 (小时)", 12, HOURS),
    ]
    rows = [
        [t.process_key, t.step_key, t.role, t.assignee or "待认领", _local(t.due_at, zone), t.overdue_hours]
        for t in report.figures.overdue
    ]
    write_sheet(book.create_sheet("逾期任务"), columns, rows)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


def _kpi_sheet(book: Workbook, report: DailyReport) -> None:
    columns = [
        Column("维度", 10),
        Column("人员/角色/流程", 22),
        Column("完成", 8),
        Column("周期中位数 (小时)", 16, HOURS),
        Column("周期 P90 (小时)", 16, HOURS),
        Column("准时率", 10, PERCENT),
        Column("返工率", 10, PERCENT),
        Column("未完成", 10),
        Column("逾期", 8),
    ]

    def line(dimension: str, row: KpiRow) -> list[Any]:
        cycle = row.cycle
        return [
            dimension,
            row.key,
            row.done,
            _hours(cycle.p50),
            _hours(cycle.p90),
            row.on_time_rate,
            row.rework_rate,
            row.open,
            row.overdue,
        ]

    rows = [line(HEADINGS[s.group_by].split(" /")[0], r) for s in report.sections for r in s.rows]
    write_sheet(book.create_sheet("任务KPI"), columns, [*rows, line("合计", report.total)])


def daily_report_xlsx(report: DailyReport) -> bytes:
    """Return the report as an XLSX file: sales, refunds, event sign-ups, overdue work and task KPIs."""
    zone = ZoneInfo(report.timezone)
    book = Workbook()
    book.remove(book.active)
    _sales_sheet(book, report)
    _refund_sheet(book, report)
    _signup_sheet(book, report, zone)
    _overdue_sheet(book, report, zone)
    _kpi_sheet(book, report)
    book.properties.title = f"日报表 {report.day.isoformat()}"
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()
