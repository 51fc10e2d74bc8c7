"""Human-task actions: claim, release, assign, complete, comment — each one transaction with its audit event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, TaskComment
from ecomflow.engine.definitions.forms import FieldProblem, validate_form
from ecomflow.engine.definitions.versions import step_of_task
from ecomflow.engine.errors import AlreadyClaimed, Forbidden, NotFound, ValidationFailed, VersionMismatch
from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.files.form_files import check_file_uses, find_file_uses, reference_file_uses
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import available_principal
from ecomflow.engine.tasks.four_eyes import check_four_eyes
from ecomflow.engine.tasks.moves import claim_if_open, move_task
from ecomflow.engine.tasks.states import TaskAction, TaskState, next_state
from ecomflow.engine.tasks.step_tasks import task_pause_prefix

MAX_COMMENT_CHARS = 5000


def get_visible_task(session: Session, task_id: str, *, principal: Principal) -> HumanTask:
    """Return a task the caller may see; a task they may not see does not exist for them."""
    task = session.get(HumanTask, task_id, populate_existing=True)
    if task is None or not access.may_see_task(principal, task):
        raise NotFound(f"task {task_id} does not exist", task_id=task_id)
    return task


def _check_receiver(
    session: Session, task: HumanTask, *, user: str, reason: str, reason_needed_for: str | None
) -> None:
    """Refuse handing the task to someone who cannot take it, or without a needed reason, naming each field."""
    problems: list[FieldProblem] = []
    if reason_needed_for is not None and not reason.strip():
        problems.append(FieldProblem("reason", "required", f"reason is required to {reason_needed_for}"))
    try:
        receiver = available_principal(session, user, field="user", now=utcnow())
    except ValidationFailed as unavailable:
        problems.extend(unavailable.problems)
    else:
        if not access.may_hold_task(receiver, task):
            problems.append(FieldProblem("user", "role", f"user {user} lacks role {access.required_roles_text(task)}"))
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=problems)
    check_four_eyes(session, task=task, user=user)


def claim_task(session: Session, *, task_id: str, principal: Principal) -> HumanTask:
    """Take an open task for oneself; exactly one concurrent claimer wins.

    The common case is one UPDATE ... RETURNING: open, and of a role the caller holds. A refusal
    found after it (four-eyes) raises, and the caller's transaction rolls the claim back with it.
    """
    roles = None if access.is_manager(principal) else principal.roles
    task = claim_if_open(session, task_id=task_id, claimant=principal.name, roles=roles)
    if task is None:
        _refuse_if_claimed(session, task_id=task_id, principal=principal)
        return _claim_checked(session, task_id=task_id, principal=principal)
    check_four_eyes(session, task=task, user=principal.name)
    return task


_HOLDER = select(HumanTask.state, HumanTask.assignee, HumanTask.role, HumanTask.escalated_to).where(
    HumanTask.id == bindparam("task_id")
)


def _refuse_if_claimed(session: Session, *, task_id: str, principal: Principal) -> None:
    """Name the holder of a task the caller could have claimed, from four columns: what most losers of a race get."""
    # Loading the whole task for this cost a losing claim as much as the claim itself (64 claimers per task).
    row = session.execute(_HOLDER, {"task_id": task_id}).one_or_none()
    # The row has the task's role, escalated_to and assignee, all the access checks read.
    if (
        row is not None
        and row.state == TaskState.CLAIMED
        and access.may_see_task(principal, row)
        and access.may_hold_task(principal, row)
    ):
        raise AlreadyClaimed(
            f"task {task_id} is already claimed by {row.assignee}", task_id=task_id, assignee=row.assignee
        )


def _claim_checked(session: Session, *, task_id: str, principal: Principal) -> HumanTask:
    """Claim after reading the task, refusing with the precise reason (missing, role, claimed, four-eyes)."""
    task = get_visible_task(session, task_id, principal=principal)
    if not access.may_hold_task(principal, task):
        raise Forbidden(
            f"task {task_id} is for role {access.required_roles_text(task)}; {principal.name} lacks it", task_id=task_id
        )
    if task.state == TaskState.CLAIMED:
        raise AlreadyClaimed(
            f"task {task_id} is already claimed by {task.assignee}", task_id=task_id, assignee=task.assignee
        )
    check_four_eyes(session, task=task, user=principal.name)
    return move_task(session, task, TaskAction.CLAIM, actor=principal.name)


def release_task(session: Session, *, task_id: str, principal: Principal, reason: str = "") -> HumanTask:
    """Put a claimed task back in its role's queue (its assignee or a manager)."""
    task = get_visible_task(session, task_id, principal=principal)
    if task.state == TaskState.CLAIMED and not access.may_release_task(principal, task):
        raise Forbidden(
            f"task {task_id} is claimed by {task.assignee}; only they or a manager may release it", task_id=task_id
        )
    return move_task(session, task, TaskAction.RELEASE, actor=principal.name, reason=reason)


