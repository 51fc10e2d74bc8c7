"""What a running flow asks of the engine: its tasks (made once per step and round) and once-only results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.definitions.processes import StepSpec
from ecomflow.engine.definitions.versions import definitions_of_instance
from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.lifecycle import InstanceState, get_instance, set_instance_state
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.sla.sweeps import due_times
from ecomflow.engine.tasks.four_eyes import who_did_approved_work
from ecomflow.engine.tasks.moves import try_move_task
from ecomflow.engine.tasks.states import TaskAction, TaskState


def open_task(
    session: Session,
    *,
    instance_id: str,
    step: StepSpec,
    round: int = 1,
    lane: str = "",
    context: dict[str, Any] | None = None,
    excluded_users: Sequence[str] = (),
    now: datetime | None = None,
) -> HumanTask:
    """Return the task of (instance, step, round, lane), creating it the first time only; `step` is of its version."""
    existing = find_task(session, instance_id=instance_id, step_key=step.key, round=round, lane=lane)
    if existing is not None:
        return existing
    instance = get_instance(session, instance_id)
    now = now or utcnow()
    definitions = definitions_of_instance(session, instance)
    # Due, reminder and escalation count the step's clock; the parcel wait (expires) stays wall time.
    times = due_times(calendar=definitions.calendar, step=step, sla=definitions.sla, now=now)
    task = HumanTask(
        instance_id=instance_id,
        process_key=instance.process_key,
        step_key=step.key,
        kind=step.kind,
        round=round,
        lane=lane,
        # A parallel step's lane is its role; the rework-ceiling step's lane names the step that hit it.
        role=step.role or lane,
        state=TaskState.OPEN,
        # Stored on the task so the inbox offers it to nobody four-eyes keeps from it (engine/access.py).
        excluded_users=sorted(
            set(excluded_users) | who_did_approved_work(session, instance_id=instance_id, approved=step.approves)
        ),
        priority=step.priority,
        due_at=times.due_at,
        remind_at=times.remind_at,
        escalate_at=times.escalate_at,
        expires_at=now + step.expires if step.expires else None,
        context=context or {},
        created_at=now,
    )
    if not insert_unless_exists(session, task):
        # A concurrent replay made it first: use that one.
        return find_task(session, instance_id=instance_id, step_key=step.key, round=round, lane=lane)
    record_event(
        session,
        type="task.created",
        actor=SYSTEM_ACTOR,
        instance_id=instance_id,
        task_id=task.id,
        data={"step": step.key, "round": round, "role": task.role},
        at=now,
    )
    set_instance_state(session, instance=instance, state=InstanceState.WAITING)
    return task


def find_task(session: Session, *, instance_id: str, step_key: str, round: int, lane: str = "") -> HumanTask | None:
    """Return the task of (instance, step, round, lane) if it exists."""
    query = select(HumanTask).where(
        HumanTask.instance_id == instance_id,
        HumanTask.step_key == step_key,
        HumanTask.round == round,
        HumanTask.lane == lane,
    )
    return session.scalar(query.execution_options(populate_existing=True))


def task_pause_prefix(task_id: str) -> str:
    """Return the start of every pause key used while waiting on this task."""
    return f"task:{task_id}:"


def pause_key(task: HumanTask) -> str:
    """Return the key the flow suspends with while waiting on this task."""
    return f"{task_pause_prefix(task.id)}{task.suspend_seq}"


def note_resume_without_completion(session: Session, *, task_id: str) -> HumanTask:
    """Record a resume that came while the task is still open, so the flow can suspend anew."""
    session.execute(
        update(HumanTask)
        .where(HumanTask.id == task_id)
        .values(suspend_seq=HumanTask.suspend_seq + 1)
        .execution_options(synchronize_session=False)
    )
    task = session.get(HumanTask, task_id, populate_existing=True)
    record_event(
        session,
        type="task.resumed_while_open",
        actor=SYSTEM_ACTOR,
        instance_id=task.instance_id,
        task_id=task.id,
        data={"detail": "the run was resumed outside ecomflow; it waits again for this task"},
    )
    return task


def expire_due_tasks(session: Session, *, now: datetime, limit: int = 100) -> list[HumanTask]:
    """Expire active tasks whose expiry time has passed; each expiry queues its flow's resume."""
    due = list(
        session.scalars(
            select(HumanTask)
            .where(HumanTask.state.in_([TaskState.OPEN, TaskState.CLAIMED]), HumanTask.expires_at <= now)
            .order_by(HumanTask.expires_at)
            .limit(limit)
        )
    )
    expired = []
    for task in due:
        # A task completed a moment ago stays completed: the compare-and-set loses and nothing happens.
        if try_move_task(session, task, TaskAction.EXPIRE, actor=SYSTEM_ACTOR, reason="expired", at=now) is None:
            continue
        outbox.enqueue_resume(
            session, instance_id=task.instance_id, pause_key_prefix=task_pause_prefix(task.id), task_id=task.id
        )
        expired.append(task)
    return expired
