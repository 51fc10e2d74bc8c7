"""Team KPIs from the task history alone (关键KPI考核点): per person, role or process, plus a total.

Over [start, end): tasks done; cycle-time p50/p90 split into queue (created → first claim),
claimed (first → last claim, i.e. hand-overs, releases and re-claims) and working (last claim →
completion), which add up to the cycle time; on-time and rework rates. As of min(end, now):
open and overdue counts. Seconds are floats, rates fractions, and None means "nothing to measure".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.models import AuditEvent, HumanTask
from ecomflow.engine.errors import Forbidden
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.moves import HOLDING_EVENT_TYPES
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState

# The moments a person took the task on (claim, assignment, delegation), as the one door for moves records them.
CLAIM_EVENTS = HOLDING_EVENT_TYPES
TOTAL_KEY = "total"


class GroupBy(StrEnum):
    PERSON = "person"
    ROLE = "role"
    PROCESS = "process"


@dataclass(frozen=True)
class Percentiles:
    """The median and 90th percentile of some durations, in seconds (None without any)."""

    p50: float | None
    p90: float | None


@dataclass(frozen=True)
class KpiRow:
    """The KPIs of one person, role or process (or of everyone: the total row)."""

    key: str
    done: int
    cycle: Percentiles
    queue: Percentiles
    claimed: Percentiles
    working: Percentiles
    on_time_rate: float | None
    rework_rate: float | None
    open: int
    overdue: int


@dataclass(frozen=True)
class KpiReport:
    """KPIs over [start, end), open and overdue counted at as_of, one row per group and a total."""

    start: datetime
    end: datetime
    as_of: datetime
    group_by: GroupBy
    rows: list[KpiRow]
    total: KpiRow


@dataclass(frozen=True)
class _DoneTask:
    key: str | None
    queue: float
    claimed: float
    working: float
    due_met: bool | None
    reworked: bool

    @property
    def cycle(self) -> float:
        return self.queue + self.claimed + self.working


@dataclass
class _Tally:
    done: list[_DoneTask] = field(default_factory=list)
    open: int = 0
    overdue: int = 0

    def row(self, key: str) -> KpiRow:
        with_due = [t.due_met for t in self.done if t.due_met is not None]
        return KpiRow(
            key=key,
            done=len(self.done),
            cycle=percentiles(t.cycle for t in self.done),
            queue=percentiles(t.queue for t in self.done),
            claimed=percentiles(t.claimed for t in self.done),
            working=percentiles(t.working for t in self.done),
            on_time_rate=_share(sum(with_due), len(with_due)),
            rework_rate=_share(sum(t.reworked for t in self.done), len(self.done)),
            open=self.open,
            overdue=self.overdue,
        )


def percentile(values: list[float], fraction: float) -> float | None:
    """Return the percentile of sorted values by linear interpolation between closest ranks."""
    if not values:
        return None
    rank = fraction * (len(values) - 1)
    below = int(rank)
    above = min(below + 1, len(values) - 1)
    return values[below] + (values[above] - values[below]) * (rank - below)


def percentiles(values: Iterable[float]) -> Percentiles:
    """Return the p50 and p90 of the values."""
    ordered = sorted(values)
    return Percentiles(p50=percentile(ordered, 0.5), p90=percentile(ordered, 0.9))


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _group_column(group_by: GroupBy, *, done: bool) -> Any:
    if group_by is GroupBy.PERSON:
        # A done task counts for who completed it, an open one for who holds it now.
        return HumanTask.completed_by if done else HumanTask.assignee
    return HumanTask.role if group_by is GroupBy.ROLE else HumanTask.process_key


def _done_conditions(start: datetime, end: datetime, person: str | None) -> list[Any]:
    conditions = [HumanTask.state == TaskState.COMPLETED, HumanTask.completed_at >= start, HumanTask.completed_at < end]
    if person is not None:
        conditions.append(HumanTask.completed_by == person)
    return conditions


def _claim_moments(session: Session, done_filter: list[Any]) -> dict[str, tuple[datetime, datetime]]:
    """Return each done task's first and last claim moment (claim, assignment, delegation) before completion."""
    query = (
        select(AuditEvent.task_id, func.min(AuditEvent.at), func.max(AuditEvent.at))
        .join(HumanTask, HumanTask.id == AuditEvent.task_id)
        .where(*done_filter, AuditEvent.type.in_(CLAIM_EVENTS), AuditEvent.at <= HumanTask.completed_at)
        .group_by(AuditEvent.task_id)
    )
    return {task_id: (first, last) for task_id, first, last in session.execute(query)}


