"""The words of every notification, in Chinese (the default) and English."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

HEADLINES = {
    "task.created": ("新任务", "New task"),
    "task.assigned": ("任务已分派", "Task assigned"),
    "task.due_soon": ("任务即将到期", "Task due soon"),
    "task.reminded": ("任务提醒", "Task reminder"),
    "task.overdue": ("任务已逾期", "Task overdue"),
    "task.escalated": ("任务已升级", "Task escalated"),
    "instance.completed": ("流程已完成", "Process completed"),
    "instance.failed": ("流程失败", "Process failed"),
    "report.daily": ("日报表", "Daily report"),
    "daily_digest": ("今日待办", "Today's open work"),
}
LABELS = {
    "process": ("流程", "Process"),
    "business_key": ("业务单号", "Business key"),
    "step": ("步骤", "Step"),
    "role": ("角色", "Role"),
    "assignee": ("处理人", "Assignee"),
    "unassigned": ("待认领", "not claimed yet"),
    "due_at": ("截止", "Due"),
    "escalated_to": ("升级至", "Escalated to"),
    "state": ("状态", "State"),
    "overdue": ("已逾期", "overdue"),
    "at_risk": ("有逾期风险", "at risk"),
    "open_task": ("打开任务", "Open the task"),
    "open_dashboard": ("打开看板", "Open the dashboard"),
    "open_daily_report": ("打开日报表（可下载 XLSX）", "Open the daily report (XLSX download)"),
    "download_xlsx": ("下载日报表 XLSX", "Download the daily report (XLSX)"),
    "open_instance": ("查看流程进度", "Open the case"),
    "open_inbox": ("打开收件箱", "Open the inbox"),
    "report_date": ("日期", "Date"),
    "done": ("今日完成", "Done today"),
    "open": ("待办", "Open"),
    "overdue_count": ("逾期", "Overdue"),
    "on_time_rate": ("准时率", "On time"),
    "rework_rate": ("返工率", "Rework"),
    "gmv": ("今日成交额", "GMV today"),
    "month_attainment": ("本月目标完成率", "Month target reached"),
    "refund_amount": ("今日退款", "Refunds today"),
    "signups": ("今日活动报名", "Event sign-ups today"),
    "managers": ("主管", "managers"),
}


def pick(pair: tuple[str, str], language: str) -> str:
    """Return the Chinese or English half of a pair."""
    return pair[0] if language == "zh" else pair[1]


def label(key: str, language: str) -> str:
    """Return the label of a field in the language."""
    return pick(LABELS[key], language)


def headline(event: str, language: str) -> str:
    """Return the short name of an event in the language."""
    return pick(HEADLINES[event], language)


def local_time(moment: datetime, *, timezone: str, language: str) -> str:
    """Return a moment as the team reads it: local date and time, naming the time zone."""
    local = moment.astimezone(ZoneInfo(timezone))
    zone = "北京时间" if language == "zh" and timezone == "Asia/Shanghai" else timezone
    return f"{local:%Y-%m-%d %H:%M}（{zone}）" if language == "zh" else f"{local:%Y-%m-%d %H:%M} ({zone})"


def digest_title(*, count: int, language: str) -> str:
    """Return the title of a digest that carries several notifications at once (a burst over the rate limit)."""
    return f"ecomflow：{count} 条通知" if language == "zh" else f"ecomflow: {count} notifications"


def daily_digest_title(*, role: str, overdue: int, at_risk: int, language: str) -> str:
    """Return the title of a role's morning digest."""
    if language == "zh":
        return f"【今日待办】{role}：逾期 {overdue} 项，有逾期风险 {at_risk} 项"
    return f"[Today] {role}: {overdue} overdue, {at_risk} at risk"


def more_items(*, count: int, language: str) -> str:
    """Return the line that stands for the items a message had no room for."""
    return f"另有 {count} 项，见收件箱" if language == "zh" else f"{count} more in the inbox"


def rate(value: float | None) -> str:
    """Return a rate as a percentage, or a dash when there is none."""
    return "—" if value is None else f"{value * 100:.0f}%"
