"""Hand fresh outbox messages to Prefect right after the response, so nobody waits for a poll."""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from engine.dispatcher import deliver_one
from engine.models import OutboxMessage
from engine.orchestrator.runs import api_is_healthy

logger = logging.getLogger("ecomflow.api")


def new_message_ids(session: Session) -> list[int]:
    """Return the ids of outbox messages this session has flushed but not yet delivered."""
    session.flush()
    return [obj.id for obj in session.identity_map.values() if isinstance(obj, OutboxMessage) and obj.delivered_at is None]


def deliver_now(message_ids: list[int]) -> None:
    """Try each message once; the dispatcher retries whatever fails here."""
    # During a Prefect outage the client's own retries would tie up API threads: leave it to the dispatcher.
    if not message_ids or not api_is_healthy():
        return
    for message_id in message_ids:
        try:
            deliver_one(message_id)
        except Exception:  # noqa: BLE001 - the dispatcher owns retries
            logger.debug("immediate delivery of outbox message %s failed", message_id, exc_info=True)
