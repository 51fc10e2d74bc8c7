"""Human-task actions: claim, release, assign, complete, comment — each one transaction with its audit event."""
from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.clock import utcnow
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.errors import AlreadyClaimed, Forbidden, NotFound, ValidationFailed, VersionMismatch
from ecomflow.engine.tasks.four_eyes import check_four_eyes
from ecomflow.engine.definitions.forms import FieldProblem, validate_form
from ecomflow.engine.db.models import HumanTask, TaskComment
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.sla.sweeps import tasks_workable_by, working_roles
from ecomflow.engine.tasks.states import PAST_TENSE, TaskAction, TaskState, next_state
from ecomflow.engine.tasks.step_tasks import task_pause_prefix
from ecomflow.engine.people.users import available_principal

MAX_COMMENT_CHARS = 5000


def may_see(task: HumanTask, principal: Principal) -> bool:
    """Return whether the caller may see the task: its role or escalated role, its assignee, or a manager."""
    return principal.is_manager or bool(working_roles(task) & principal.roles) or task.assignee == principal.name


def get_visible_task(session: Session, task_id: str, *, principal: Principal) -> HumanTask:
    """Return a task the caller may see; a task they may not see does not exist for them."""
    task = session.get(HumanTask, task_id, populate_existing=True)
    if task is None or not may_see(task, principal):
        raise NotFound(f"task {task_id} does not exist", task_id=task_id)
    return task


def may_hold(principal: Principal, task: HumanTask) -> bool:
    """Return whether the user may work on the task: its role or escalated role, or a manager."""
    return any(principal.may_work_on(role) for role in working_roles(task))


def _check_receiver(session: Session, task: HumanTask, *, user: str, reason: str, reason_needed_for: str | None) -> None:
    """Refuse handing the task to someone who cannot take it, or without a needed reason, naming each field."""
    problems: list[FieldProblem] = []
    if reason_needed_for is not None and not reason.strip():
        problems.append(FieldProblem("reason", "required", f"reason is required to {reason_needed_for}"))
    try:
        receiver = available_principal(session, user, field="user", now=utcnow())
    except ValidationFailed as unavailable:
        problems.extend(unavailable.problems)
    else:
        if not may_hold(receiver, task):
            wanted = " or ".join(sorted(working_roles(task)))
            problems.append(FieldProblem("user", "role", f"user {user} lacks role {wanted}"))
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=problems)
    check_four_eyes(session, task=task, user=user)