def assign_task(session: Session, *, task_id: str, principal: Principal, user: str, reason: str = "") -> HumanTask:
    """Give a task to a named user who may work on it (managers only); taking it from its holder needs a reason."""
    task = get_visible_task(session, task_id, principal=principal)
    if not access.may_assign_tasks(principal):
        raise Forbidden(f"only managers may assign task {task_id}", task_id=task_id)
    next_state(task.state, TaskAction.ASSIGN, task_id=task.id)
    if task.state == TaskState.CLAIMED and task.assignee == user:
        return task  # already theirs: assigning again changes nothing
    reassigning = task.state == TaskState.CLAIMED
    _check_receiver(
        session,
        task,
        user=user,
        reason=reason,
        reason_needed_for=f"take task {task_id} from {task.assignee}" if reassigning else None,
    )
    return move_task(session, task, TaskAction.ASSIGN, actor=principal.name, assignee=user, reason=reason)


def delegate_task(session: Session, *, task_id: str, principal: Principal, user: str, reason: str) -> HumanTask:
    """Hand a claimed task to a colleague who may work on it (its holder or a manager), saying why."""
    task = get_visible_task(session, task_id, principal=principal)
    next_state(task.state, TaskAction.DELEGATE, task_id=task.id)
    if not access.may_delegate_task(principal, task):
        raise Forbidden(
            f"task {task_id} is held by {task.assignee}; only they or a manager may delegate it", task_id=task_id
        )
    if user == task.assignee:
        message = f"user {user} already holds task {task_id}; name a colleague"
        raise ValidationFailed(f"user: {message}", problems=[FieldProblem("user", "other", message)])
    _check_receiver(session, task, user=user, reason=reason, reason_needed_for=f"delegate task {task_id}")
    return move_task(session, task, TaskAction.DELEGATE, actor=principal.name, assignee=user, reason=reason)


def complete_task(
    session: Session,
    *,
    task_id: str,
    principal: Principal,
    data: Any,
    expected_version: int | None = None,
) -> HumanTask:
    """Validate the output against the step's form (of the instance's version), store it, queue the flow's resume."""
    task = get_visible_task(session, task_id, principal=principal)
    # Whoever may never approve this hears that first, before any state or version detail.
    check_four_eyes(session, task=task, user=principal.name)
    if expected_version is not None and expected_version != task.version:
        raise VersionMismatch(
            f"task {task_id} is at version {task.version}, not {expected_version}; reload and retry", task_id=task_id
        )
    if task.state == TaskState.CLAIMED and not access.may_complete_task(principal, task):
        raise Forbidden(f"task {task_id} is assigned to {task.assignee}; only they may complete it", task_id=task_id)
    next_state(task.state, TaskAction.COMPLETE, task_id=task.id)
    form = step_of_task(session, task).form
    problems = validate_form(form, data) if form is not None else []
    uses = find_file_uses(form, data) if form is not None and not problems else []
    problems = problems or check_file_uses(session, uses, principal=principal)
    if problems:
        raise ValidationFailed(f"task {task_id}: {len(problems)} field(s) break the form's rules", problems=problems)
    completed = move_task(session, task, TaskAction.COMPLETE, actor=principal.name, output=data)
    # The files become the instance's: whoever may see it may download them, and the sweeper keeps them.
    reference_file_uses(session, uses, instance_id=task.instance_id, task_id=task.id)
    outbox.enqueue_resume(
        session, instance_id=task.instance_id, pause_key_prefix=task_pause_prefix(task.id), task_id=task.id
    )
    return completed


def add_comment(session: Session, *, task_id: str, principal: Principal, text: str) -> TaskComment:
    """Add a comment to a visible task."""
    task = get_visible_task(session, task_id, principal=principal)
    text = text.strip()
    if not text or len(text) > MAX_COMMENT_CHARS:
        rule = "must not be empty" if not text else f"must be at most {MAX_COMMENT_CHARS} characters"
        raise ValidationFailed(f"text {rule}", problems=[FieldProblem("text", "length", f"text {rule}")])
    comment = TaskComment(task_id=task.id, author=principal.name, text=text)
    session.add(comment)
    record_event(session, type="task.commented", actor=principal.name, instance_id=task.instance_id, task_id=task.id)
    return comment


def list_comments(session: Session, *, task_id: str) -> list[TaskComment]:
    """Return a task's comments, oldest first."""
    return list(session.scalars(select(TaskComment).where(TaskComment.task_id == task_id).order_by(TaskComment.id)))
