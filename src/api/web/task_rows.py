"""Tasks as table rows: names in the page's language, badges, and which buttons the user gets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ecomflow.api.presenters import present_task
from ecomflow.api.web.deps import Page
from ecomflow.api.web.labels import priority_name, process_title, role_title, step_title
from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.reports.workload import business_keys_of
from ecomflow.engine.tasks.states import TaskState


@dataclass(frozen=True)
class TaskRow:
    """One task as the inbox and the dashboard show it."""

    id: str
    instance_id: str
    process: str
    step: str
    role: str
    business_key: str
    state: str
    assignee: str | None
    due_at: datetime | None
    overdue: bool
    at_risk: bool
    escalated_to: str
    priority: str
    mine: bool
    may_claim: bool
    may_release: bool


def task_rows(session: Session, tasks: Sequence[HumanTask], page: Page) -> list[TaskRow]:
    """Return the tasks as rows for the signed-in user."""
    user = page.user
    keys = business_keys_of(session, (task.instance_id for task in tasks))
    rows = []
    for task in tasks:
        shown = present_task(task, now=page.now)
        rows.append(
            TaskRow(
                id=task.id,
                instance_id=task.instance_id,
                process=process_title(page.definitions, page.t, task.process_key),
                step=step_title(page.definitions, page.t, task.process_key, task.step_key),
                role=role_title(page.definitions, page.t, task.role),
                business_key=keys.get(task.instance_id, ""),
                state=task.state,
                assignee=task.assignee,
                due_at=task.due_at,
                overdue=shown.overdue,
                at_risk=shown.at_risk,
                escalated_to=role_title(page.definitions, page.t, task.escalated_to),
                priority=priority_name(task.priority),
                mine=task.assignee == user.name,
                may_claim=task.state == TaskState.OPEN and access.may_be_offered_task(user, task),
                may_release=task.state == TaskState.CLAIMED and access.may_release_task(user, task),
            )
        )
    return rows