def _apply(
    session: Session,
    task: HumanTask,
    action: TaskAction,
    *,
    actor: str,
    expect_state: str,
    values: dict[str, Any],
    event_data: dict[str, Any] | None = None,
) -> HumanTask:
    """Move the task with a compare-and-set on (state, version) and write the audit event."""
    target = next_state(expect_state, action, task_id=task.id)
    result = session.execute(
        update(HumanTask)
        .where(HumanTask.id == task.id, HumanTask.state == expect_state, HumanTask.version == task.version)
        .values(state=target, version=HumanTask.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        current = session.get(HumanTask, task.id, populate_existing=True)
        if action is TaskAction.CLAIM and current is not None and current.state == TaskState.CLAIMED:
            raise AlreadyClaimed(
                f"task {task.id} is already claimed by {current.assignee}", task_id=task.id, assignee=current.assignee
            )
        raise VersionMismatch(
            f"task {task.id} changed meanwhile (now {current.state if current else 'gone'}); reload and retry",
            task_id=task.id,
        )
    _record_transition(session, task, action, actor=actor, from_state=expect_state, event_data=event_data)
    # The row now holds exactly these values: set them on the object instead of reading the row back.
    for key, value in {"state": target, "version": task.version + 1, **values}.items():
        set_committed_value(task, key, value)
    return task


def _record_transition(session: Session, task: HumanTask, action: TaskAction, *, actor: str, from_state: str,
                       event_data: dict[str, Any] | None = None) -> None:
    """Write the audit event of a task's move, in the move's transaction."""
    record_event(
        session, type=f"task.{PAST_TENSE[action]}", actor=actor, instance_id=task.instance_id, task_id=task.id,
        data={"from": from_state, "action": action.value, **(event_data or {})},
    )


def claim_task(session: Session, *, task_id: str, principal: Principal) -> HumanTask:
    """Take an open task for oneself; exactly one concurrent claimer wins.

    The common case is one UPDATE ... RETURNING: open, and of a role the caller holds. A refusal
    found after it (four-eyes) raises, and the caller's transaction rolls the claim back with it.
    """
    task = _claim_if_open(session, task_id=task_id, principal=principal)
    if task is None:
        _refuse_if_claimed(session, task_id=task_id, principal=principal)
        return _claim_checked(session, task_id=task_id, principal=principal)
    check_four_eyes(session, task=task, user=principal.name)
    _record_transition(session, task, TaskAction.CLAIM, actor=principal.name, from_state=TaskState.OPEN.value,
                       event_data={"assignee": principal.name})
    return task


def _claim_statement(*, any_role: bool) -> Any:
    """Build the one-statement claim once: open, and (unless the caller is a manager) of a role they hold."""
    table = HumanTask.__table__
    holdable = [] if any_role else [tasks_workable_by(bindparam("roles", expanding=True))]
    # A row another claim holds locked is skipped, not waited for: the checked path then answers. Queued
    # behind the winner on PostgreSQL, 64 claimers per task took twice as long (tests/engine/test_races.py).
    open_and_free = (
        select(table.c.id)
        .where(table.c.id == bindparam("task_id"), table.c.state == TaskState.OPEN.value)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claim = (
        update(table)
        .where(table.c.id == open_and_free, *holdable)
        .values(state=next_state(TaskState.OPEN, TaskAction.CLAIM, task_id=""), version=table.c.version + 1,
                assignee=bindparam("assignee"), claimed_at=bindparam("claimed_at"))
        .returning(*table.c)
    )
    # Loaded as the object the callers present, refreshing one this session already holds.
    return select(HumanTask).from_statement(claim).execution_options(populate_existing=True)


# Built once: composing the statement per call cost as much as running it (profiled).
_CLAIM_BY_ROLE = _claim_statement(any_role=False)
_CLAIM_BY_MANAGER = _claim_statement(any_role=True)


def _claim_if_open(session: Session, *, task_id: str, principal: Principal) -> HumanTask | None:
    """Claim the task in one statement if it is open and the caller may hold it; None otherwise."""
    statement = _CLAIM_BY_MANAGER if principal.is_manager else _CLAIM_BY_ROLE
    values = {"task_id": task_id, "assignee": principal.name, "claimed_at": utcnow()}
    if not principal.is_manager:
        values["roles"] = sorted(principal.roles)
    return session.scalars(statement, values).one_or_none()


_HOLDER = select(HumanTask.state, HumanTask.assignee, HumanTask.role, HumanTask.escalated_to).where(
    HumanTask.id == bindparam("task_id")
)


def _refuse_if_claimed(session: Session, *, task_id: str, principal: Principal) -> None:
    """Name the holder of a task the caller could have claimed, from four columns: what most losers of a race get."""
    # Loading the whole task for this cost a losing claim as much as the claim itself (64 claimers per task).
    row = session.execute(_HOLDER, {"task_id": task_id}).one_or_none()
    # The row has the task's role, escalated_to and assignee, all may_see and may_hold read.
    if row is not None and row.state == TaskState.CLAIMED and may_see(row, principal) and may_hold(principal, row):
        raise AlreadyClaimed(f"task {task_id} is already claimed by {row.assignee}", task_id=task_id, assignee=row.assignee)


def _claim_checked(session: Session, *, task_id: str, principal: Principal) -> HumanTask:
    """Claim after reading the task, refusing with the precise reason (missing, role, claimed, four-eyes)."""
    task = get_visible_task(session, task_id, principal=principal)
    if not may_hold(principal, task):
        wanted = " or ".join(sorted(working_roles(task)))
        raise Forbidden(f"task {task_id} is for role {wanted}; {principal.name} lacks it", task_id=task_id)
    if task.state == TaskState.CLAIMED:
        raise AlreadyClaimed(f"task {task_id} is already claimed by {task.assignee}", task_id=task_id, assignee=task.assignee)
    check_four_eyes(session, task=task, user=principal.name)
    return _apply(
        session, task, TaskAction.CLAIM, actor=principal.name, expect_state=task.state,
        values={"assignee": principal.name, "claimed_at": utcnow()}, event_data={"assignee": principal.name},
    )


def release_task(session: Session, *, task_id: str, principal: Principal, reason: str = "") -> HumanTask:
    """Put a claimed task back in its role's queue (its assignee or a manager)."""
    task = get_visible_task(session, task_id, principal=principal)
    if task.state == TaskState.CLAIMED and task.assignee != principal.name and not principal.is_manager:
        raise Forbidden(f"task {task_id} is claimed by {task.assignee}; only they or a manager may release it", task_id=task_id)
    return _apply(
        session, task, TaskAction.RELEASE, actor=principal.name, expect_state=task.state,
        values={"assignee": None, "claimed_at": None}, event_data={"previous_assignee": task.assignee, "reason": reason},
    )


def assign_task(session: Session, *, task_id: str, principal: Principal, user: str, reason: str = "") -> HumanTask:
    """Give a task to a named user who may work on it (managers only); taking it from its holder needs a reason."""
    task = get_visible_task(session, task_id, principal=principal)
    if not principal.is_manager:
        raise Forbidden(f"only managers may assign task {task_id}", task_id=task_id)
    next_state(task.state, TaskAction.ASSIGN, task_id=task.id)
    if task.state == TaskState.CLAIMED and task.assignee == user:
        return task  # already theirs: assigning again changes nothing
    reassigning = task.state == TaskState.CLAIMED
    _check_receiver(
        session, task, user=user, reason=reason,
        reason_needed_for=f"take task {task_id} from {task.assignee}" if reassigning else None,
    )
    return _apply(
        session, task, TaskAction.ASSIGN, actor=principal.name, expect_state=task.state,
        values={"assignee": user, "claimed_at": utcnow()},
        event_data={"assignee": user, "previous_assignee": task.assignee, "reason": reason},
    )


def delegate_task(session: Session, *, task_id: str, principal: Principal, user: str, reason: str) -> HumanTask:
    """Hand a claimed task to a colleague who may work on it (its holder or a manager), saying why."""
    task = get_visible_task(session, task_id, principal=principal)
    next_state(task.state, TaskAction.DELEGATE, task_id=task.id)
    if task.assignee != principal.name and not principal.is_manager:
        raise Forbidden(f"task {task_id} is held by {task.assignee}; only they or a manager may delegate it", task_id=task_id)
    if user == task.assignee:
        message = f"user {user} already holds task {task_id}; name a colleague"
        raise ValidationFailed(f"user: {message}", problems=[FieldProblem("user", "other", message)])
    _check_receiver(session, task, user=user, reason=reason, reason_needed_for=f"delegate task {task_id}")
    return _apply(
        session, task, TaskAction.DELEGATE, actor=principal.name, expect_state=task.state,
        values={"assignee": user, "claimed_at": utcnow()},
        event_data={"from": task.assignee, "to": user, "reason": reason},
    )


def complete_task(
    session: Session,
    *,
    task_id: str,
    principal: Principal,
    data: Any,
    definitions: Definitions,
    expected_version: int | None = None,
) -> HumanTask:
    """Validate the output against the step's form, store it, and queue the flow's resume."""
    task = get_visible_task(session, task_id, principal=principal)
    # Whoever may never approve this hears that first, before any state or version detail.
    check_four_eyes(session, task=task, user=principal.name, definitions=definitions)
    if expected_version is not None and expected_version != task.version:
        raise VersionMismatch(
            f"task {task_id} is at version {task.version}, not {expected_version}; reload and retry", task_id=task_id
        )
    if task.state == TaskState.CLAIMED and task.assignee != principal.name:
        raise Forbidden(f"task {task_id} is assigned to {task.assignee}; only they may complete it", task_id=task_id)
    next_state(task.state, TaskAction.COMPLETE, task_id=task.id)
    form = definitions.process(task.process_key).step(task.step_key).form
    problems = validate_form(form, data) if form is not None else []
    if problems:
        raise ValidationFailed(f"task {task_id}: {len(problems)} field(s) break the form's rules", problems=problems)
    completed = _apply(
        session, task, TaskAction.COMPLETE, actor=principal.name, expect_state=task.state,
        values={"output": data, "completed_by": principal.name, "completed_at": utcnow()},
    )
    outbox.enqueue_resume(session, instance_id=task.instance_id, pause_key_prefix=task_pause_prefix(task.id), task_id=task.id)
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
