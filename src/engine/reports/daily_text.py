"""The daily report's business sections as markdown, artifact table rows and the notification's totals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ecomflow.engine.reports.daily_figures import OVERDUE_SHOWN, DailyFigures
from ecomflow.engine.reports.sales import SalesRow

RESULTS = {"approved": "通过 approved", "rejected": "驳回 rejected", "pending": "待审核 pending"}
SALES_COLUMNS = (
    "成交金额 GMV",
    "支付订单 Orders",
    "买家数 Buyers",
    "客单价 AOV",
    "退款金额 Refunds",
    "退款率 Refund rate",
)


def money(value: Decimal | None) -> str:
    """Return an amount as 1,234.50, or — without one."""
    return "—" if value is None else f"{value:,.2f}"


def percent(value: Decimal | None) -> str:
    """Return a fraction as 12.34%, or — without one."""
    return "—" if value is None else f"{value * 100:.2f}%"


def _sales_line(label: str, row: SalesRow) -> str:
    cells = (
        label,
        money(row.gmv),
        str(row.paid_orders),
        str(row.buyers),
        money(row.aov),
        money(row.refund_amount),
        percent(row.refund_rate),
    )
    return "| " + " | ".join(cells) + " |"


def _table(columns: tuple[str, ...], lines: list[str]) -> list[str]:
    head = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return head + (lines or ["| — |" + " |" * (len(columns) - 1)])


def figures_markdown(figures: DailyFigures, *, timezone: str) -> str:
    """Return the sales, refunds, sign-ups and overdue sections as markdown (ending with a blank line)."""
    zone = ZoneInfo(timezone)
    sales = figures.sales
    lines = ["## 销售 / Sales", ""]
    channels = [_sales_line(row.key or "—", row) for row in figures.channels]
    lines += _table(("渠道 Channel", *SALES_COLUMNS), [*channels, _sales_line("当日合计 day total", sales.day)])
    lines += [
        "",
        f"- 本月目标 / Month target: {money(sales.month_target)}",
        f"- 本月累计 / Month to date: {money(sales.month_to_date.gmv)} "
        f"(完成率 attainment {percent(sales.month_attainment)}; "
        f"按天折算目标 target to date {money(sales.target_to_date)})",
        f"- 当日目标 (月目标按天均分) / Day target (month spread evenly): {money(sales.day_target)}",
        "",
        "## 退款 / Refunds",
        "",
    ]
    lines += _table(
        ("商品 Product", "退款笔数 Refunds", "退款金额 Amount"),
        [
            f"| {row.label or row.key or '—'} | {row.refunds} | {money(row.refund_amount)} |"
            for row in figures.refund_products
        ],
    )
    lines += ["", "## 活动报名 / Event sign-ups", ""]
    lines += _table(
        ("活动 Event", "平台 Platform", "类型 Type", "报名编号 Reference", "审核结果 Result"),
        [
            f"| {s.event} | {s.platform} | {s.channel} | {s.platform_reference or '—'} | "
            f"{RESULTS.get(s.result, s.result)} |"
            for s in figures.signups
        ],
    )
    lines += ["", f"## 逾期任务 / Overdue work ({figures.overdue_count})", ""]
    lines += _table(
        ("流程 Process", "步骤 Step", "角色 Role", "处理人 Assignee", "截止 Due", "逾期 Overdue (h)"),
        [
            f"| {t.process_key} | {t.step_key} | {t.role} | {t.assignee or '—'} | "
            f"{t.due_at.astimezone(zone).strftime('%m-%d %H:%M')} | {t.overdue_hours} |"
            for t in figures.overdue
        ],
    )
    if figures.overdue_count > OVERDUE_SHOWN:
        lines += ["", f"仅列出最久的 {OVERDUE_SHOWN} 项 / The {OVERDUE_SHOWN} longest overdue are listed."]
    return "\n".join(lines) + "\n"


def sales_table_rows(figures: DailyFigures) -> list[dict[str, Any]]:
    """Return one row per channel and the day's total, with the month's target beside the total."""
    rows = [{"channel": row.key, **_money_fields(row)} for row in figures.channels]
    sales = figures.sales
    total = {"channel": "total", **_money_fields(sales.day)}
    total.update(
        month_target=None if sales.month_target is None else str(sales.month_target),
        month_to_date=str(sales.month_to_date.gmv),
        month_attainment=None if sales.month_attainment is None else str(sales.month_attainment),
    )
    return [*rows, total]


def _money_fields(row: SalesRow) -> dict[str, Any]:
    shown = row.as_dict()
    return {key: shown[key] for key in ("gmv", "paid_orders", "buyers", "aov", "refund_amount", "refund_rate")}


def figures_summary(figures: DailyFigures) -> dict[str, Any]:
    """Return the day's business totals a notification may carry: amounts and counts, no names or orders."""
    sales = figures.sales
    return {
        "gmv": str(sales.day.gmv),
        "paid_orders": sales.day.paid_orders,
        "refund_amount": str(sales.day.refund_amount),
        "month_target": None if sales.month_target is None else str(sales.month_target),
        "month_to_date": str(sales.month_to_date.gmv),
        "month_attainment": None if sales.month_attainment is None else str(sales.month_attainment),
        "signups": len(figures.signups),
        "signups_approved": sum(1 for s in figures.signups if s.result == "approved"),
    }
