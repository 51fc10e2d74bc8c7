"""Stored results of auto steps: a replayed flow reads the result instead of running the step again."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ecomflow.engine.db.models import StepResult
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR


def result_key(instance_id: str, step_key: str, round: int) -> str:
    """Return the once-only key of an auto step in an instance."""
    return f"{instance_id}:{step_key}:{round}"


def load_result(session: Session, *, key: str) -> dict[str, Any] | None:
    """Return the stored result of a step, or None if it has not run."""
    stored = session.get(StepResult, key)
    return None if stored is None else stored.result


def store_result(
    session: Session, *, key: str, instance_id: str, step_key: str, result: dict[str, Any]
) -> dict[str, Any]:
    """Store a step's result unless one is stored already; return the one that counts."""
    if not insert_unless_exists(
        session, StepResult(key=key, instance_id=instance_id, step_key=step_key, result=result)
    ):
        return load_result(session, key=key)
    record_event(
        session,
        type="step.completed",
        actor=SYSTEM_ACTOR,
        instance_id=instance_id,
        data={"step": step_key, "result": result},
    )
    return result
