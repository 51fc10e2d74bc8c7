"""Four-eyes: nobody acts on an approval of work they did themselves, whatever the flow passed.

Who may not act on a task = the users the flow stored on it (excluded_users) and, for an
approval step, everyone who completed the step it approves (flows.yaml `approves`) in the
same instance, in any round or lane.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.definitions.versions import step_of_task
from ecomflow.engine.errors import DefinitionMissing, FourEyesViolation

__all__ = ["approved_step_of", "check_four_eyes", "four_eyes_violation", "who_did_approved_work"]


def approved_step_of(session: Session, task: HumanTask) -> str | None:
    """Return the key of the step whose work this task approves (as its instance's version says), or None."""
    if task.kind != "approval":
        return None  # only approval steps approve anything (steps.py): no need to read the version
    try:
        step = step_of_task(session, task)
    except DefinitionMissing:
        # A task of a step its version does not define (or a version not stored) keeps only what the flow stored.
        return None
    return step.approves


def four_eyes_violation(session: Session, *, task: HumanTask, user: str) -> str | None:
    """Return the sentence saying why the user may not act on the task, or None if they may."""
    approved = approved_step_of(session, task)
    if approved is not None and _completed_approved_work(session, task=task, approved=approved, user=user):
        return (
            f"four-eyes rule: {user} did {approved} that {task.step_key} approves "
            f"(task {task.id}) and may not act on it"
        )
    if user in (task.excluded_users or []):
        return (
            f"four-eyes rule: {user} did the work that {task.step_key} approves (task {task.id}) and may not act on it"
        )
    return None


def check_four_eyes(session: Session, *, task: HumanTask, user: str) -> None:
    """Raise FourEyesViolation if the user did the work this task approves."""
    violation = four_eyes_violation(session, task=task, user=user)
    if violation is not None:
        raise FourEyesViolation(violation, task_id=task.id, user=user)


def _completed_approved_work(session: Session, *, task: HumanTask, approved: str, user: str) -> bool:
    query = (
        select(HumanTask.id)
        .where(
            HumanTask.instance_id == task.instance_id,
            HumanTask.step_key == approved,
            # completed_by is only ever set by a completion; no state test, so the (instance, step) index serves it.
            HumanTask.completed_by == user,
        )
        .limit(1)
    )
    return session.scalar(query) is not None


def who_did_approved_work(session: Session, *, instance_id: str, approved: str | None) -> set[str]:
    """Return everyone who completed the approved step in the instance (any round or lane): an approval's exclusions."""
    if approved is None:
        return set()
    query = select(HumanTask.completed_by).where(
        HumanTask.instance_id == instance_id,
        HumanTask.step_key == approved,
        HumanTask.completed_by.is_not(None),
    )
    return set(session.scalars(query))
