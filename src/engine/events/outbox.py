"""The outbox: messages to Prefect, webhooks and channels written with the change, delivered after commit, retried."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import OutboxMessage

START_RUN = "start_run"
RESUME_RUN = "resume_run"
CANCEL_RUN = "cancel_run"
WEBHOOK = "webhook"
CHANNEL = "channel"

MAX_BACKOFF = timedelta(seconds=30)
NEW_MESSAGES = "ecomflow.outbox.new"


class Undeliverable(Exception):
    """The message can never be delivered: mark it failed instead of retrying."""


class Deferred(Exception):
    """The message must wait until `until` (a rate limit): put it back without counting an attempt."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until


def enqueue(
    session: Session,
    *,
    kind: str,
    instance_id: str | None = None,
    task_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Add a message to the session; it becomes deliverable when the session commits."""
    message = OutboxMessage(kind=kind, instance_id=instance_id, task_id=task_id, payload=payload or {})
    session.add(message)
    # A strong reference: callers hand the new messages to Prefect right after the commit.
    session.info.setdefault(NEW_MESSAGES, []).append(message)
    return message


def new_message_ids(session: Session) -> list[int]:
    """Return the ids of the messages this session enqueued (flushing to get them)."""
    session.flush()
    return [message.id for message in session.info.get(NEW_MESSAGES, [])]


def enqueue_resume(
    session: Session, *, instance_id: str, pause_key_prefix: str, task_id: str | None = None
) -> OutboxMessage:
    """Queue the resume of a run that is suspended on a key starting with the prefix."""
    return enqueue(
        session,
        kind=RESUME_RUN,
        instance_id=instance_id,
        task_id=task_id,
        payload={"pause_key_prefix": pause_key_prefix},
    )


def undelivered_resumes(session: Session, *, instance_id: str, now: datetime) -> dict[int, bool]:
    """Return the instance's resumes not yet delivered, whatever their backoff: id → leased by someone now."""
    query = select(OutboxMessage.id, OutboxMessage.locked_until).where(
        OutboxMessage.delivered_at.is_(None),
        OutboxMessage.failed_at.is_(None),
        OutboxMessage.kind == RESUME_RUN,
        OutboxMessage.instance_id == instance_id,
    )
    rows = session.execute(query.order_by(OutboxMessage.id))
    return {message_id: locked_until is not None and locked_until >= now for message_id, locked_until in rows}


def pending_ids(session: Session, *, now: datetime, limit: int = 100) -> list[int]:
    """Return ids of messages due for delivery and not leased by anyone."""
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            OutboxMessage.available_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def lease(session: Session, *, message_id: int, now: datetime, seconds: float) -> OutboxMessage | None:
    """Take a message for delivery (compare-and-set), or return None if another holder has it."""
    taken = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
        .values(locked_until=now + timedelta(seconds=seconds), attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        return None
    return session.get(OutboxMessage, message_id, populate_existing=True)


def mark_delivered(session: Session, *, message_id: int, now: datetime) -> None:
    """Record that a message reached Prefect."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(delivered_at=now, locked_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )


def mark_retry(
    session: Session, *, message_id: int, attempts: int, now: datetime, error: str, max_backoff: timedelta = MAX_BACKOFF
) -> None:
    """Put a message back with exponential backoff after a failed delivery."""
    delay = min(timedelta(seconds=0.5 * 2 ** max(attempts - 1, 0)), max_backoff)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(available_at=now + delay, locked_until=None, last_error=error[:2000])
        .execution_options(synchronize_session=False)
    )


def mark_deferred(session: Session, *, message_id: int, until: datetime) -> None:
    """Put a leased message back until a moment, giving back the attempt its lease counted."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(available_at=until, locked_until=None, attempts=OutboxMessage.attempts - 1)
        .execution_options(synchronize_session=False)
    )


def mark_failed(session: Session, *, message_id: int, now: datetime, error: str) -> None:
    """Record that delivery was given up: the message is never tried again."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(failed_at=now, locked_until=None, last_error=error[:2000])
        .execution_options(synchronize_session=False)
    )


def undelivered_count(session: Session) -> int:
    """Return how many messages still wait for delivery (given-up ones wait no more)."""
    query = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None))
    )
    return session.scalar(query) or 0
