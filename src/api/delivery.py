"""Hand fresh outbox messages to Prefect right after the response, so nobody waits for a poll."""

from __future__ import annotations

import logging

from ecomflow.engine.events.dispatcher import Delivery, attempt_delivery
from ecomflow.engine.orchestrator.runs import api_was_recently_healthy, distrust_health

logger = logging.getLogger("ecomflow.api")


def deliver_now(message_ids: list[int]) -> None:
    """Try each message once; the dispatcher retries whatever fails here."""
    # During a Prefect outage the client's own retries would tie up API threads: leave it to the dispatcher.
    if not message_ids or not api_was_recently_healthy():
        return
    for message_id in message_ids:
        try:
            outcome = attempt_delivery(message_id)
        except Exception:
            outcome = Delivery.FAILED
            logger.debug("immediate delivery of outbox message %s failed", message_id, exc_info=True)
        if outcome is Delivery.FAILED:
            # Perhaps Prefect went down since its last healthy answer: the next delivery asks it first. A resume
            # refused because its run has not suspended yet says nothing of Prefect's health (it was one in five).
            distrust_health()
