"""The task page: its form, the context of earlier steps, comments and history.

Its actions: complete, comment, delegate, reassign.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from ecomflow.api.delivery import deliver_now
from ecomflow.api.presenters import present_task
from ecomflow.api.web.context_view import ContextRenderer, field_names, file_ids_in
from ecomflow.api.web.deps import ManagerForm, Page, PageRefused, StaffForm, StaffPage
from ecomflow.api.web.file_views import file_views
from ecomflow.api.web.flash import Flash
from ecomflow.api.web.forms import FormView, build_form_view, read_submission
from ecomflow.api.web.labels import priority_name, process_title, role_title, step_title
from ecomflow.api.web.refusals import refusal_text
from ecomflow.api.web.rendering import HOME, redirect, render
from ecomflow.engine import access
from ecomflow.engine.db.models import AuditEvent, HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.definitions.processes import Definitions, ProcessSpec, StepSpec
from ecomflow.engine.definitions.versions import spec_of_instance, step_of_task
from ecomflow.engine.errors import DefinitionMissing, EcomflowError, NotFound, ValidationFailed
from ecomflow.engine.events.audit import list_events
from ecomflow.engine.events.outbox import new_message_ids
from ecomflow.engine.instances.lifecycle import get_instance
from ecomflow.engine.orchestrator.runs import flow_run_ui_url
from ecomflow.engine.reports.workload import colleagues_for
from ecomflow.engine.tasks import actions
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState

router = APIRouter(prefix="/ui", include_in_schema=False)
# What of an audit event's data the history shows, in this order.
_HISTORY_DETAILS = ("assignee", "to", "previous_assignee", "reason", "escalated_to", "detail")
# A task's moves (engine/tasks/moves.py) carry from/to states the event's name already says.
_MOVE_KEYS = frozenset({"from", "to", "action", "actor", "at"})


@dataclass(frozen=True)
class HistoryLine:
    """One audit event in words."""

    at: datetime
    actor: str
    what: str
    details: list[tuple[str, str]]


def _task_url(task_id: str) -> str:
    return f"{HOME}/tasks/{task_id}"


def _history(events: Sequence[AuditEvent], page: Page, renderer: ContextRenderer) -> list[HistoryLine]:
    lines = []
    for event in events:
        data = event.data or {}
        skipped = _MOVE_KEYS if "action" in data else frozenset()
        details = [
            (renderer.key_label(key), str(data[key]))
            for key in _HISTORY_DETAILS
            if data.get(key) and key not in skipped
        ]
        lines.append(
            HistoryLine(
                at=event.at, actor=event.actor, what=page.t.get(f"event.{event.type}", event.type), details=details
            )
        )
    return lines


def _step_of(session: Session, task: HumanTask) -> StepSpec | None:
    """Return the task's step as its instance's version defines it, or None for a step that version lacks."""
    try:
        return step_of_task(session, task)
    except DefinitionMissing:
        return None


def _process_of(session: Session, instance: ProcessInstance, definitions: Definitions) -> ProcessSpec | None:
    """Return the instance's pinned process spec; the current one if its version is not stored."""
    try:
        return spec_of_instance(session, instance)
    except DefinitionMissing:
        return definitions.processes.get(instance.process_key)


def _visible_task(session: Session, task_id: str, page: Page) -> HumanTask:
    try:
        return actions.get_visible_task(session, task_id, principal=page.user)
    except NotFound:
        raise PageRefused(404, "refused.task_missing", page) from None


