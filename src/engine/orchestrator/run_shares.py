"""Which worker should take a scheduled run, so that two workers do not race for the same one.

Every live worker polls the same scheduled runs. Each prefers its share: the runs whose id, as a
number, modulo the count of live workers, is its place among them (worker_presence.py orders them
alike for all). A run of another's share is taken too once it has waited past a short grace after
its scheduled time: its preferred worker may be busy, slow or dead, and no run should wait on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

# Past this after its scheduled time, any worker takes a run: what a busy or dead worker's share can wait at most
# (plus a poll). The preferred worker, woken by Prefect's event, takes a run well within it, except just after it
# started: with 1 s, 3 of the first 24 takes of two fresh workers under test load were taken over and raced.
GRACE_SECONDS = 2.0


def preferred_worker(flow_run_id: UUID, live: Sequence[str]) -> str | None:
    """Return the live worker whose share the run is in, or None when no worker is known to be alive."""
    if not live:
        return None
    # Prefect's run ids are random (uuid4): their value spreads runs evenly over the shares.
    return live[flow_run_id.int % len(live)]


class Claim(Enum):
    """What a worker does with a scheduled run it polled."""

    OWN = "own"  # its share (or no share is known): take it
    OVERDUE = "overdue"  # another worker's share, waited past the grace: take it over
    LEAVE = "leave"  # another worker's share, still within the grace: that worker takes it


def claim(
    flow_run_id: UUID, scheduled_at: datetime | None, *, worker_id: str, live: Sequence[str], now: datetime
) -> Claim:
    """Return whether this worker should take the run now: its own share, or one that waited past the grace."""
    preferred = preferred_worker(flow_run_id, live)
    # Not among the live ones (its presence not yet written, or the database unreachable): it competes for all.
    if preferred is None or preferred == worker_id or worker_id not in live:
        return Claim.OWN
    if scheduled_at is None or scheduled_at + timedelta(seconds=GRACE_SECONDS) <= now:
        return Claim.OVERDUE
    return Claim.LEAVE