def _done_tasks(
    session: Session, *, start: datetime, end: datetime, group_by: GroupBy, person: str | None
) -> list[_DoneTask]:
    done_filter = _done_conditions(start, end, person)
    moments = _claim_moments(session, done_filter)
    query = select(
        HumanTask.id,
        _group_column(group_by, done=True),
        HumanTask.created_at,
        HumanTask.claimed_at,
        HumanTask.completed_at,
        HumanTask.due_at,
        HumanTask.round,
    ).where(*done_filter)
    done = []
    for task_id, key, created, claimed_at, completed, due, round in session.execute(query):
        # Without claim events (history written before they existed) the row's claimed_at is the best we know.
        first, last = moments.get(task_id, (claimed_at or completed, claimed_at or completed))
        first = min(max(first, created), completed)
        last = min(max(last, first), completed)
        done.append(
            _DoneTask(
                key=key,
                queue=(first - created).total_seconds(),
                claimed=(last - first).total_seconds(),
                working=(completed - last).total_seconds(),
                due_met=None if due is None else completed <= due,
                reworked=round > 1,
            )
        )
    return done


def _open_counts(
    session: Session, *, as_of: datetime, group_by: GroupBy, person: str | None
) -> list[tuple[str | None, int, int]]:
    """Return (group, open, overdue) as of a moment: created before it and not ended by then."""
    key = _group_column(group_by, done=False)
    not_ended = or_(
        HumanTask.completed_at >= as_of,
        # An ended task without an end time (cancelled before cancelling recorded one) is not open.
        and_(HumanTask.completed_at.is_(None), HumanTask.state.in_(sorted(ACTIVE_STATES))),
    )
    query = select(key, func.count(), func.sum(case((HumanTask.due_at < as_of, 1), else_=0))).where(
        HumanTask.created_at < as_of,
        not_ended,
    )
    if person is not None:
        query = query.where(HumanTask.assignee == person)
    return [(group, count, int(overdue or 0)) for group, count, overdue in session.execute(query.group_by(key))]


def compute_kpis(
    session: Session, *, start: datetime, end: datetime, group_by: GroupBy, now: datetime, person: str | None = None
) -> KpiReport:
    """Compute the KPIs of every group over [start, end); with person, that person's row alone (by person only)."""
    if person is not None and group_by is not GroupBy.PERSON:
        raise ValueError(f"one person's KPIs are grouped by person, not by {group_by.value}")
    as_of = min(end, now)
    groups: dict[str | None, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for task in _done_tasks(session, start=start, end=end, group_by=group_by, person=person):
        groups[task.key].done.append(task)
        total.done.append(task)
    for key, count, overdue in _open_counts(session, as_of=as_of, group_by=group_by, person=person):
        groups[key].open += count
        groups[key].overdue += overdue
        total.open += count
        total.overdue += overdue
    if person is not None:
        rows = [groups[person].row(person)]
    else:
        # Unassigned open tasks belong to no person; the total still counts them.
        rows = [groups[key].row(key) for key in sorted(k for k in groups if k is not None)]
    return KpiReport(start=start, end=end, as_of=as_of, group_by=group_by, rows=rows, total=total.row(TOTAL_KEY))


def kpis_for(
    session: Session, *, principal: Principal, start: datetime, end: datetime, group_by: GroupBy, now: datetime
) -> KpiReport:
    """Return the KPIs the caller may see: managers every group, anyone else their own person row."""
    if access.may_watch_the_team(principal):
        return compute_kpis(session, start=start, end=end, group_by=group_by, now=now)
    if group_by is not GroupBy.PERSON:
        raise Forbidden(
            f"only managers may see KPIs by {group_by.value}; {principal.name} may ask group_by=person for their own",
            group_by=group_by.value,
        )
    return compute_kpis(session, start=start, end=end, group_by=group_by, now=now, person=principal.name)
