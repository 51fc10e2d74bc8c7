"""Hand fresh outbox messages to Prefect right after the response, so nobody waits for a poll."""

from __future__ import annotations

import logging

from ecomflow.engine.events.dispatcher import deliver_one
from ecomflow.engine.orchestrator.runs import api_was_recently_healthy, distrust_health

logger = logging.getLogger("ecomflow.api")


def deliver_now(message_ids: list[int]) -> None:
    """Try each message once; the dispatcher retries whatever fails here."""
    # During a Prefect outage the client's own retries would tie up API threads: leave it to the dispatcher.
    if not message_ids or not api_was_recently_healthy():
        return
    for message_id in message_ids:
        try:
            delivered = deliver_one(message_id)
        except Exception:
            delivered = False
            logger.debug("immediate delivery of outbox message %s failed", message_id, exc_info=True)
        if not delivered:
            # Perhaps Prefect went down since its last healthy answer: the next delivery asks it first.
            distrust_health()
