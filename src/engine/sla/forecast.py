"""Breach forecast: when each open task will likely be done, from its role's queue and recent throughput.

A role that finished n tasks in the last W days works at n / W. Its open tasks are served in
inbox order (due time, nulls last; priority, highest first; creation; id), so the k-th one
(0-based) is expected done at now + (k + 1) / throughput, and is at risk when that is after its
due time. A role that finished nothing has no forecast: its tasks are at risk once overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState

# A moved forecast is rewritten only past this: it is an estimate, and rewriting every open row each sweep is not cheap.
RESTATE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class QueuedTask:
    """An open task in its role's queue, with the forecast stored for it."""

    id: str
    due_at: datetime | None
    expected_finish_at: datetime | None
    at_risk: bool


@dataclass(frozen=True)
class Forecast:
    """When a task is expected done, and whether that misses its due time."""

    task_id: str
    expected_finish_at: datetime | None
    at_risk: bool


def role_throughput(session: Session, *, now: datetime, window: timedelta) -> dict[str, float]:
    """Return each role's completed tasks per second over the window before now."""
    query = (
        select(HumanTask.role, func.count())
        .where(
            HumanTask.state == TaskState.COMPLETED, HumanTask.completed_at >= now - window, HumanTask.completed_at < now
        )
        .group_by(HumanTask.role)
    )
    seconds = window.total_seconds()
    return {role: count / seconds for role, count in session.execute(query)}


def forecast_queue(queue: list[QueuedTask], *, throughput: float, now: datetime) -> list[Forecast]:
    """Forecast a role's queue, given in service order."""
    if throughput <= 0:
        return [Forecast(t.id, None, t.due_at is not None and t.due_at < now) for t in queue]
    forecasts = []
    for position, task in enumerate(queue):
        finish = now + timedelta(seconds=(position + 1) / throughput)
        forecasts.append(Forecast(task.id, finish, task.due_at is not None and finish > task.due_at))
    return forecasts


def _queue_of(session: Session, role: str) -> list[QueuedTask]:
    query = (
        select(HumanTask.id, HumanTask.due_at, HumanTask.expected_finish_at, HumanTask.at_risk)
        .where(HumanTask.role == role, HumanTask.state.in_(sorted(ACTIVE_STATES)))
        .order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.priority.desc(), HumanTask.created_at, HumanTask.id)
    )
    return [QueuedTask(*row) for row in session.execute(query)]


def _changed(stored: QueuedTask, new: Forecast) -> bool:
    if stored.at_risk != new.at_risk:
        return True
    if stored.expected_finish_at is None or new.expected_finish_at is None:
        return stored.expected_finish_at != new.expected_finish_at
    return abs(stored.expected_finish_at - new.expected_finish_at) >= RESTATE_AFTER


def refresh_forecasts(session: Session, *, now: datetime) -> int:
    """Store every open task's forecast, writing only the rows whose forecast changed; return how many."""
    throughput = role_throughput(session, now=now, window=timedelta(days=get_settings().forecast_window_days))
    roles = session.scalars(select(HumanTask.role).where(HumanTask.state.in_(sorted(ACTIVE_STATES))).distinct())
    changes = []
    for role in sorted(roles):
        queue = _queue_of(session, role)
        for stored, new in zip(
            queue, forecast_queue(queue, throughput=throughput.get(role, 0.0), now=now), strict=True
        ):
            if _changed(stored, new):
                changes.append(
                    {"id": new.task_id, "expected_finish_at": new.expected_finish_at, "at_risk": new.at_risk}
                )
    if changes:
        # By primary key, in one executemany; the version stays: a forecast is not a change users race on.
        session.execute(update(HumanTask), changes)
    return len(changes)
