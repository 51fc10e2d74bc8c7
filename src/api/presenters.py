"""Turn engine rows into API bodies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ecomflow.api import schemas
from ecomflow.api.report_schemas import DurationPercentilesOut, KpiReportOut, KpiRowOut
from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, HumanTask, ProcessInstance
from ecomflow.engine.definitions.processes import ProcessSpec
from ecomflow.engine.definitions.versions import step_of_task
from ecomflow.engine.events.audit import list_events
from ecomflow.engine.files.generated import generated_files
from ecomflow.engine.instances.lifecycle import children_of, get_instance
from ecomflow.engine.orchestrator.runs import flow_run_ui_url
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.reports.kpi import KpiReport, KpiRow, Percentiles
from ecomflow.engine.tasks.actions import list_comments
from ecomflow.engine.tasks.states import ACTIVE_STATES


def present_process(spec: ProcessSpec, *, principal: Principal) -> schemas.ProcessOut:
    return schemas.ProcessOut(
        key=spec.key,
        title=schemas.Label(zh=spec.label.zh, en=spec.label.en),
        version=spec.version,
        start_form=dict(spec.start_form.json_schema),
        steps=[
            schemas.StepOut(
                key=step.key,
                kind=step.kind,
                title=schemas.Label(zh=step.label.zh, en=step.label.en),
                role=step.role,
                roles=list(step.roles),
                due=str(step.due) if step.due else None,
                form=dict(step.form.json_schema) if step.form else None,
            )
            for step in spec.steps
        ],
        schedule={"cron": spec.schedule.cron, "timezone": spec.schedule.timezone} if spec.schedule else None,
        starters=list(spec.starters),
        may_start=access.may_start_process(principal, spec),
    )


def present_task(task: HumanTask, *, now: datetime | None = None) -> schemas.TaskOut:
    # Overdue and at risk speak of open work: an ended task is neither, whatever its forecast said last.
    active = task.state in ACTIVE_STATES
    return schemas.TaskOut(
        id=task.id,
        instance_id=task.instance_id,
        process=task.process_key,
        step=task.step_key,
        kind=task.kind,
        round=task.round,
        role=task.role,
        state=task.state,
        assignee=task.assignee,
        due_at=task.due_at,
        overdue=active and task.due_at is not None and task.due_at < (now or utcnow()),
        priority=task.priority,
        at_risk=active and task.at_risk,
        expected_finish_at=task.expected_finish_at if active else None,
        escalated_to=task.escalated_to,
        created_at=task.created_at,
        version=task.version,
    )


def present_event(event: AuditEvent) -> schemas.EventOut:
    return schemas.EventOut(
        id=event.id, at=event.at, type=event.type, actor=event.actor, task_id=event.task_id, data=event.data
    )


def present_task_detail(session: Session, task: HumanTask) -> schemas.TaskDetailOut:
    form = step_of_task(session, task).form  # the form of the instance's version, the one its completion checks
    instance = get_instance(session, task.instance_id)
    return schemas.TaskDetailOut(
        **present_task(task).model_dump(),
        form=dict(form.json_schema) if form else None,
        context={"params": instance.params, "business_key": instance.business_key, **(task.context or {})},
        output=task.output,
        completed_by=task.completed_by,
        comments=[
            schemas.CommentOut(author=c.author, text=c.text, created_at=c.created_at)
            for c in list_comments(session, task_id=task.id)
        ],
        history=[present_event(e) for e in list_events(session, task_id=task.id)],
    )


def present_instance(instance: ProcessInstance) -> schemas.InstanceOut:
    return schemas.InstanceOut(
        id=instance.id,
        process=instance.process_key,
        business_key=instance.business_key,
        state=instance.state,
        definition_version=instance.definition_version,
        params=instance.params,
        result=instance.result,
        flow_run_id=instance.flow_run_id,
        flow_run_url=flow_run_ui_url(instance.flow_run_id),
        created_at=instance.created_at,
        ended_at=instance.ended_at,
    )


def _link(instance: ProcessInstance) -> schemas.InstanceLink:
    return schemas.InstanceLink(
        id=instance.id, process=instance.process_key, business_key=instance.business_key, state=instance.state
    )


def present_instance_detail(
    session: Session, instance: ProcessInstance, tasks: list[HumanTask], *, principal: Principal
) -> schemas.InstanceDetailOut:
    parent = get_instance(session, instance.parent_id) if instance.parent_id else None
    # Links show only what the caller may open: a child or parent they may not see does not exist for them.
    if parent is not None and not access.may_see_instance(session, principal, parent):
        parent = None
    children = [c for c in children_of(session, instance.id) if access.may_see_instance(session, principal, c)]
    # `tasks` are those the caller may see: the history of the others would leak their ids, actors and reasons.
    shown = {t.id for t in tasks}
    events = [e for e in list_events(session, instance_id=instance.id) if e.task_id is None or e.task_id in shown]
    return schemas.InstanceDetailOut(
        **present_instance(instance).model_dump(),
        tasks=[present_task(t) for t in tasks],
        history=[present_event(e) for e in events],
        parent=_link(parent) if parent else None,
        children=[_link(c) for c in children],
        files=[
            schemas.GeneratedFileOut(
                name=name,
                attachment_id=attachment.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                url=f"/attachments/{attachment.id}",
            )
            for name, attachment in generated_files(session, instance.id)
        ],
    )


def _percentiles(values: Percentiles) -> DurationPercentilesOut:
    return DurationPercentilesOut(p50=values.p50, p90=values.p90)


def present_kpi_row(row: KpiRow) -> KpiRowOut:
    return KpiRowOut(
        key=row.key,
        done=row.done,
        cycle_seconds=_percentiles(row.cycle),
        queue_seconds=_percentiles(row.queue),
        claimed_seconds=_percentiles(row.claimed),
        working_seconds=_percentiles(row.working),
        on_time_rate=row.on_time_rate,
        rework_rate=row.rework_rate,
        open=row.open,
        overdue=row.overdue,
    )


def present_kpi_report(report: KpiReport, *, timezone: str) -> KpiReportOut:
    return KpiReportOut(
        start=report.start,
        end=report.end,
        as_of=report.as_of,
        timezone=timezone,
        group_by=report.group_by.value,
        rows=[present_kpi_row(row) for row in report.rows],
        total=present_kpi_row(report.total),
    )
