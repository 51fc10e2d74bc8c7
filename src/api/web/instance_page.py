"""An instance's page: where the case stands on its own definition version's map, its tasks, children and history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.api.web.deps import Page, PageRefused, StaffPage
from ecomflow.api.web.diagrams import instance_path_svg
from ecomflow.api.web.file_views import view_of
from ecomflow.api.web.labels import process_title, step_title
from ecomflow.api.web.rendering import render
from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.definitions.instance_path import trace_path
from ecomflow.engine.definitions.processes import ProcessSpec
from ecomflow.engine.definitions.versions import spec_of_instance
from ecomflow.engine.errors import DefinitionMissing, NotFound
from ecomflow.engine.events.audit import list_events
from ecomflow.engine.files.generated import generated_files
from ecomflow.engine.instances.lifecycle import children_of, get_instance, visible_instance
from ecomflow.engine.orchestrator.runs import flow_run_ui_url

router = APIRouter(prefix="/ui", include_in_schema=False)


@dataclass(frozen=True)
class TaskLine:
    """One task of the instance the viewer may see."""

    id: str
    step: str
    round: int
    state: str
    assignee: str | None
    created_at: datetime


@dataclass(frozen=True)
class InstanceLine:
    """A parent or child instance the viewer may see."""

    id: str
    title: str
    state: str


@router.get("/instances/{instance_id}", response_class=HTMLResponse)
def instance_page(instance_id: str, page: StaffPage) -> HTMLResponse:
    """Show an instance the user may see: its path on its version's map, tasks, parent, children and history."""
    with read_scope() as session:
        try:
            instance = visible_instance(session, instance_id, principal=page.user)
        except NotFound:
            raise PageRefused(404, "refused.page_missing", page) from None
        return _render(session, page, instance)


def _render(session: Session, page: Page, instance: ProcessInstance) -> HTMLResponse:
    definitions, t, user = page.definitions, page.t, page.user
    spec = _pinned_spec(session, page, instance)
    tasks = [
        task
        for task in session.scalars(
            select(HumanTask).where(HumanTask.instance_id == instance.id).order_by(HumanTask.created_at, HumanTask.id)
        )
        if access.may_see_task(user, task)
    ]
    children = [c for c in children_of(session, instance.id) if access.may_see_instance(session, user, c)]
    parent = get_instance(session, instance.parent_id) if instance.parent_id else None
    if parent is not None and not access.may_see_instance(session, user, parent):
        parent = None
    shown_tasks = {task.id for task in tasks}
    path = trace_path(session, instance, spec) if spec is not None else None
    title = process_title(definitions, t, instance.process_key)
    # Only the history of tasks the viewer may see: the others' actors and reasons are not theirs to read.
    events = [e for e in list_events(session, instance_id=instance.id) if e.task_id is None or e.task_id in shown_tasks]
    return render(
        "instance.html",
        page,
        instance=instance,
        title=t("instance.title", process=title, business_key=instance.business_key),
        path_svg=instance_path_svg(
            spec,
            path,
            t=t,
            definitions=definitions,
            zone=page.zone,
            title=t("map.path_title", process=title, business_key=instance.business_key),
            visible=shown_tasks | {c.id for c in children},
        )
        if path is not None
        else None,
        unplaced=", ".join(path.unplaced) if path is not None else "",
        tasks=[
            TaskLine(
                id=task.id,
                step=step_title(definitions, t, task.process_key, task.step_key),
                round=task.round,
                state=task.state,
                assignee=task.assignee,
                created_at=task.created_at,
            )
            for task in tasks
        ],
        parent=_line(page, parent) if parent else None,
        children=[_line(page, child) for child in children],
        history=[(e.at, e.actor, t.get(f"event.{e.type}", e.type)) for e in events],
        files=[view_of(attachment) for _, attachment in generated_files(session, instance.id)],
        flow_run_url=flow_run_ui_url(instance.flow_run_id) if access.is_manager(user) else None,
    )


def _pinned_spec(session: Session, page: Page, instance: ProcessInstance) -> ProcessSpec | None:
    """Return the spec of the instance's version; the current one if that version is not stored."""
    try:
        return spec_of_instance(session, instance)
    except DefinitionMissing:
        return page.definitions.processes.get(instance.process_key)


def _line(page: Page, instance: ProcessInstance) -> InstanceLine:
    title = f"{process_title(page.definitions, page.t, instance.process_key)} · {instance.business_key}"
    return InstanceLine(id=instance.id, title=title, state=instance.state)
