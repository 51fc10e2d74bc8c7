"""Routing: an audit event becomes one outbox message per channel its routes name, in the change's transaction.

A channel message's payload is everything its delivery needs but the channel's URL and secrets, which
are read from settings when it is sent: the channel's name and type, a delivery id, the event, the
notice (see notices.py), and who it names: @-mentions (name, mobile, the channel's user id) for robots,
addresses for email.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ecomflow.engine.config import ChannelConfig, get_settings
from ecomflow.engine.db.models import AuditEvent, OutboxMessage, User
from ecomflow.engine.events import outbox
from ecomflow.engine.events.notices import describe_event, event_of, people_named
from ecomflow.engine.events.routing_file import get_routing


def queue_channel_messages(session: Session, audit: AuditEvent) -> list[OutboxMessage]:
    """Queue the channel messages an audit event stands for; they commit with the change it records."""
    channels = get_settings().channels
    if not channels or event_of(audit) is None:
        return []
    routing = get_routing()
    described = describe_event(session, audit, language=routing.language)
    if described is None:
        return []
    names = routing.channels_for(event=described.event, roles=described.roles, process=described.process)
    chosen = [channel for channel in channels if channel.name in names]
    if not chosen:
        return []
    people = {
        for_email: people_named(session, described, for_email=for_email)
        for for_email in {channel.type == "email" for channel in chosen}
    }
    queued = [
        enqueue_channel_message(
            session,
            channel=channel,
            event=described.event,
            notice=described.notice,
            people=people[channel.type == "email"],
            occurred_at=audit.at,
            instance_id=audit.instance_id,
            task_id=audit.task_id,
        )
        for channel in chosen
    ]
    return [message for message in queued if message is not None]


def enqueue_channel_message(
    session: Session,
    *,
    channel: ChannelConfig,
    event: str,
    notice: dict[str, Any],
    people: Sequence[User],
    occurred_at: datetime,
    instance_id: str | None = None,
    task_id: str | None = None,
) -> OutboxMessage | None:
    """Queue one message to a channel; None for an email that would name no recipient."""
    payload: dict[str, Any] = {
        "channel": channel.name,
        "channel_type": channel.type,
        "delivery_id": str(uuid.uuid4()),
        "event": event,
        "occurred_at": occurred_at.isoformat(),
        "notice": notice,
    }
    if channel.type == "email":
        recipients = list(dict.fromkeys([*(user.email for user in people if user.email), *channel.to]))
        if not recipients:
            return None
        payload["recipients"] = recipients
    else:
        payload["mentions"] = [mention for user in people if (mention := mention_of(user, channel.type))]
    return outbox.enqueue(session, kind=outbox.CHANNEL, instance_id=instance_id, task_id=task_id, payload=payload)


def mention_of(user: User, channel_type: str) -> dict[str, str | None] | None:
    """Return how a robot of that type can @-mention the user, or None when it cannot."""
    # Feishu's custom bot mentions by open_id only; DingTalk and WeCom also by mobile number.
    mobile = user.mobile if channel_type in ("dingtalk", "wecom") else None
    user_id = getattr(user, f"{channel_type}_id", None)
    if not (mobile or user_id):
        return None
    return {"name": user.name, "mobile": mobile, "user_id": user_id}
