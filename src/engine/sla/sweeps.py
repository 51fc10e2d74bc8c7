"""Service levels of human tasks: due times in business time, and the sweeps that remind, flag and escalate.

Every sweep marks a task with a compare-and-set on the moment it records (reminded_at, overdue_at,
escalated_at): any number of sweepers, threads or processes, SQLite or PostgreSQL, do each step
exactly once, and each change commits with its audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.definitions.business_calendar import WALL_CLOCK, BusinessCalendar
from ecomflow.engine.definitions.processes import StepSpec
from ecomflow.engine.definitions.sla_policy import MANAGERS, Escalation, SlaPolicy
from ecomflow.engine.definitions.versions import step_of_task
from ecomflow.engine.errors import DefinitionMissing
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.tasks.moves import try_move_task
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskAction, TaskState

__all__ = [
    "BATCH_SIZE",
    "DueTimes",
    "SweepBatch",
    "clock_of",
    "due_times",
    "escalate_overdue_tasks",
    "flag_overdue_tasks",
    "remind_due_tasks",
]

BATCH_SIZE = 100
_ACTIVE = sorted(ACTIVE_STATES)


@dataclass(frozen=True, kw_only=True)
class DueTimes:
    """When a new task is due, when to remind about it and when to escalate it (None: never)."""

    due_at: datetime | None = None
    remind_at: datetime | None = None
    escalate_at: datetime | None = None


@dataclass(frozen=True)
class SweepBatch:
    """One batch of a sweep: the tasks this sweeper changed, and whether the batch was full."""

    changed: tuple[str, ...]
    full: bool

    @property
    def more_may_be_due(self) -> bool:
        """Tell whether another batch is worth running; a batch that changed nothing ends the loop."""
        return self.full and bool(self.changed)


def clock_of(step: StepSpec, calendar: BusinessCalendar) -> BusinessCalendar:
    """Return the clock the step's due times count in: the business calendar, or every minute for `clock: wall`."""
    return WALL_CLOCK if step.clock == "wall" else calendar


def due_times(*, calendar: BusinessCalendar, step: StepSpec, sla: SlaPolicy, now: datetime) -> DueTimes:
    """Return the due, reminder and escalation times of a task of this step opened now."""
    if step.due is None:
        return DueTimes()
    clock = clock_of(step, calendar)
    due_at = clock.add(now, step.due)
    escalate_at = None
    if step.escalate is not None:
        escalate_at = clock.add(due_at, step.escalate.after) if step.escalate.after else due_at
    return DueTimes(due_at=due_at, remind_at=clock.fraction_of(now, due_at, sla.remind_at), escalate_at=escalate_at)


def remind_due_tasks(session: Session, *, now: datetime, limit: int = BATCH_SIZE) -> SweepBatch:
    """Remind once about each active task past its reminder time and not yet due."""
    due = (
        HumanTask.state.in_(_ACTIVE),
        HumanTask.reminded_at.is_(None),
        HumanTask.remind_at <= now,
        # Past its due time the overdue event says more than a reminder would.
        HumanTask.due_at > now,
    )
    tasks, full = _mark_due_tasks(session, due=due, order=HumanTask.remind_at, values={"reminded_at": now}, limit=limit)
    for task in tasks:
        _record(session, task, "task.reminded", now, reason="due_soon")
    return SweepBatch(tuple(t.id for t in tasks), full)


def flag_overdue_tasks(session: Session, *, now: datetime, limit: int = BATCH_SIZE) -> SweepBatch:
    """Mark each active task past its due time as overdue, once."""
    due = (HumanTask.state.in_(_ACTIVE), HumanTask.overdue_at.is_(None), HumanTask.due_at <= now)
    tasks, full = _mark_due_tasks(session, due=due, order=HumanTask.due_at, values={"overdue_at": now}, limit=limit)
    for task in tasks:
        _record(session, task, "task.overdue", now)
    return SweepBatch(tuple(t.id for t in tasks), full)


def escalate_overdue_tasks(session: Session, *, now: datetime, limit: int = BATCH_SIZE) -> SweepBatch:
    """Escalate each active task past its escalation time, once; release it back to the queue if the step says so."""
    due = (HumanTask.state.in_(_ACTIVE), HumanTask.escalated_at.is_(None), HumanTask.escalate_at <= now)
    candidates = _select_due(session, due=due, order=HumanTask.escalate_at, limit=limit)
    escalated = []
    for candidate in candidates:
        escalation = _escalation_of(session, candidate)
        if not _mark(session, candidate.id, due=due, values={"escalated_at": now, "escalated_to": escalation.to}):
            continue
        task = _reread(session, candidate.id)
        _record(
            session,
            task,
            "task.escalated",
            now,
            to=escalation.to,
            release=escalation.release,
            previous_assignee=task.assignee,
        )
        if escalation.release and task.state == TaskState.CLAIMED:
            _release_for_escalation(session, task, now)
        escalated.append(task.id)
    return SweepBatch(tuple(escalated), len(candidates) == limit)


def _escalation_of(session: Session, task: HumanTask) -> Escalation:
    """Return the step's escalation in the instance's version; a step that version lacks goes to the managers."""
    try:
        step = step_of_task(session, task)
    except DefinitionMissing:  # a migrated instance's task, or a version not stored
        step = None
    # The task was promised an escalation when it opened: keep the promise rather than let it sit.
    return (step.escalate if step else None) or Escalation(to=MANAGERS)


def _release_for_escalation(session: Session, task: HumanTask, now: datetime) -> None:
    # This transaction holds the row since it marked it escalated: the compare-and-set cannot lose.
    try_move_task(session, task, TaskAction.RELEASE, actor=SYSTEM_ACTOR, reason="escalation", at=now)


def _select_due(session: Session, *, due: tuple[ColumnElement[bool], ...], order: Any, limit: int) -> list[HumanTask]:
    # A fixed order makes concurrent sweepers lock rows in the same order, so PostgreSQL never deadlocks them.
    query = select(HumanTask).where(*due).order_by(order, HumanTask.id).limit(limit)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def _mark(session: Session, task_id: str, *, due: tuple[ColumnElement[bool], ...], values: dict[str, Any]) -> bool:
    """Set values on the task if it is still due; return whether this caller won the compare-and-set."""
    moved = session.execute(
        update(HumanTask)
        .where(HumanTask.id == task_id, *due)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1


def _mark_due_tasks(
    session: Session, *, due: tuple[ColumnElement[bool], ...], order: Any, values: dict[str, Any], limit: int
) -> tuple[list[HumanTask], bool]:
    candidates = _select_due(session, due=due, order=order, limit=limit)
    marked = [_reread(session, task.id) for task in candidates if _mark(session, task.id, due=due, values=values)]
    return marked, len(candidates) == limit


def _reread(session: Session, task_id: str) -> HumanTask:
    # This transaction holds the row once it wrote to it: read who has it now, not at selection time.
    return session.get(HumanTask, task_id, populate_existing=True)


def _record(session: Session, task: HumanTask, type: str, now: datetime, **data: Any) -> None:
    record_event(
        session,
        type=type,
        actor=SYSTEM_ACTOR,
        instance_id=task.instance_id,
        task_id=task.id,
        at=now,
        data={
            **data,
            "step": task.step_key,
            "role": task.role,
            "assignee": task.assignee,
            "due_at": task.due_at.isoformat() if task.due_at else None,
        },
    )
