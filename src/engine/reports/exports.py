"""The exports: the KPI table, the instance list and the task list as rows for a CSV or XLSX file.

Instances and tasks are read in keyset pages of PAGE_ROWS (created_at, id), filtered by what the caller
may see, so a long range streams through at constant memory. Every range is [start, end) on created_at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.reports.kpi import KpiReport, KpiRow
from ecomflow.engine.reports.tabular import Column

PAGE_ROWS = 1000
TIME = "yyyy-mm-dd hh:mm"
HOURS = "0.00"
PERCENT = "0.00%"


@dataclass(frozen=True)
class ListFilter:
    """What an instance or task export covers: created in [start, end), optionally one process and state."""

    start: datetime
    end: datetime
    process: str | None = None
    state: str | None = None


KPI_COLUMNS = (
    Column("分组 Key", 22),
    Column("完成 Done", 10),
    Column("周期P50 Cycle p50 (h)", 14, HOURS),
    Column("周期P90 Cycle p90 (h)", 14, HOURS),
    Column("排队P50 Queue p50 (h)", 14, HOURS),
    Column("认领P50 Claimed p50 (h)", 14, HOURS),
    Column("处理P50 Working p50 (h)", 14, HOURS),
    Column("准时率 On time", 12, PERCENT),
    Column("返工率 Rework", 12, PERCENT),
    Column("未完成 Open", 10),
    Column("逾期 Overdue", 10),
)
INSTANCE_COLUMNS = (
    Column("实例ID Instance", 38),
    Column("流程 Process", 24),
    Column("业务单号 Business key", 24),
    Column("状态 State", 12),
    Column("版本 Version", 8),
    Column("发起人 Started by", 14),
    Column("创建时间 Created", 18, TIME),
    Column("结束时间 Ended", 18, TIME),
    Column("父实例 Parent", 38),
)
TASK_COLUMNS = (
    Column("任务ID Task", 38),
    Column("流程 Process", 24),
    Column("实例ID Instance", 38),
    Column("步骤 Step", 22),
    Column("轮次 Round", 8),
    Column("角色 Role", 16),
    Column("状态 State", 12),
    Column("处理人 Assignee", 14),
    Column("创建时间 Created", 18, TIME),
    Column("截止时间 Due", 18, TIME),
    Column("完成时间 Completed", 18, TIME),
    Column("完成人 Completed by", 14),
    Column("有风险 At risk", 8),
)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 4)


def kpi_rows(report: KpiReport) -> Iterator[list[Any]]:
    """Yield one row per group and the total."""
    row: KpiRow
    for row in [*report.rows, report.total]:
        yield [
            row.key,
            row.done,
            _hours(row.cycle.p50),
            _hours(row.cycle.p90),
            _hours(row.queue.p50),
            _hours(row.claimed.p50),
            _hours(row.working.p50),
            row.on_time_rate,
            row.rework_rate,
            row.open,
            row.overdue,
        ]


def _after(created: Any, ident: Any, last: tuple[datetime, str] | None) -> Any:
    if last is None:
        return True
    return or_(created > last[0], and_(created == last[0], ident > last[1]))


def _pages(
    session: Session, columns: tuple[Any, ...], conditions: list[Any], created: Any, ident: Any
) -> Iterator[list[Any]]:
    """Yield the rows oldest first, reading a keyset page of PAGE_ROWS at a time (the columns start with the id)."""
    last: tuple[datetime, str] | None = None
    while True:
        page = session.execute(
            select(*columns).where(*conditions, _after(created, ident, last)).order_by(created, ident).limit(PAGE_ROWS)
        ).all()
        yield from (list(row) for row in page)
        if len(page) < PAGE_ROWS:
            return
        last = (page[-1]._mapping[created.key], page[-1]._mapping[ident.key])


def instance_rows(session: Session, *, principal: Principal, where: ListFilter) -> Iterator[list[Any]]:
    """Yield the instances the caller may see, oldest first, a keyset page at a time."""
    conditions = [
        access.instances_visible_to(principal),
        ProcessInstance.created_at >= where.start,
        ProcessInstance.created_at < where.end,
    ]
    if where.process:
        conditions.append(ProcessInstance.process_key == where.process)
    if where.state:
        conditions.append(ProcessInstance.state == where.state)
    # Columns, not entities: no params or result JSON is read, and nothing piles up in the session.
    columns = (
        ProcessInstance.id,
        ProcessInstance.process_key,
        ProcessInstance.business_key,
        ProcessInstance.state,
        ProcessInstance.definition_version,
        ProcessInstance.started_by,
        ProcessInstance.created_at,
        ProcessInstance.ended_at,
        ProcessInstance.parent_id,
    )
    yield from _pages(session, columns, conditions, ProcessInstance.created_at, ProcessInstance.id)


def task_rows(session: Session, *, principal: Principal, where: ListFilter) -> Iterator[list[Any]]:
    """Yield the tasks the caller may see, oldest first, a keyset page at a time."""
    conditions = [
        access.tasks_visible_to(principal),
        HumanTask.created_at >= where.start,
        HumanTask.created_at < where.end,
    ]
    if where.process:
        conditions.append(HumanTask.process_key == where.process)
    if where.state:
        conditions.append(HumanTask.state == where.state)
    columns = (
        HumanTask.id,
        HumanTask.process_key,
        HumanTask.instance_id,
        HumanTask.step_key,
        HumanTask.round,
        HumanTask.role,
        HumanTask.state,
        HumanTask.assignee,
        HumanTask.created_at,
        HumanTask.due_at,
        HumanTask.completed_at,
        HumanTask.completed_by,
        HumanTask.at_risk,
    )
    for row in _pages(session, columns, conditions, HumanTask.created_at, HumanTask.id):
        yield [*row[:-1], "是 yes" if row[-1] else ""]
