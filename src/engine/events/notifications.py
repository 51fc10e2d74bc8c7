"""Notifications: which audit events become webhooks and channel messages, queued in the outbox with the change."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import WebhookEndpoint, get_settings
from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage, ProcessInstance
from ecomflow.engine.events import outbox
from ecomflow.engine.events.routing import queue_channel_messages

WEBHOOK_EVENT_BY_AUDIT_TYPE = MappingProxyType(
    {
        "task.created": "task.created",
        "task.assigned": "task.assigned",
        # A delegation hands the task to someone else: for receivers that is an assignment.
        "task.delegated": "task.assigned",
        "task.overdue": "task.overdue",
        "task.escalated": "task.escalated",
        "instance.completed": "instance.completed",
        "report.daily": "report.daily",
    }
)
ALL_EVENTS = "*"
# Audit data keys safe to pass on: never form outputs, params or free text, which may hold customer data.
PASSED_THROUGH_KEYS_BY_TYPE = MappingProxyType(
    {
        "task.escalated": ("to", "release"),
        "report.daily": (
            "report_date",
            "done",
            "open",
            "overdue",
            "on_time_rate",
            "rework_rate",
            "cycle_p50_seconds",
            "cycle_p90_seconds",
            # The day's business totals: amounts and counts, never orders, buyers or event names.
            "gmv",
            "paid_orders",
            "refund_amount",
            "month_target",
            "month_to_date",
            "month_attainment",
            "signups",
            "signups_approved",
        ),
    }
)


def is_subscribed(endpoint: WebhookEndpoint, event: str) -> bool:
    """Return whether the endpoint wants this event."""
    return ALL_EVENTS in endpoint.events or event in endpoint.events


def notify(
    session: Session, *, event: str, data: dict[str, Any], occurred_at: datetime | None = None
) -> list[OutboxMessage]:
    """Queue one webhook message per endpoint subscribed to the event; they commit with the session."""
    occurred = (occurred_at or utcnow()).isoformat()
    return [
        outbox.enqueue(
            session,
            kind=outbox.WEBHOOK,
            # The endpoint is named, not copied: its URL and secret are read from settings at delivery time.
            payload={
                "endpoint": endpoint.name,
                "delivery_id": str(uuid.uuid4()),
                "event": event,
                "occurred_at": occurred,
                "data": data,
            },
        )
        for endpoint in get_settings().webhooks
        if is_subscribed(endpoint, event)
    ]


def notify_audit_event(session: Session, audit: AuditEvent) -> None:
    """Queue the webhooks and channel messages an audit event stands for, if any are configured."""
    event = WEBHOOK_EVENT_BY_AUDIT_TYPE.get(audit.type)
    if event is not None and get_settings().webhooks:
        notify(session, event=event, data=describe(session, audit), occurred_at=audit.at)
    queue_channel_messages(session, audit)


def describe(session: Session, audit: AuditEvent) -> dict[str, Any]:
    """Return what a receiver may know about the event: ids, process, step, role, assignee, due time."""
    data: dict[str, Any] = {"actor": audit.actor, "instance_id": audit.instance_id}
    if audit.task_id is not None:
        data.update(_task_facts(session, audit.task_id))
    elif audit.instance_id is not None:
        data.update(_instance_facts(session, audit.instance_id))
    passed = PASSED_THROUGH_KEYS_BY_TYPE.get(audit.type, ())
    data.update({key: audit.data[key] for key in passed if key in (audit.data or {})})
    return data


def _task_facts(session: Session, task_id: str) -> dict[str, Any]:
    # A column query reads the row as this transaction left it, whatever the caller's objects hold.
    row = session.execute(
        select(
            HumanTask.instance_id,
            HumanTask.process_key,
            HumanTask.step_key,
            HumanTask.role,
            HumanTask.assignee,
            HumanTask.due_at,
        ).where(HumanTask.id == task_id)
    ).one_or_none()
    if row is None:
        return {"task_id": task_id}
    return {
        "task_id": task_id,
        "instance_id": row.instance_id,
        "process": row.process_key,
        "step": row.step_key,
        "role": row.role,
        "assignee": row.assignee,
        "due_at": row.due_at.isoformat() if row.due_at else None,
    }


def _instance_facts(session: Session, instance_id: str) -> dict[str, Any]:
    process_key = session.scalar(select(ProcessInstance.process_key).where(ProcessInstance.id == instance_id))
    return {"process": process_key} if process_key is not None else {}
