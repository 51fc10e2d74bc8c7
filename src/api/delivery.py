"""Hand fresh outbox messages to Prefect right after the response, so nobody waits for a poll."""

from __future__ import annotations

import logging

from ecomflow.engine.events.dispatcher import deliver_one
from ecomflow.engine.orchestrator.runs import api_is_healthy

logger = logging.getLogger("ecomflow.api")


def deliver_now(message_ids: list[int]) -> None:
    """Try each message once; the dispatcher retries whatever fails here."""
    # During a Prefect outage the client's own retries would tie up API threads: leave it to the dispatcher.
    if not message_ids or not api_is_healthy():
        return
    for message_id in message_ids:
        try:
            deliver_one(message_id)
        except Exception:
            logger.debug("immediate delivery of outbox message %s failed", message_id, exc_info=True)
