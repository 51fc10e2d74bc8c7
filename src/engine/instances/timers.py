"""Business waits with a due time (a go-live slot, an event's end), fired by the sweeper."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import Timer
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR


def timer_pause_prefix(timer_id: str) -> str:
    """Return the start of every pause key used while waiting on this timer."""
    return f"timer:{timer_id}:"


def timer_pause_key(timer: Timer) -> str:
    """Return the key the flow suspends with while waiting on this timer."""
    return f"{timer_pause_prefix(timer.id)}{timer.suspend_seq}"


def find_timer(session: Session, *, instance_id: str, step_key: str, round: int) -> Timer | None:
    """Return the timer of (instance, step, round), if armed."""
    query = select(Timer).where(Timer.instance_id == instance_id, Timer.step_key == step_key, Timer.round == round)
    return session.scalar(query.execution_options(populate_existing=True))


def arm_timer(
    session: Session, *, instance_id: str, step_key: str, round: int, fire_at: datetime, now: datetime
) -> Timer:
    """Arm the step's timer once; a time already past fires at once."""
    existing = find_timer(session, instance_id=instance_id, step_key=step_key, round=round)
    if existing is not None:
        return existing
    timer = Timer(
        instance_id=instance_id,
        step_key=step_key,
        round=round,
        fire_at=fire_at,
        fired_at=now if fire_at <= now else None,
        created_at=now,
    )
    if not insert_unless_exists(session, timer):
        return find_timer(session, instance_id=instance_id, step_key=step_key, round=round)
    record_event(
        session,
        type="timer.armed",
        actor=SYSTEM_ACTOR,
        instance_id=instance_id,
        data={"step": step_key, "round": round, "fire_at": fire_at.isoformat()},
        at=now,
    )
    return timer


def note_early_resume(session: Session, *, timer_id: str) -> Timer:
    """Record a resume that came before the timer fired, so the flow can suspend anew."""
    session.execute(
        update(Timer)
        .where(Timer.id == timer_id)
        .values(suspend_seq=Timer.suspend_seq + 1)
        .execution_options(synchronize_session=False)
    )
    return session.get(Timer, timer_id, populate_existing=True)


def fire_due_timers(session: Session, *, now: datetime, limit: int = 100) -> list[Timer]:
    """Fire every timer due by now, once each even with several sweepers, and queue the resumes."""
    due = list(
        session.scalars(
            select(Timer).where(Timer.fired_at.is_(None), Timer.fire_at <= now).order_by(Timer.fire_at).limit(limit)
        )
    )
    fired = []
    for timer in due:
        moved = session.execute(
            update(Timer)
            .where(Timer.id == timer.id, Timer.fired_at.is_(None))
            .values(fired_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            continue
        record_event(
            session,
            type="timer.fired",
            actor=SYSTEM_ACTOR,
            instance_id=timer.instance_id,
            data={"step": timer.step_key, "round": timer.round, "fire_at": timer.fire_at.isoformat()},
            at=now,
        )
        outbox.enqueue_resume(session, instance_id=timer.instance_id, pause_key_prefix=timer_pause_prefix(timer.id))
        fired.append(timer)
    return fired
