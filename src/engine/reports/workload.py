"""Read-only workload queries for the manager dashboard: counts by role and process, current steps, colleagues."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask, ProcessInstance, User, UserRole
from ecomflow.engine.tasks.states import ACTIVE_STATES


@dataclass(frozen=True)
class Workload:
    """Unfinished tasks of one role or process: all of them, those past due, those forecast to miss it."""

    key: str
    open: int
    overdue: int
    at_risk: int


def workload_by(session: Session, *, group: str, now: datetime) -> list[Workload]:
    """Count unfinished tasks per role or per process (managers' view: every task)."""
    column = HumanTask.role if group == "role" else HumanTask.process_key
    query = (
        select(
            column,
            func.count(),
            func.sum(case((HumanTask.due_at < now, 1), else_=0)),
            func.sum(case((HumanTask.at_risk.is_(True), 1), else_=0)),
        )
        .where(HumanTask.state.in_(sorted(ACTIVE_STATES)))
        .group_by(column)
        .order_by(column)
    )
    return [
        Workload(key, count, int(overdue or 0), int(risky or 0))
        for key, count, overdue, risky in session.execute(query)
    ]


def unfinished_tasks_of(session: Session, instance_ids: Iterable[str]) -> dict[str, list[HumanTask]]:
    """Return each instance's open and claimed tasks: the steps it is waiting on."""
    ids = sorted(set(instance_ids))
    found: dict[str, list[HumanTask]] = defaultdict(list)
    if not ids:
        return found
    query = (
        select(HumanTask)
        .where(HumanTask.instance_id.in_(ids), HumanTask.state.in_(sorted(ACTIVE_STATES)))
        .order_by(HumanTask.created_at, HumanTask.id)
    )
    for task in session.scalars(query):
        found[task.instance_id].append(task)
    return found


def business_keys_of(session: Session, instance_ids: Iterable[str]) -> dict[str, str]:
    """Return the business key (order id, SKU, ...) of each instance."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    query = select(ProcessInstance.id, ProcessInstance.business_key).where(ProcessInstance.id.in_(ids))
    return dict(session.execute(query).all())


def colleagues_for(session: Session, role: str | None) -> list[str]:
    """Return the active users who may take a task of the role (theirs or a manager's), by name."""
    roles = sorted(access.roles_that_may_hold(role))
    query = (
        select(User.name)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.active.is_(True), UserRole.role.in_(roles))
        .distinct()
        .order_by(User.name)
    )
    return list(session.scalars(query))


def active_user_names(session: Session) -> list[str]:
    """Return every active user's name, for choosing whom work goes to."""
    return list(session.scalars(select(User.name).where(User.active.is_(True)).order_by(User.name)))
