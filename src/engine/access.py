"""Who may do what with a task, an instance or a process: the one door for every access decision.

The engine's guards, the inbox's queries, the API and the web pages' buttons all ask here.
- Managers are the roles flows.yaml marks `manager: true`: they see every task and instance and
  may claim, assign, release, delegate and cancel.
- A task is seen by the holders of its role or of the role it escalated to, and by its assignee;
  it is held (claimed, or received by assignment or delegation) by the holders of those roles.
- Four-eyes: whoever did the work an approval approves may not hold it, and is not offered it.
- An instance (and its path on the process map) is seen by its starter and by whoever may see one of
  its tasks; the heat view of a process (every case's wait) by managers.
- A process is started by its `starters` (role keys, or `managers`); the system starts any.
- Master data (products, variants, locations, manual stock adjustments) is changed by the product
  role and the managers (and the system); everyone signed in may read it.
- Platform orders (status, wave, history) and waves with their files are seen by managers, customer
  service and the warehouse: the roles that work them; anyone else by a task of the wave's instance.
- An attachment is downloaded by whoever may see an instance that uses it (a completed task's output
  or its start params); until something uses it, by its uploader alone.
- The shops' exports (orders, refunds, reviews) are imported by customer service and the managers.
Refusals name the rule they apply.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BindParameter, ColumnElement, and_, literal, not_, or_, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.json_sql import json_array_has
from ecomflow.engine.db.models import Attachment, AttachmentReference, HumanTask, ProcessInstance
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import MANAGERS_STARTER, ProcessSpec
from ecomflow.engine.definitions.sla_policy import MANAGERS
from ecomflow.engine.errors import Forbidden
from ecomflow.engine.people.principals import SYSTEM, Principal


def manager_roles() -> frozenset[str]:
    """Return the roles flows.yaml marks as managers."""
    return get_definitions().manager_roles


def is_manager(principal: Principal) -> bool:
    """Tell whether the user holds a manager role."""
    return bool(principal.roles & manager_roles())


def is_system(principal: Principal) -> bool:
    """Tell whether the caller is the system itself (a schedule, a parent step, the sweeper)."""
    return principal == SYSTEM


# ── tasks ──────────────────────────────────────────────────────────────────────────
def working_roles(task: HumanTask) -> frozenset[str]:
    """Return the roles whose holders may see and claim the task: its own, and the one it escalated to."""
    if task.escalated_to is None or task.escalated_to == MANAGERS:
        return frozenset({task.role})  # managers see and claim every task anyway
    return frozenset({task.role, task.escalated_to})


def may_see_task(principal: Principal, task: HumanTask) -> bool:
    """Tell whether the user may see the task: its role or escalated role, its assignee, or a manager."""
    return is_manager(principal) or bool(working_roles(task) & principal.roles) or task.assignee == principal.name


def may_hold_task(principal: Principal, task: HumanTask) -> bool:
    """Tell whether the user's roles let them hold the task (four-eyes is checked apart, it needs the history)."""
    return is_manager(principal) or bool(working_roles(task) & principal.roles)


def may_be_offered_task(principal: Principal, task: HumanTask) -> bool:
    """Tell whether to offer the user the task: their roles let them hold it and the four-eyes stored on it allow it."""
    return may_hold_task(principal, task) and principal.name not in (task.excluded_users or ())


def may_release_task(principal: Principal, task: HumanTask) -> bool:
    """Tell whether the user may put the task back in its queue: its holder or a manager."""
    return task.assignee == principal.name or is_manager(principal)


def may_delegate_task(principal: Principal, task: HumanTask) -> bool:
    """Tell whether the user may hand the claimed task to a colleague: its holder or a manager."""
    return task.assignee == principal.name or is_manager(principal)


def may_assign_tasks(principal: Principal) -> bool:
    """Tell whether the user may give tasks to others, one by one or in bulk: managers."""
    return is_manager(principal)


def may_complete_task(principal: Principal, task: HumanTask) -> bool:
    """Tell whether the user may complete the task: a claimed task by its holder alone."""
    return task.assignee is None or task.assignee == principal.name


