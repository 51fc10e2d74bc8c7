"""Bulk task actions for managers: each task in its own transaction, every outcome reported in request order."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import EcomflowError, Forbidden, ValidationFailed
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import available_principal
from ecomflow.engine.tasks.actions import assign_task, claim_task, get_visible_task, release_task
from ecomflow.engine.tasks.states import TaskState

logger = logging.getLogger("ecomflow.bulk")

MAX_BULK_TASKS = 200
MAX_REASON_CHARS = 500


class BulkAction(StrEnum):
    CLAIM = "claim"
    ASSIGN = "assign"
    RELEASE = "release"


@dataclass(frozen=True, kw_only=True)
class BulkRequest:
    """One action for many tasks; `user` is whom an assign gives them to."""

    action: BulkAction
    task_ids: Sequence[str]
    user: str | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class BulkOutcome:
    """What happened to one task: the task after the action, or the error that refused it."""

    task_id: str
    task: HumanTask | None = None
    unchanged: bool = False
    error: Exception | None = None


def run_bulk(*, request: BulkRequest, principal: Principal) -> list[BulkOutcome]:
    """Apply the action to each task in its own transaction; one refusal never undoes or hides another."""
    with session_scope() as session:
        check_bulk_request(session, request=request, principal=principal)
    outcomes = []
    for task_id in request.task_ids:
        try:
            with session_scope() as session:
                task, unchanged = act_on_task(session, request=request, task_id=task_id, principal=principal)
            outcomes.append(BulkOutcome(task_id=task_id, task=task, unchanged=unchanged))
        except EcomflowError as refused:
            outcomes.append(BulkOutcome(task_id=task_id, error=refused))
        except Exception as failure:
            logger.exception("bulk %s of task %s failed unexpectedly", request.action, task_id)
            outcomes.append(BulkOutcome(task_id=task_id, error=failure))
    return outcomes


def check_bulk_request(session: Session, *, request: BulkRequest, principal: Principal) -> None:
    """Refuse a non-manager, and a request whose fields break the rules, naming each field."""
    if not access.may_assign_tasks(principal):
        raise Forbidden(f"only managers may act on tasks in bulk; {principal.name} is not one")
    problems: list[FieldProblem] = []
    if not 1 <= len(request.task_ids) <= MAX_BULK_TASKS:
        rule = f"task_ids must hold 1 to {MAX_BULK_TASKS} ids, not {len(request.task_ids)}"
        problems.append(FieldProblem("task_ids", "length", rule))
    repeated = sorted(task_id for task_id, count in Counter(request.task_ids).items() if count > 1)
    if repeated:
        problems.append(FieldProblem("task_ids", "unique", f"task_ids must be unique; repeated: {', '.join(repeated)}"))
    if len(request.reason) > MAX_REASON_CHARS:
        problems.append(FieldProblem("reason", "length", f"reason must be at most {MAX_REASON_CHARS} characters"))
    if request.action is BulkAction.ASSIGN and not request.user:
        problems.append(FieldProblem("user", "required", "user is required to assign: whom the tasks go to"))
    elif request.action is not BulkAction.ASSIGN and request.user is not None:
        problems.append(FieldProblem("user", "forbidden", f"user is only for assign, not {request.action}"))
    elif request.action is BulkAction.ASSIGN:
        try:
            available_principal(session, request.user, field="user", now=utcnow())
        except ValidationFailed as unavailable:
            problems.extend(unavailable.problems)
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=problems)


def act_on_task(
    session: Session, *, request: BulkRequest, task_id: str, principal: Principal
) -> tuple[HumanTask, bool]:
    """Apply the action to one task; return it and whether it already was as asked (then nothing changes)."""
    task = get_visible_task(session, task_id, principal=principal)
    if _already_done(task, request=request, principal=principal):
        return task, True
    if request.action is BulkAction.CLAIM:
        return claim_task(session, task_id=task_id, principal=principal), False
    if request.action is BulkAction.ASSIGN:
        return assign_task(
            session, task_id=task_id, principal=principal, user=request.user, reason=request.reason
        ), False
    return release_task(session, task_id=task_id, principal=principal, reason=request.reason), False


def _already_done(task: HumanTask, *, request: BulkRequest, principal: Principal) -> bool:
    if request.action is BulkAction.RELEASE:
        return task.state == TaskState.OPEN
    holder = principal.name if request.action is BulkAction.CLAIM else request.user
    return task.state == TaskState.CLAIMED and task.assignee == holder