def _render_task(
    session: Session,
    page: Page,
    task: HumanTask,
    *,
    values: dict[str, Any] | None = None,
    problems: Sequence[FieldProblem] = (),
    status: int = 200,
) -> HTMLResponse:
    """Render the task page; after a refused completion, with what was entered and each problem by its field."""
    definitions, t, user = page.definitions, page.t, page.user
    instance = get_instance(session, task.instance_id)
    process = _process_of(session, instance, definitions)
    step = _step_of(session, task)
    names = field_names(process)
    context = {"business_key": instance.business_key, "params": instance.params, **(task.context or {})}
    # Every file the page shows (earlier steps', this step's output, what was just uploaded), looked up at once.
    files = file_views(session, file_ids_in([context, task.output, values], names))
    renderer = ContextRenderer(t=t, names=names, files=files)
    active = task.state in ACTIVE_STATES
    mine = task.assignee == user.name
    may_work = task.state == TaskState.CLAIMED and mine
    approval = step is not None and step.kind == "approval"
    form_view: FormView | None = None
    if may_work and step is not None and step.form is not None:
        form_view = build_form_view(
            step.form, values=values or {}, problems=problems, t=t, zone=page.zone, approval=approval, files=files
        )
    return render(
        "task.html",
        page,
        status=status,
        task=task,
        shown=present_task(task, now=page.now),
        process_title=process_title(definitions, t, task.process_key),
        step_title=step_title(definitions, t, task.process_key, task.step_key),
        role_title=role_title(definitions, t, task.role),
        escalated_to=role_title(definitions, t, task.escalated_to),
        priority=priority_name(task.priority),
        business_key=instance.business_key,
        flow_run_url=flow_run_ui_url(instance.flow_run_id) if access.is_manager(user) else None,
        context=renderer.show(context),
        output=renderer.show(task.output) if task.output is not None else None,
        comments=actions.list_comments(session, task_id=task.id),
        history=_history(list_events(session, task_id=task.id), page, renderer),
        form_view=form_view,
        approval=approval,
        may_work=may_work,
        may_claim=task.state == TaskState.OPEN and access.may_be_offered_task(user, task),
        may_release=task.state == TaskState.CLAIMED and access.may_release_task(user, task),
        may_delegate=task.state == TaskState.CLAIMED and access.may_delegate_task(user, task),
        may_assign=active and access.may_assign_tasks(user),
        colleagues=colleagues_for(session, task.role) if active else [],
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(task_id: str, page: StaffPage) -> HTMLResponse:
    """Show a task."""
    with read_scope() as session:
        return _render_task(session, page, _visible_task(session, task_id, page))


@router.post("/tasks/{task_id}/complete", response_class=HTMLResponse)
def complete(task_id: str, page: StaffForm) -> Response:
    """Submit the task's form; problems come back next to their fields, success goes back to the inbox."""
    with session_scope() as session:
        step = _step_of(session, _visible_task(session, task_id, page))
    if step is None:
        return redirect(page, _task_url(task_id), flash=Flash("error", page.t("refused.step_missing")))
    data = read_submission(step.form, page.form, zone=page.zone) if step.form is not None else {}
    version = page.field("version")
    try:
        with session_scope() as session:
            done = actions.complete_task(
                session,
                task_id=task_id,
                principal=page.user,
                data=data,
                expected_version=int(version) if version.isdigit() else None,
            )
            name = step_title(page.definitions, page.t, done.process_key, done.step_key)
            resumes = new_message_ids(session)
    except ValidationFailed as refused:
        with session_scope() as session:
            task = _visible_task(session, task_id, page)
            return _render_task(session, page, task, values=data, problems=refused.problems, status=422)
    except EcomflowError as refused:
        return redirect(page, _task_url(task_id), flash=Flash("error", refusal_text(refused, page.t)))
    response = redirect(page, HOME, flash=Flash("ok", page.t("flash.completed", step=name)))
    # The flow's resume is handed to Prefect right after the answer, as the API does; the dispatcher retries.
    response.background = BackgroundTask(deliver_now, resumes)
    return response


@router.post("/tasks/{task_id}/comments")
def comment(task_id: str, page: StaffForm) -> RedirectResponse:
    """Add a comment to the task."""
    try:
        with session_scope() as session:
            actions.add_comment(session, task_id=task_id, principal=page.user, text=page.field("text"))
    except EcomflowError as refused:
        return redirect(page, _task_url(task_id), flash=Flash("error", refusal_text(refused, page.t)))
    return redirect(page, f"{_task_url(task_id)}#comments", flash=Flash("ok", page.t("flash.commented")))


@router.post("/tasks/{task_id}/delegate")
def delegate(task_id: str, page: StaffForm) -> RedirectResponse:
    """Hand a claimed task to a colleague, saying why."""
    return _hand_over(task_id, page, actions.delegate_task, done="flash.delegated")


@router.post("/tasks/{task_id}/assign")
def reassign(task_id: str, page: ManagerForm) -> RedirectResponse:
    """Give a task to a named user (managers); taking it from its holder needs a reason."""
    return _hand_over(task_id, page, actions.assign_task, done="flash.assigned")


def _hand_over(task_id: str, page: Page, action: Callable[..., object], *, done: str) -> RedirectResponse:
    """Give the task to the form's user with the form's reason through the engine action, and say how it went."""
    user, reason = page.field("user"), page.field("reason")
    if not user:
        return redirect(page, _task_url(task_id), flash=Flash("error", page.t("problem.user.required")))
    try:
        with session_scope() as session:
            action(session, task_id=task_id, principal=page.user, user=user, reason=reason)
    except EcomflowError as refused:
        return redirect(page, _task_url(task_id), flash=Flash("error", refusal_text(refused, page.t, user=user)))
    return redirect(page, _task_url(task_id), flash=Flash("ok", page.t(done, user=user)))
