"""What an instance's flow run can be suspended on, as our database knows it: its active tasks and unfired timers."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, Timer
from ecomflow.engine.tasks.states import ACTIVE_STATES


def has_other_wait(session: Session, *, instance_id: str, task_id: str | None) -> bool:
    """Return whether the instance waits on anything besides this task: another active task or an unfired timer."""
    other_task = select(HumanTask.id).where(HumanTask.instance_id == instance_id, HumanTask.state.in_(ACTIVE_STATES))
    if task_id is not None:
        other_task = other_task.where(HumanTask.id != task_id)
    unfired_timer = select(Timer.id).where(Timer.instance_id == instance_id, Timer.fired_at.is_(None))
    return bool(session.scalar(select(exists(other_task) | exists(unfired_timer))))
