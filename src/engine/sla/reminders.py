"""Daily reminders for steps that chase a decision (e.g. an event's review result)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.tasks.states import ACTIVE_STATES

DAILY = timedelta(days=1)


def _daily_steps(definitions: Definitions) -> list[tuple[str, str]]:
    return [(p.key, s.key) for p in definitions.processes.values() for s in p.steps if s.reminder == "daily"]


def _same_last_reminder(value: datetime | None):
    return HumanTask.last_reminded_at.is_(None) if value is None else HumanTask.last_reminded_at == value


def send_daily_reminders(
    session: Session, *, definitions: Definitions, now: datetime, limit: int = 200
) -> list[HumanTask]:
    """Remind once a day about every open task of a step marked `reminder: daily`."""
    steps = _daily_steps(definitions)
    if not steps:
        return []
    cutoff = now - DAILY
    query = (
        select(HumanTask)
        .where(
            HumanTask.state.in_(sorted(ACTIVE_STATES)),
            or_(*[and_(HumanTask.process_key == p, HumanTask.step_key == s) for p, s in steps]),
            func.coalesce(HumanTask.last_reminded_at, HumanTask.created_at) <= cutoff,
        )
        .limit(limit)
    )
    reminded = []
    for task in session.scalars(query):
        # Compare-and-set on the last reminder: two sweepers never remind twice.
        moved = session.execute(
            update(HumanTask)
            .where(HumanTask.id == task.id, _same_last_reminder(task.last_reminded_at))
            .values(last_reminded_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            continue
        record_event(
            session,
            type="task.reminded",
            actor=SYSTEM_ACTOR,
            instance_id=task.instance_id,
            task_id=task.id,
            data={"step": task.step_key, "assignee": task.assignee, "role": task.role},
            at=now,
        )
        reminded.append(task)
    return reminded
