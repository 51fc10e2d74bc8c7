"""The webhook delivery log (managers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.engine import access
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.errors import Forbidden
from ecomflow.engine.events.notifications import MAX_LOG_LIMIT, Delivery, DeliveryStatus, list_deliveries

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=error_responses(401, 413, 422))


class DeliveryPage(BaseModel):
    # The engine's Delivery dataclass is the item schema: one definition of a log row.
    items: list[Delivery]


@router.get("/deliveries", response_model=DeliveryPage, responses=error_responses(403))
def deliveries(
    user: CurrentUser,
    event: str | None = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LIMIT)] = 50,
) -> DeliveryPage:
    """Return webhook deliveries, newest first: pending, delivered or failed, with attempts and the last error."""
    if not access.may_watch_the_team(user):
        raise Forbidden(f"only managers may read the webhook delivery log; {user.name} is not one")
    with read_scope() as session:
        rows = list_deliveries(session, event=event, status=status, limit=limit)
    return DeliveryPage(items=rows)
