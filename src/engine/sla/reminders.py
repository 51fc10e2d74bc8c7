"""Daily reminders for steps that chase a decision (e.g. an event's review result)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.definitions.versions import definitions_at
from ecomflow.engine.errors import DefinitionMissing
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.lifecycle import ACTIVE_INSTANCE_STATES
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.tasks.states import ACTIVE_STATES

DAILY = timedelta(days=1)


def _daily_steps(session: Session) -> list[ColumnElement[bool]]:
    """Return a condition per (process, version) of active instances on its steps marked `reminder: daily`."""
    pinned = session.execute(
        select(ProcessInstance.process_key, ProcessInstance.definition_version)
        .where(ProcessInstance.state.in_(sorted(ACTIVE_INSTANCE_STATES)))
        .distinct()
    )
    conditions = []
    for process_key, version in pinned.all():
        try:
            spec = definitions_at(session, process_key, version).process(process_key)
        except DefinitionMissing:
            continue  # a version not stored: its tasks keep their due-time reminders only
        daily = [s.key for s in spec.steps if s.reminder == "daily"]
        if daily:
            conditions.append(
                and_(
                    ProcessInstance.process_key == process_key,
                    ProcessInstance.definition_version == version,
                    HumanTask.step_key.in_(daily),
                )
            )
    return conditions


def _same_last_reminder(value: datetime | None):
    return HumanTask.last_reminded_at.is_(None) if value is None else HumanTask.last_reminded_at == value


def send_daily_reminders(session: Session, *, now: datetime, limit: int = 200) -> list[HumanTask]:
    """Remind once a day about every open task of a step its instance's version marks `reminder: daily`."""
    steps = _daily_steps(session)
    if not steps:
        return []
    cutoff = now - DAILY
    query = (
        select(HumanTask)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(
            HumanTask.state.in_(sorted(ACTIVE_STATES)),
            or_(*steps),
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