def required_roles_text(task: HumanTask) -> str:
    """Return the roles a task needs, for a refusal's sentence."""
    return " or ".join(sorted(working_roles(task)))


def tasks_workable_by(roles: Iterable[str] | BindParameter) -> ColumnElement[bool]:
    """Return working_roles as a query condition: the task's role or escalated role is one of these.

    The roles may be an expanding bind parameter, for a statement built once (the claim).
    """
    held = roles if isinstance(roles, BindParameter) else sorted(roles)
    return or_(HumanTask.role.in_(held), HumanTask.escalated_to.in_(held))


def tasks_visible_to(principal: Principal) -> ColumnElement[bool]:
    """Return the condition for tasks the user may see; it is part of every task query."""
    if is_manager(principal):
        return literal(True)
    return or_(tasks_workable_by(principal.roles), HumanTask.assignee == principal.name)


def tasks_not_excluded(principal: Principal) -> ColumnElement[bool]:
    """Return the condition for tasks four-eyes lets the user hold: nobody is offered a task they may not take."""
    return tasks_not_excluded_for(principal.name)


def tasks_not_excluded_for(user: str | BindParameter) -> ColumnElement[bool]:
    """Return tasks_not_excluded for a user name or a bind parameter of one (a statement built once)."""
    return not_(json_array_has(HumanTask.excluded_users, user))


def tasks_offered_to(principal: Principal) -> ColumnElement[bool]:
    """Return the condition of the inbox: tasks the user may see, less those four-eyes keeps from them."""
    return and_(tasks_visible_to(principal), tasks_not_excluded(principal))


# ── instances ──────────────────────────────────────────────────────────────────────
def instances_visible_to(principal: Principal) -> ColumnElement[bool]:
    """Return the condition for instances the user may see: managers all, others those they started or work on."""
    if is_manager(principal):
        return literal(True)
    tasks_of_theirs = select(HumanTask.instance_id).where(
        or_(tasks_workable_by(principal.roles), HumanTask.assignee == principal.name)
    )
    return or_(ProcessInstance.started_by == principal.name, ProcessInstance.id.in_(tasks_of_theirs))


def may_see_instance(session: Session, principal: Principal, instance: ProcessInstance) -> bool:
    """Tell whether the user may see the instance."""
    if is_manager(principal) or instance.started_by == principal.name:
        return True
    query = select(HumanTask.id).where(
        HumanTask.instance_id == instance.id,
        or_(tasks_workable_by(principal.roles), HumanTask.assignee == principal.name),
    )
    return session.scalar(query.limit(1)) is not None


def may_see_step_heat(principal: Principal) -> bool:
    """Tell whether the user may see where every case of a process waits (the heat view): managers."""
    return is_manager(principal)


def may_cancel_instance(principal: Principal) -> bool:
    """Tell whether the user may cancel instances: managers, and the system (a platform withdrew the request)."""
    return is_manager(principal) or is_system(principal)


# ── attachments ────────────────────────────────────────────────────────────────────
def may_download_attachment(session: Session, principal: Principal, attachment: Attachment) -> bool:
    """Tell whether the user may download the file: they may see an instance using it; unused, they uploaded it."""
    users = select(AttachmentReference.instance_id).where(AttachmentReference.attachment_id == attachment.id)
    if session.scalar(users.limit(1)) is None:
        return attachment.uploaded_by == principal.name or is_system(principal)
    if is_manager(principal) or is_system(principal):
        return True
    visible = select(ProcessInstance.id).where(ProcessInstance.id.in_(users), instances_visible_to(principal))
    return session.scalar(visible.limit(1)) is not None


def may_put_attachment_in_form(session: Session, principal: Principal, attachment: Attachment) -> bool:
    """Tell whether the user may put the file in a form or start params: they uploaded it, or may download it."""
    return attachment.uploaded_by == principal.name or may_download_attachment(session, principal, attachment)


# ── platform orders and waves ──────────────────────────────────────────────────────
# The roles that work platform orders: customer service reviews exceptions, the warehouse ships waves.
ORDER_ROLES = frozenset({"customer_service", "warehouse"})


