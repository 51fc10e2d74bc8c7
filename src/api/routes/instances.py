"""Reading and cancelling process instances."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query
from sqlalchemy import select

from ecomflow.api.delivery import deliver_now
from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.presenters import present_instance, present_instance_detail
from ecomflow.api.schemas import CancelIn, InstanceDetailOut, InstanceOut, InstancePage
from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.events.outbox import new_message_ids
from ecomflow.engine.instances.lifecycle import InstanceState, cancel_instance, list_instances, visible_instance

router = APIRouter(tags=["instances"], responses=error_responses(401, 413, 422))
MAX_OFFSET = 1_000_000_000


@router.get("/instances", response_model=InstancePage)
def list_(
    user: CurrentUser,
    process: str | None = None,
    state: InstanceState | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    # Bounded: an offset beyond a 64-bit integer made the database driver fail (a 500).
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> InstancePage:
    """Return the instances the caller may see, newest first."""
    with read_scope() as session:
        rows = list_instances(session, principal=user, process_key=process, state=state, limit=limit, offset=offset)
        return InstancePage(items=[present_instance(i) for i in rows])


@router.get("/instances/{instance_id}", response_model=InstanceDetailOut, responses=error_responses(404))
def get(instance_id: str, user: CurrentUser) -> InstanceDetailOut:
    """Return an instance with its tasks (those the caller may see), history and links."""
    with read_scope() as session:
        instance = visible_instance(session, instance_id, principal=user)
        tasks = list(
            session.scalars(
                select(HumanTask)
                .where(HumanTask.instance_id == instance_id, access.tasks_visible_to(user))
                .order_by(HumanTask.created_at, HumanTask.id)
            )
        )
        return present_instance_detail(session, instance, tasks, principal=user)


@router.post("/instances/{instance_id}/cancel", response_model=InstanceOut, responses=error_responses(403, 404, 409))
def cancel(
    instance_id: str, user: CurrentUser, background: BackgroundTasks, body: CancelIn | None = None
) -> InstanceOut:
    """Cancel an instance, its open tasks and its flow run (managers only)."""
    with session_scope() as session:
        instance = cancel_instance(session, instance_id=instance_id, principal=user, reason=body.reason if body else "")
        background.add_task(deliver_now, new_message_ids(session))
        return present_instance(instance)
