"""Wake the worker the moment Prefect schedules or resumes one of our runs, instead of at its next poll.

Prefect emits an event for every flow-run state change; the worker listens on the events
websocket for Scheduled/Resuming runs of its deployments and polls right away. The poll stays
as the fallback, so a dropped connection only costs latency, never a run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from uuid import UUID

from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

logger = logging.getLogger("ecomflow.worker")

# The states a run waits in for a worker: newly created, resumed after a suspend, retrying.
WAKE_EVENTS = ["prefect.flow-run.Scheduled", "prefect.flow-run.Resuming", "prefect.flow-run.AwaitingRetry"]
_RECONNECT_SECONDS = 2.0


def wake_filter(deployment_ids: Iterable[UUID]) -> EventFilter:
    """Return the filter for state events of runs of these deployments."""
    return EventFilter(
        event=EventNameFilter(name=WAKE_EVENTS),
        related=EventRelatedFilter(id=[f"prefect.deployment.{deployment_id}" for deployment_id in deployment_ids]),
    )


def start_wakeups(deployment_ids: Iterable[UUID], on_wake: Callable[[], None]) -> threading.Thread:
    """Listen in a daemon thread (it ends with the process) and call on_wake for every matching event."""
    event_filter = wake_filter(deployment_ids)
    thread = threading.Thread(target=asyncio.run, args=(_listen(event_filter, on_wake),), name="wakeups", daemon=True)
    thread.start()
    return thread


async def _listen(event_filter: EventFilter, on_wake: Callable[[], None]) -> None:
    while True:
        try:
            async with get_events_subscriber(filter=event_filter, reconnection_attempts=0) as subscriber:
                async for _ in subscriber:
                    on_wake()
        except Exception as exc:
            logger.info("Prefect events stream interrupted (%s); the worker polls meanwhile", exc)
        await asyncio.sleep(_RECONNECT_SECONDS)
