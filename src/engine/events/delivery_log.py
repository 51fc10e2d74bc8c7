"""The delivery log: every webhook and channel message, pending, delivered or failed, for managers to read.

Rows never show a secret: a robot's URL is shown without its credential, an email channel as its server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.config import Settings, get_settings
from ecomflow.engine.db.models import OutboxMessage
from ecomflow.engine.events import outbox
from ecomflow.engine.events.channels.common import redacted_target

MAX_LOG_LIMIT = 200
WEBHOOK_TYPE = "webhook"


class DeliveryStatus(StrEnum):
    """Where a delivery stands: still trying, accepted, or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    """One webhook or channel message as the delivery log shows it."""

    id: int
    delivery_id: str
    # The webhook endpoint's or the channel's name.
    endpoint: str
    channel_type: str
    url: str | None
    event: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None
    next_attempt_at: datetime | None
    # Set when the message went inside another one's digest (a burst over the channel's rate limit).
    delivered_with: int | None = None


def status_of(message: OutboxMessage) -> DeliveryStatus:
    """Return where a message stands."""
    if message.delivered_at is not None:
        return DeliveryStatus.DELIVERED
    if message.failed_at is not None:
        return DeliveryStatus.FAILED
    return DeliveryStatus.PENDING


def targets_of(settings: Settings) -> dict[tuple[str, str], str]:
    """Return where each configured endpoint and channel sends, by (type, name), free of secrets."""
    targets = {(WEBHOOK_TYPE, endpoint.name): endpoint.url for endpoint in settings.webhooks}
    for channel in settings.channels:
        if channel.type == "email":
            targets[(channel.type, channel.name)] = f"smtp://{channel.host}:{channel.port}"
        elif channel.webhook is not None:
            targets[(channel.type, channel.name)] = redacted_target(channel.webhook.get_secret_value())
    return targets


def _present(message: OutboxMessage, targets: dict[tuple[str, str], str]) -> Delivery:
    status = status_of(message)
    payload = message.payload
    channel_type = payload.get("channel_type", WEBHOOK_TYPE)
    name = payload["endpoint"] if message.kind == outbox.WEBHOOK else payload["channel"]
    return Delivery(
        id=message.id,
        delivery_id=payload["delivery_id"],
        endpoint=name,
        channel_type=channel_type,
        url=targets.get((channel_type, name)),
        event=payload["event"],
        status=status,
        attempts=message.attempts,
        last_error=message.last_error,
        created_at=message.created_at,
        delivered_at=message.delivered_at,
        failed_at=message.failed_at,
        next_attempt_at=message.available_at if status is DeliveryStatus.PENDING else None,
        delivered_with=message.delivered_with,
    )


def list_deliveries(
    session: Session,
    *,
    event: str | None = None,
    status: DeliveryStatus | None = None,
    channel_type: str | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """Return webhook and channel deliveries, newest first; the URL is the current one (None once removed)."""
    kinds = {WEBHOOK_TYPE: [outbox.WEBHOOK], None: [outbox.WEBHOOK, outbox.CHANNEL]}.get(channel_type, [outbox.CHANNEL])
    query = select(OutboxMessage).where(OutboxMessage.kind.in_(kinds)).order_by(OutboxMessage.id.desc())
    if channel_type not in (None, WEBHOOK_TYPE):
        query = query.where(OutboxMessage.payload["channel_type"].as_string() == channel_type)
    if event is not None:
        query = query.where(OutboxMessage.payload["event"].as_string() == event)
    if status is DeliveryStatus.PENDING:
        query = query.where(OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None))
    elif status is DeliveryStatus.DELIVERED:
        query = query.where(OutboxMessage.delivered_at.is_not(None))
    elif status is DeliveryStatus.FAILED:
        query = query.where(OutboxMessage.failed_at.is_not(None))
    targets = targets_of(get_settings())
    return [_present(message, targets) for message in session.scalars(query.limit(min(limit, MAX_LOG_LIMIT)))]
