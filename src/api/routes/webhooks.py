"""The delivery log of every notification channel: signed webhooks, DingTalk, WeCom, Feishu and email (managers)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.engine import access
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.errors import Forbidden
from ecomflow.engine.events.delivery_log import MAX_LOG_LIMIT, Delivery, DeliveryStatus, list_deliveries

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=error_responses(401, 413, 422))
ChannelType = Literal["webhook", "dingtalk", "wecom", "feishu", "email"]


class DeliveryPage(BaseModel):
    # The engine's Delivery dataclass is the item schema: one definition of a log row.
    items: list[Delivery]


@router.get("/deliveries", response_model=DeliveryPage, responses=error_responses(403))
def deliveries(
    user: CurrentUser,
    event: str | None = None,
    status: DeliveryStatus | None = None,
    channel_type: ChannelType | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LIMIT)] = 50,
) -> DeliveryPage:
    """Return deliveries of every channel, newest first, with attempts and the last error.

    `channel_type=webhook` lists the signed webhooks alone, as this log did before channels existed;
    `endpoint` is the webhook endpoint's or the channel's name, `url` its target without any secret.
    """
    if not access.may_watch_the_team(user):
        raise Forbidden(f"only managers may read the delivery log; {user.name} is not one")
    with read_scope() as session:
        rows = list_deliveries(session, event=event, status=status, channel_type=channel_type, limit=limit)
    return DeliveryPage(items=rows)
