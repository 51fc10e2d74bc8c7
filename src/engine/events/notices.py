"""What a notification says about an event: only what the event names, read in the transaction of the change.

A notice holds the process, step and role titles, the business key, the assignee's name, the due
time, an escalation's target role, the day's report totals, and a link to the page that shows it:
never form data, start parameters, comments or anything else a customer wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import AuditEvent, HumanTask, ProcessInstance, User, UserRole
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.definitions.sla_policy import MANAGERS
from ecomflow.engine.errors import DefinitionMissing
from ecomflow.engine.events.wording import label, pick

# What a notice reads of a task: a HumanTask, or a row of these columns.
TASK_COLUMNS = (
    HumanTask.id,
    HumanTask.instance_id,
    HumanTask.process_key,
    HumanTask.step_key,
    HumanTask.role,
    HumanTask.assignee,
    HumanTask.due_at,
    HumanTask.escalated_to,
)
REPORT_KEYS = (
    "report_date",
    "done",
    "open",
    "overdue",
    "on_time_rate",
    "rework_rate",
    "gmv",
    "month_attainment",
    "refund_amount",
    "signups",
)
TASK_EVENTS = frozenset(
    {"task.created", "task.assigned", "task.due_soon", "task.reminded", "task.overdue", "task.escalated"}
)
INSTANCE_EVENTS = frozenset({"instance.completed", "instance.failed"})


@dataclass(frozen=True)
class DescribedEvent:
    """An event as the routing sees it: its notice, the roles and process it concerns, and who it is about."""

    event: str
    notice: dict[str, Any]
    roles: frozenset[str]
    process: str | None
    # The people an @-mention or an email names: the assignee, else (email only) the holders of the roles.
    mentioned: tuple[str, ...] = ()
    mailed_roles: frozenset[str] = field(default_factory=frozenset)


def event_of(audit: AuditEvent) -> str | None:
    """Return the notification event an audit event stands for, or None."""
    if audit.type == "task.reminded":
        return "task.due_soon" if (audit.data or {}).get("reason") == "due_soon" else "task.reminded"
    if audit.type == "task.delegated":
        return "task.assigned"  # handed to someone else: for the team that is an assignment
    if audit.type in TASK_EVENTS | INSTANCE_EVENTS or audit.type == "report.daily":
        return audit.type
    return None


def describe_event(session: Session, audit: AuditEvent, *, language: str) -> DescribedEvent | None:
    """Return the notice of an audit event, or None when it notifies nobody."""
    event = event_of(audit)
    if event is None:
        return None
    definitions = get_definitions()
    if event in TASK_EVENTS and audit.task_id is not None:
        return _describe_task_event(session, event, audit, definitions, language)
    if event in INSTANCE_EVENTS and audit.instance_id is not None:
        return _describe_instance_event(session, event, audit.instance_id, definitions, language)
    if event == "report.daily":
        notice = _base_notice(event, language, definitions)
        notice["report"] = {key: (audit.data or {}).get(key) for key in REPORT_KEYS}
        # The day's page (sign-in needed) shows the report; email carries the XLSX, robots link to its download
        # (the web's, which a browser opens with its session; the API's takes a bearer token only).
        day = (audit.data or {}).get("report_date")
        path = f"/ui/reports/daily/{day}" if day else "/ui/dashboard"
        notice.update(link=_url(path), link_label="open_daily_report" if day else "open_dashboard")
        if day:
            notice["download"] = _url(f"/ui/reports/daily/{day}.xlsx")
        return DescribedEvent(event, notice, frozenset(), None, mailed_roles=definitions.manager_roles)
    return None


def task_notice(session: Session, task: Any, *, event: str, language: str, definitions: Definitions) -> dict[str, Any]:
    """Return the notice of a task: process, business key, step, role, assignee, due time and its page."""
    notice = _base_notice(event, language, definitions)
    business_key = session.scalar(select(ProcessInstance.business_key).where(ProcessInstance.id == task.instance_id))
    notice.update(
        process=_process_title(definitions, task.process_key, language),
        business_key=business_key,
        step=_step_title(definitions, task.process_key, task.step_key, language),
        role=role_title(definitions, task.role, language),
        assignee=task.assignee,
        due_at=task.due_at.isoformat() if task.due_at else None,
        link=_url(f"/ui/tasks/{task.id}"),
        link_label="open_task",
    )
    return notice


def _describe_task_event(
    session: Session, event: str, audit: AuditEvent, definitions: Definitions, language: str
) -> DescribedEvent | None:
    # A column query reads the row as this transaction left it, whatever the caller's objects hold.
    task = session.execute(select(*TASK_COLUMNS).where(HumanTask.id == audit.task_id)).one_or_none()
    if task is None:
        return None
    notice = task_notice(session, task, event=event, language=language, definitions=definitions)
    escalated_to = _roles_named(definitions, task.escalated_to)
    roles = frozenset({task.role} | escalated_to)
    # Email reaches the escalation's target, or the queue's holders while nobody holds the task.
    mailed = frozenset() if task.assignee else roles
    if event == "task.escalated":
        target = (audit.data or {}).get("to") or task.escalated_to
        notice["escalated_to"] = role_title(definitions, target, language) if target else None
        mailed = frozenset(_roles_named(definitions, target))
        roles |= mailed
    mentioned = (task.assignee,) if task.assignee else ()
    return DescribedEvent(event, notice, roles, task.process_key, mentioned=mentioned, mailed_roles=mailed)


def _describe_instance_event(
    session: Session, event: str, instance_id: str, definitions: Definitions, language: str
) -> DescribedEvent | None:
    row = session.execute(
        select(ProcessInstance.process_key, ProcessInstance.business_key).where(ProcessInstance.id == instance_id)
    ).one_or_none()
    if row is None:
        return None
    notice = _base_notice(event, language, definitions)
    notice.update(
        process=_process_title(definitions, row.process_key, language),
        business_key=row.business_key,
        link=_url(f"/ui/instances/{instance_id}"),
        link_label="open_instance",
    )
    try:
        roles = frozenset(definitions.process(row.process_key).roles)
    except DefinitionMissing:
        roles = frozenset()
    return DescribedEvent(event, notice, roles, row.process_key, mailed_roles=definitions.manager_roles)


def people_named(session: Session, described: DescribedEvent, *, for_email: bool) -> list[User]:
    """Return who a message names: the assignee (an @-mention), and for email also the holders of the mailed roles."""
    named = list(session.scalars(select(User).where(User.name.in_(described.mentioned), User.active.is_(True))))
    if for_email:
        known = {user.name for user in named}
        named += [user for user in holders_of(session, described.mailed_roles) if user.name not in known]
    return named


def _base_notice(event: str, language: str, definitions: Definitions) -> dict[str, Any]:
    return {"event": event, "language": language, "timezone": definitions.timezone}


def role_title(definitions: Definitions, role: str, language: str) -> str:
    """Return a role's name in the language ("managers" included), or its key when flows.yaml no longer has it."""
    if role == MANAGERS:
        return label("managers", language)
    found = definitions.roles.get(role)
    return pick((found.label.zh, found.label.en), language) if found else role


def _roles_named(definitions: Definitions, role: str | None) -> set[str]:
    if not role:
        return set()
    return set(definitions.manager_roles) if role == MANAGERS else {role}


def _process_title(definitions: Definitions, key: str, language: str) -> str:
    process = definitions.processes.get(key)
    return pick((process.label.zh, process.label.en), language) if process else key


def _step_title(definitions: Definitions, process_key: str, step_key: str, language: str) -> str:
    try:
        step = definitions.process(process_key).step(step_key)
    except DefinitionMissing:
        return step_key
    return pick((step.label.zh, step.label.en), language)


def _url(path: str) -> str:
    return get_settings().resolved_public_url + path


def holders_of(session: Session, roles: frozenset[str]) -> list[User]:
    """Return the active users holding any of the roles, by name."""
    if not roles:
        return []
    holding = select(UserRole.user_id).where(UserRole.role.in_(sorted(roles)))
    return list(session.scalars(select(User).where(User.active.is_(True), User.id.in_(holding)).order_by(User.name)))
