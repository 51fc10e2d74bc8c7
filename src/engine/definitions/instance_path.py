"""Trace one instance's path over its own definition version: what each step has done, holds or is yet to do.

A step is `done` when it has a completed (or expired) task, a stored auto-step result, a fired
timer or started children; `current` while it has an open task or an armed timer; `skipped` when
nothing happened at it but a later step did (a condition that did not hold), or the instance
ended before it; `pending` otherwise. `rounds` counts the rounds of a step a reject loop redid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, ProcessInstance, StepResult, Timer
from ecomflow.engine.definitions.processes import ProcessSpec, StepSpec
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState

__all__ = ["ChildCase", "Holder", "InstancePath", "StepOnPath", "trace_path"]

DONE, CURRENT, SKIPPED, PENDING = "done", "current", "skipped", "pending"
_ACTIVE_INSTANCE = ("running", "waiting")
_FINISHED_TASK = (TaskState.COMPLETED, TaskState.EXPIRED)


@dataclass(frozen=True)
class Holder:
    """Who has an open task of a step (None: it waits in its role's queue), since when, and its lane."""

    task_id: str
    role: str
    assignee: str | None
    since: datetime
    lane: str = ""


@dataclass(frozen=True)
class ChildCase:
    """A child instance a child step started."""

    id: str
    process_key: str
    business_key: str
    state: str


@dataclass(frozen=True)
class StepOnPath:
    """One step of the instance's version and where the instance stands at it."""

    key: str
    state: str
    rounds: int = 0
    holders: tuple[Holder, ...] = ()
    lane_states: Mapping[str, str] = field(default_factory=dict)
    children: tuple[ChildCase, ...] = ()
    waits_until: datetime | None = None


@dataclass(frozen=True)
class InstancePath:
    """The path of one instance; `unplaced` are steps with tasks that its version does not define."""

    instance_id: str
    steps: tuple[StepOnPath, ...]
    unplaced: tuple[str, ...] = ()

    def step(self, key: str) -> StepOnPath:
        """Return where the instance stands at a step."""
        return next(step for step in self.steps if step.key == key)


def trace_path(session: Session, instance: ProcessInstance, spec: ProcessSpec) -> InstancePath:
    """Return the instance's path over `spec`, the spec of its pinned version."""
    tasks = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance.id).order_by(HumanTask.created_at, HumanTask.id)
    ).all()
    tasks_of: dict[str, list[HumanTask]] = defaultdict(list)
    for task in tasks:
        tasks_of[task.step_key].append(task)
    results = session.scalars(select(StepResult.step_key).where(StepResult.instance_id == instance.id)).all()
    timers = {t.step_key: t for t in session.scalars(select(Timer).where(Timer.instance_id == instance.id))}
    children: dict[str, list[ChildCase]] = defaultdict(list)
    for child in session.scalars(
        select(ProcessInstance).where(ProcessInstance.parent_id == instance.id).order_by(ProcessInstance.created_at)
    ):
        children[child.parent_step or ""].append(
            ChildCase(id=child.id, process_key=child.process_key, business_key=child.business_key, state=child.state)
        )
    seen = [
        _step_seen(step, tasks_of.get(step.key, []), results.count(step.key), timers.get(step.key), children)
        for step in spec.steps
    ]
    last_active = max((i for i, step in enumerate(seen) if step.state in (DONE, CURRENT)), default=-1)
    ended = instance.state not in _ACTIVE_INSTANCE
    placed = [
        step
        if step.state in (DONE, CURRENT)
        else replace(step, state=SKIPPED if ended or index < last_active else PENDING)
        for index, step in enumerate(seen)
    ]
    unplaced = tuple(sorted(set(tasks_of) - {s.key for s in spec.steps}))
    return InstancePath(instance_id=instance.id, steps=tuple(placed), unplaced=unplaced)


def _step_seen(
    step: StepSpec,
    tasks: list[HumanTask],
    results: int,
    timer: Timer | None,
    children: Mapping[str, list[ChildCase]],
) -> StepOnPath:
    """Return what happened at one step, as done, current or (not yet placed) pending."""
    if step.kind == "auto":
        return StepOnPath(key=step.key, state=DONE if results else PENDING, rounds=results)
    if step.kind == "timer":
        if timer is None:
            return StepOnPath(key=step.key, state=PENDING)
        state = DONE if timer.fired_at is not None else CURRENT
        return StepOnPath(key=step.key, state=state, rounds=timer.round, waits_until=timer.fire_at)
    if step.kind == "child":
        started = tuple(children.get(step.key, ()))
        return StepOnPath(key=step.key, state=DONE if started else PENDING, children=started)
    active = [t for t in tasks if t.state in ACTIVE_STATES]
    finished = [t for t in tasks if t.state in _FINISHED_TASK]
    state = CURRENT if active else DONE if finished else PENDING
    holders = tuple(
        Holder(
            task_id=t.id,
            role=t.role,
            assignee=t.assignee,
            since=(t.claimed_at or t.created_at) if t.assignee else t.created_at,
            lane=t.lane,
        )
        for t in active
    )
    return StepOnPath(
        key=step.key,
        state=state,
        rounds=max((t.round for t in tasks), default=0),
        holders=holders,
        lane_states=MappingProxyType(_lane_states(tasks)),
    )


def _lane_states(tasks: list[HumanTask]) -> dict[str, str]:
    """Return each lane's state in its latest round: current while a task is open, done once finished."""
    latest: dict[str, HumanTask] = {}
    for task in tasks:
        if task.lane and (task.lane not in latest or task.round >= latest[task.lane].round):
            latest[task.lane] = task
    return {
        lane: CURRENT if task.state in ACTIVE_STATES else DONE if task.state in _FINISHED_TASK else PENDING
        for lane, task in latest.items()
    }
