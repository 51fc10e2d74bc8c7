"""Figures of a past period from ecomflow's own data (for the quarterly plan and the weekly review)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import CatalogEntry, HumanTask, ProcessInstance, Refund


def period_figures(session: Session, *, start: datetime, end: datetime) -> dict[str, Any]:
    """Count what happened in [start, end): instances by process, tasks done, refunds, publications."""
    started = dict(
        session.execute(
            select(ProcessInstance.process_key, func.count())
            .where(ProcessInstance.created_at >= start, ProcessInstance.created_at < end)
            .group_by(ProcessInstance.process_key)
        ).all()
    )
    completed = dict(
        session.execute(
            select(ProcessInstance.process_key, func.count())
            .where(
                ProcessInstance.ended_at >= start, ProcessInstance.ended_at < end, ProcessInstance.state == "completed"
            )
            .group_by(ProcessInstance.process_key)
        ).all()
    )
    tasks_done = session.scalar(
        select(func.count())
        .select_from(HumanTask)
        .where(HumanTask.completed_at >= start, HumanTask.completed_at < end, HumanTask.state == "completed")
    )
    refunds = session.execute(
        select(func.count(), func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.created_at >= start, Refund.created_at < end
        )
    ).one()
    published = session.scalar(
        select(func.count())
        .select_from(CatalogEntry)
        .where(CatalogEntry.published_at >= start, CatalogEntry.published_at < end)
    )
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "instances_started": started,
        "instances_completed": completed,
        "tasks_completed": tasks_done or 0,
        "refunds": {"count": refunds[0], "amount": str(refunds[1])},
        "catalog_publications": published or 0,
    }
