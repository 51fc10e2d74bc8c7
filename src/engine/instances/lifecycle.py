"""Process instances: start, read, cancel, and the state the running flow reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.definitions.forms import validate_form
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.definitions.versions import current_version
from ecomflow.engine.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.files.form_files import check_file_uses, find_file_uses, reference_file_uses
from ecomflow.engine.people.principals import SYSTEM_ACTOR, Principal
from ecomflow.engine.tasks.moves import try_move_task
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskAction


class InstanceState(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


ACTIVE_INSTANCE_STATES = frozenset({InstanceState.RUNNING, InstanceState.WAITING})


def start_instance(
    session: Session,
    *,
    definitions: Definitions,
    process_key: str,
    business_key: str,
    params: dict[str, Any],
    principal: Principal,
    parent_id: str | None = None,
    parent_step: str | None = None,
    start_run: bool = True,
) -> ProcessInstance:
    """Check the starter, validate params, create the instance pinned to the current version, queue its run's start."""
    spec = definitions.process(process_key)
    access.check_may_start(principal, spec)
    actor = principal.name
    problems = validate_form(spec.start_form, params)
    uses = find_file_uses(spec.start_form, params) if not problems else []
    problems = problems or check_file_uses(session, uses, principal=principal)
    if problems:
        raise ValidationFailed(f"params of {process_key} break {len(problems)} rule(s)", problems=problems)
    version = current_version(session, definitions, process_key)
    instance = ProcessInstance(
        process_key=process_key,
        definition_version=version,
        business_key=business_key,
        active_key=business_key,
        state=InstanceState.RUNNING,
        params=params,
        parent_id=parent_id,
        parent_step=parent_step,
        started_by=actor,
    )
    if not insert_unless_exists(session, instance):
        raise Conflict(
            f"an active {process_key} instance with business key {business_key} already exists",
            process=process_key,
            business_key=business_key,
        )
    reference_file_uses(session, uses, instance_id=instance.id)
    record_event(
        session,
        type="instance.started",
        actor=actor,
        instance_id=instance.id,
        data={"process": process_key, "business_key": business_key, "version": version},
    )
    if start_run:
        outbox.enqueue(session, kind=outbox.START_RUN, instance_id=instance.id)
    return instance


def get_instance(session: Session, instance_id: str, *, for_update: bool = False) -> ProcessInstance:
    """Return an instance by id or raise NotFound."""
    query = select(ProcessInstance).where(ProcessInstance.id == instance_id)
    if for_update:
        query = query.with_for_update()
    instance = session.scalar(query)
    if instance is None:
        raise NotFound(f"instance {instance_id} does not exist", instance_id=instance_id)
    return instance


def visible_instance(session: Session, instance_id: str, *, principal: Principal) -> ProcessInstance:
    """Return an instance the caller may see (managers, its starter, who may see one of its tasks), else NotFound."""
    instance = get_instance(session, instance_id)
    if not access.may_see_instance(session, principal, instance):
        raise NotFound(f"instance {instance_id} does not exist", instance_id=instance_id)
    return instance


def list_instances(
    session: Session,
    *,
    principal: Principal,
    process_key: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ProcessInstance]:
    """Return instances the caller may see, newest first."""
    query = (
        select(ProcessInstance)
        .where(access.instances_visible_to(principal))
        .order_by(ProcessInstance.created_at.desc(), ProcessInstance.id)
    )
    if process_key:
        query = query.where(ProcessInstance.process_key == process_key)
    if state:
        query = query.where(ProcessInstance.state == state)
    return list(session.scalars(query.limit(limit).offset(offset)))


def children_of(session: Session, instance_id: str) -> list[ProcessInstance]:
    """Return the child instances of an instance, oldest first."""
    query = select(ProcessInstance).where(ProcessInstance.parent_id == instance_id).order_by(ProcessInstance.created_at)
    return list(session.scalars(query))


def set_instance_state(
    session: Session, *, instance: ProcessInstance, state: InstanceState, actor: str = SYSTEM_ACTOR, **data: Any
) -> bool:
    """Move an active instance to a new state with its audit event; return False if nothing changed."""
    if instance.state == state or instance.state not in ACTIVE_INSTANCE_STATES:
        return False
    now = utcnow()
    previous = instance.state
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if state not in ACTIVE_INSTANCE_STATES:
        values.update(ended_at=now, active_key=None)
    # Compare-and-set: a cancel and the flow's own completion may race; only one wins.
    moved = session.execute(
        update(ProcessInstance)
        .where(ProcessInstance.id == instance.id, ProcessInstance.state == previous)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(instance)
    if moved.rowcount != 1:
        return False
    record_event(
        session, type=f"instance.{state.value}", actor=actor, instance_id=instance.id, data={"from": previous, **data}
    )
    return True


def cancel_instance(session: Session, *, instance_id: str, principal: Principal, reason: str = "") -> ProcessInstance:
    """Cancel an active instance, its open tasks and its flow run (managers only)."""
    instance = visible_instance(session, instance_id, principal=principal)
    if not access.may_cancel_instance(principal):
        raise Forbidden(f"only managers may cancel instance {instance_id}", instance_id=instance_id)
    if not set_instance_state(
        session, instance=instance, state=InstanceState.CANCELLED, actor=principal.name, reason=reason
    ):
        raise Conflict(f"instance {instance_id} is {instance.state} and cannot be cancelled", instance_id=instance_id)
    open_tasks = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.state.in_(ACTIVE_STATES))
    )
    now = utcnow()
    for task in list(open_tasks):
        # A task completed a moment ago stays completed: its compare-and-set loses and nothing happens.
        try_move_task(session, task, TaskAction.CANCEL, actor=principal.name, reason="instance cancelled", at=now)
    outbox.enqueue(session, kind=outbox.CANCEL_RUN, instance_id=instance_id)
    return instance


def find_instance_of_run(session: Session, *, flow_run_id: str) -> ProcessInstance | None:
    """Return the instance a flow run executes, if any."""
    return session.scalar(select(ProcessInstance).where(ProcessInstance.flow_run_id == flow_run_id))


def record_flow_run(session: Session, *, instance_id: str, flow_run_id: str) -> None:
    """Remember which Prefect flow run executes the instance."""
    session.execute(
        update(ProcessInstance)
        .where(ProcessInstance.id == instance_id, ProcessInstance.flow_run_id.is_(None))
        .values(flow_run_id=flow_run_id)
        .execution_options(synchronize_session=False)
    )
