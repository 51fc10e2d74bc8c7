"""Append-only audit events, always added to the caller's transaction with the webhooks they stand for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.events.notifications import notify_audit_event

_INSERT_EVENT = insert(AuditEvent.__table__)
_EVENT_COLUMNS = ("type", "actor", "instance_id", "task_id", "data", "at")


def record_event(
    session: Session,
    *,
    type: str,
    actor: str,
    instance_id: str | None = None,
    task_id: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Insert one audit event in the session's transaction; it commits with the change it describes."""
    event = AuditEvent(
        type=type, actor=actor, instance_id=instance_id, task_id=task_id, data=data or {}, at=at or utcnow()
    )
    # A plain INSERT, not an object for the unit of work: the events are only ever appended (profiled: half
    # the cost of a claim went to flushing the event object).
    session.execute(_INSERT_EVENT, {column: getattr(event, column) for column in _EVENT_COLUMNS})
    # Same transaction: a rolled-back change notifies nobody, a committed one is sure to.
    notify_audit_event(session, event)
    return event


def record_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Insert many audit events (each with type, actor, instance_id, data, at) in one executemany INSERT."""
    if not events:
        return
    rows = [{"task_id": None, **event} for event in events]
    session.execute(_INSERT_EVENT, rows)
    for row in rows:
        notify_audit_event(session, AuditEvent(**row))


def list_events(session: Session, *, instance_id: str | None = None, task_id: str | None = None) -> list[AuditEvent]:
    """Return the events of an instance or a task, oldest first."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if instance_id is not None:
        query = query.where(AuditEvent.instance_id == instance_id)
    if task_id is not None:
        query = query.where(AuditEvent.task_id == task_id)
    return list(session.scalars(query))
