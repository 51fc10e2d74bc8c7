"""The one door for a task's state: every move is the state machine's compare-and-set plus one audit event.

claim, release, assign, delegate, complete, cancel, expire and the escalation's release all come
through `move_task` (or, for the common claim, `claim_if_open`); no other module writes
human_tasks.state (tests/engine/tasks/test_moves.py reads the source to make sure). Every move
writes an event `task.<past tense>` whose data has one shape:
    {"from", "to", "action", "actor", "reason", "at", "assignee", "previous_assignee"}
with `assignee` the holder after the move. The KPIs read the moves that put a person on a task
from `HOLDING_EVENT_TYPES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ecomflow.engine.access import tasks_workable_by
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.errors import AlreadyClaimed, VersionMismatch
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.tasks.states import PAST_TENSE, TRANSITIONS, TaskAction, TaskState, next_state

# The moves after which a person holds the task: a claim, an assignment, a delegation.
HOLDING_ACTIONS = tuple(dict.fromkeys(action for (_, action), to in TRANSITIONS.items() if to is TaskState.CLAIMED))
HOLDING_EVENT_TYPES = tuple(f"task.{PAST_TENSE[action]}" for action in HOLDING_ACTIONS)
_ENDING_ACTIONS = frozenset({TaskAction.COMPLETE, TaskAction.CANCEL, TaskAction.EXPIRE})
_UNCHANGED: Any = object()


def event_type(action: TaskAction) -> str:
    """Return the audit event type of a move."""
    return f"task.{PAST_TENSE[action]}"


def move_task(
    session: Session,
    task: HumanTask,
    action: TaskAction,
    *,
    actor: str,
    reason: str = "",
    assignee: str | None = _UNCHANGED,
    output: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> HumanTask:
    """Move the task from the state it was read in; raise if the move is illegal or someone moved it meanwhile."""
    moved = try_move_task(session, task, action, actor=actor, reason=reason, assignee=assignee, output=output, at=at)
    if moved is None:
        current = session.get(HumanTask, task.id, populate_existing=True)
        if action is TaskAction.CLAIM and current is not None and current.state == TaskState.CLAIMED:
            raise AlreadyClaimed(
                f"task {task.id} is already claimed by {current.assignee}", task_id=task.id, assignee=current.assignee
            )
        raise VersionMismatch(
            f"task {task.id} changed meanwhile (now {current.state if current else 'gone'}); reload and retry",
            task_id=task.id,
        )
    return moved


def try_move_task(
    session: Session,
    task: HumanTask,
    action: TaskAction,
    *,
    actor: str,
    reason: str = "",
    assignee: str | None = _UNCHANGED,
    output: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> HumanTask | None:
    """Move the task with a compare-and-set on (state, version); return None if someone moved it first."""
    from_state = task.state
    target = next_state(from_state, action, task_id=task.id)
    at = at or utcnow()
    values = _values_of(action, actor=actor, assignee=assignee, output=output, at=at)
    result = session.execute(
        update(HumanTask)
        .where(HumanTask.id == task.id, HumanTask.state == from_state, HumanTask.version == task.version)
        .values(state=target, version=HumanTask.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    previous = task.assignee
    # The row now holds exactly these values: set them on the object instead of reading the row back.
    for key, value in {"state": target, "version": task.version + 1, **values}.items():
        set_committed_value(task, key, value)
    record_move(
        session, task, action, actor=actor, from_state=from_state, reason=reason, at=at, previous_assignee=previous
    )
    return task


def _values_of(
    action: TaskAction, *, actor: str, assignee: str | None, output: dict[str, Any] | None, at: datetime
) -> dict[str, Any]:
    """Return the columns a move sets besides state and version."""
    if action is TaskAction.CLAIM:
        return {"assignee": actor if assignee is _UNCHANGED else assignee, "claimed_at": at}
    if action in (TaskAction.ASSIGN, TaskAction.DELEGATE):
        return {"assignee": assignee, "claimed_at": at}
    if action is TaskAction.RELEASE:
        return {"assignee": None, "claimed_at": None}
    if action is TaskAction.COMPLETE:
        return {"output": output, "completed_by": actor, "completed_at": at}
    # completed_at is when a task ended, whatever the ending: the KPIs count open tasks by it.
    return {"completed_at": at} if action in _ENDING_ACTIONS else {}


def record_move(
    session: Session,
    task: HumanTask,
    action: TaskAction,
    *,
    actor: str,
    from_state: str,
    reason: str,
    at: datetime,
    previous_assignee: str | None,
) -> None:
    """Write the audit event of a move, in the move's transaction, in the one shape every reader expects."""
    record_event(
        session,
        type=event_type(action),
        actor=actor,
        instance_id=task.instance_id,
        task_id=task.id,
        at=at,
        data={
            "from": str(from_state),
            "to": str(task.state),
            "action": action.value,
            "actor": actor,
            "reason": reason,
            "at": at.isoformat(),
            "assignee": task.assignee,
            "previous_assignee": previous_assignee,
        },
    )


def _claim_statement(*, any_role: bool) -> Any:
    """Build the one-statement claim once: open, and (unless the caller is a manager) of a role they hold."""
    table = HumanTask.__table__
    holdable = [] if any_role else [tasks_workable_by(bindparam("roles", expanding=True))]
    # A row another claim holds locked is skipped, not waited for: the checked path then answers. Queued
    # behind the winner on PostgreSQL, 64 claimers per task took twice as long (tests/engine/tasks/test_races.py).
    open_and_free = (
        select(table.c.id)
        .where(table.c.id == bindparam("task_id"), table.c.state == TaskState.OPEN.value)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claim = (
        update(table)
        .where(table.c.id == open_and_free, *holdable)
        .values(
            state=next_state(TaskState.OPEN, TaskAction.CLAIM, task_id=""),
            version=table.c.version + 1,
            assignee=bindparam("assignee"),
            claimed_at=bindparam("claimed_at"),
        )
        .returning(*table.c)
    )
    # Loaded as the object the callers present, refreshing one this session already holds.
    return select(HumanTask).from_statement(claim).execution_options(populate_existing=True)


# Built once: composing the statement per call cost as much as running it (profiled).
_CLAIM_BY_ROLE = _claim_statement(any_role=False)
_CLAIM_ANY = _claim_statement(any_role=True)


def claim_if_open(session: Session, *, task_id: str, claimant: str, roles: Iterable[str] | None) -> HumanTask | None:
    """Claim the task in one statement if it is open and of one of the roles (None: any role); None otherwise."""
    at = utcnow()
    values: dict[str, Any] = {"task_id": task_id, "assignee": claimant, "claimed_at": at}
    if roles is not None:
        values["roles"] = sorted(roles)
    task = session.scalars(_CLAIM_ANY if roles is None else _CLAIM_BY_ROLE, values).one_or_none()
    if task is not None:
        record_move(
            session,
            task,
            TaskAction.CLAIM,
            actor=claimant,
            from_state=TaskState.OPEN.value,
            reason="",
            at=at,
            previous_assignee=None,
        )
    return task