def may_see_platform_orders(principal: Principal) -> bool:
    """Tell whether the user may read platform orders, waves and their files: managers, customer service, warehouse."""
    return is_manager(principal) or bool(principal.roles & ORDER_ROLES)


def may_see_wave(session: Session, principal: Principal, instance: ProcessInstance | None) -> bool:
    """Tell whether the user may see a wave: the order roles, or whoever may see the wave's instance."""
    return may_see_platform_orders(principal) or (
        instance is not None and may_see_instance(session, principal, instance)
    )


def check_may_see_platform_orders(principal: Principal) -> None:
    """Refuse (Forbidden) a user who may not read platform orders."""
    if not may_see_platform_orders(principal):
        raise Forbidden(
            "platform orders are read by managers, customer service and the warehouse",
            rule="order_roles",
        )


# ── processes ──────────────────────────────────────────────────────────────────────
def starter_roles(process: ProcessSpec) -> frozenset[str]:
    """Return the roles that may start the process, `managers` spelled out."""
    named = set(process.starters) - {MANAGERS_STARTER}
    return frozenset(named | (manager_roles() if MANAGERS_STARTER in process.starters else set()))


def may_start_process(principal: Principal, process: ProcessSpec) -> bool:
    """Tell whether the user may start an instance of the process."""
    return is_system(principal) or bool(principal.roles & starter_roles(process))


def check_may_start(principal: Principal, process: ProcessSpec) -> None:
    """Refuse a start by someone outside the process's starters, naming the rule."""
    if not may_start_process(principal, process):
        raise Forbidden(
            f"starters rule: {process.key} is started by {', '.join(sorted(starter_roles(process)))}; "
            f"{principal.name} holds {', '.join(sorted(principal.roles)) or 'no role'}",
            process=process.key,
        )


# ── master data ────────────────────────────────────────────────────────────────────
CATALOG_ROLE = "product"


def may_edit_catalog(principal: Principal) -> bool:
    """Tell whether the user may create and change products, variants, locations and adjust stock."""
    return is_system(principal) or is_manager(principal) or CATALOG_ROLE in principal.roles


def check_may_edit_catalog(principal: Principal) -> None:
    """Refuse a master-data change by someone outside the product role and the managers, naming the rule."""
    if not may_edit_catalog(principal):
        raise Forbidden(
            f"catalogue rule: master data is changed by the {CATALOG_ROLE} role and the managers; "
            f"{principal.name} holds {', '.join(sorted(principal.roles)) or 'no role'}"
        )


# ── platform imports ───────────────────────────────────────────────────────────────
IMPORT_ROLE = "customer_service"


def may_import_platform_data(principal: Principal) -> bool:
    """Tell whether the user may import the shops' orders, refunds and reviews: customer service and managers."""
    return is_system(principal) or is_manager(principal) or IMPORT_ROLE in principal.roles


def check_may_import_platform_data(principal: Principal) -> None:
    """Refuse a platform import by someone outside customer service and the managers, naming the rule."""
    if not may_import_platform_data(principal):
        raise Forbidden(
            f"import rule: platform exports are imported by the {IMPORT_ROLE} role and the managers; "
            f"{principal.name} holds {', '.join(sorted(principal.roles)) or 'no role'}"
        )


# ── the team ───────────────────────────────────────────────────────────────────────
def may_manage_user(principal: Principal, name: str) -> bool:
    """Tell whether the user may see or change another user's absence and tokens: themself or a manager."""
    return principal.name == name or is_manager(principal)


def may_change_contact(principal: Principal, name: str) -> bool:
    """Tell whether the user may change a user's mobile, email and IM ids: themself, a manager, or the CLI (system)."""
    return principal.name == name or is_manager(principal) or is_system(principal)


def may_watch_the_team(principal: Principal) -> bool:
    """Tell whether the user may see the dashboard, the team's KPIs and the delivery log: managers."""
    return is_manager(principal)


def roles_that_may_hold(role: str | None) -> frozenset[str]:
    """Return the roles whose holders may take a task of this role: it and every manager role."""
    return manager_roles() | ({role} if role else set())
