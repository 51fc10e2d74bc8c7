"""Where a process's cases wait now: per step, how many are open there and the median time they have waited."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, ProcessInstance, Timer
from ecomflow.engine.tasks.states import ACTIVE_STATES

__all__ = ["StepHeat", "measure_step_heat"]

_ACTIVE_INSTANCE = ("running", "waiting")


@dataclass(frozen=True)
class StepHeat:
    """Open tasks (or armed timers) at one step, and the median of how long they have waited so far."""

    step_key: str
    open: int
    median_wait: timedelta


def measure_step_heat(session: Session, *, process_key: str, now: datetime) -> dict[str, StepHeat]:
    """Return the heat of every step of the process that has something open, by step key (all versions together)."""
    opened: dict[str, list[datetime]] = defaultdict(list)
    tasks = select(HumanTask.step_key, HumanTask.instance_id, HumanTask.created_at).where(
        HumanTask.process_key == process_key, HumanTask.state.in_(sorted(ACTIVE_STATES))
    )
    # A parallel step's lanes are one case waiting: its wait counts from its first lane's task.
    first_of_case: dict[tuple[str, str], datetime] = {}
    for step_key, instance_id, created_at in session.execute(tasks):
        key = (step_key, instance_id)
        first_of_case[key] = min(created_at, first_of_case.get(key, created_at))
    timers = (
        select(Timer.step_key, Timer.instance_id, Timer.created_at)
        .join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
        .where(
            ProcessInstance.process_key == process_key,
            ProcessInstance.state.in_(_ACTIVE_INSTANCE),
            Timer.fired_at.is_(None),
        )
    )
    for step_key, instance_id, created_at in session.execute(timers):
        first_of_case[(step_key, instance_id)] = created_at
    for (step_key, _), since in first_of_case.items():
        opened[step_key].append(since)
    return {
        step: StepHeat(
            step_key=step,
            open=len(times),
            median_wait=timedelta(seconds=median((now - t).total_seconds() for t in times)),
        )
        for step, times in opened.items()
    }
