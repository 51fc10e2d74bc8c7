"""Child instances: a parent step starts each child exactly once and links it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ecomflow.engine.db.models import StepResult
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.instances.auto_step_results import load_result, result_key
from ecomflow.engine.instances.lifecycle import get_instance, start_instance
from ecomflow.engine.people.principals import SYSTEM

MAX_BUSINESS_KEY = 128


def start_child_once(
    session: Session,
    *,
    definitions: Definitions,
    parent_id: str,
    step_key: str,
    index: int,
    process_key: str,
    params: dict[str, Any],
    business_key: str | None = None,
) -> str:
    """Start the child for (parent, step, index) unless it was started; return the child's id.

    The child and the record that it was started commit together: a concurrent replay that
    loses the race fails its insert and rolls its child back, so exactly one child exists.
    """
    key = result_key(parent_id, f"{step_key}[{index}]", 1)
    stored = load_result(session, key=key)
    if stored is not None:
        return stored["child_id"]
    parent = get_instance(session, parent_id)
    derived = f"{parent.business_key}/{step_key}/{index + 1}"
    if len(derived) > MAX_BUSINESS_KEY:
        # Keys nest along chains (photo → module → listing): fall back to the parent's id, which is short.
        derived = f"{step_key}/{index + 1}/{parent_id}"
    child = start_instance(
        session,
        definitions=definitions,
        process_key=process_key,
        business_key=business_key or derived,
        params=params,
        principal=SYSTEM,
        parent_id=parent_id,
        parent_step=step_key,
    )
    session.add(StepResult(key=key, instance_id=parent_id, step_key=step_key, result={"child_id": child.id}))
    session.flush()
    return child.id
