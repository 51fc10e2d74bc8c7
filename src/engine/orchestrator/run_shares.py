"""Which worker should take a scheduled run, so that two workers do not race for the same one.

Every live worker polls the same scheduled runs. Each takes its share: the runs whose id, as a
number, modulo the count of live workers, is its place among them (worker_presence.py orders them
alike for all). A run of another's share that waited past a short grace is taken too, but only
with the slots left after its own share, and youngest first, while its worker works through its
share oldest first: the two meet on one run only when that worker is down to its last.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import TypeVar
from uuid import UUID

# Past this after its scheduled time, another worker may take a run: what a dead worker's share waits at most (plus
# a poll). The preferred worker, woken by Prefect's event, takes a run well within it on an idle machine; with 1 s,
# 3 of the first 24 takes of two fresh workers under test load were taken over and raced.
GRACE_SECONDS = 2.0

Run = TypeVar("Run")


def preferred_worker(flow_run_id: UUID, live: Sequence[str]) -> str | None:
    """Return the live worker whose share the run is in, or None when no worker is known to be alive."""
    if not live:
        return None
    # Prefect's run ids are random (uuid4): their value spreads runs evenly over the shares.
    return live[flow_run_id.int % len(live)]


class Claim(Enum):
    """What a worker does with a scheduled run it polled."""

    OWN = "own"  # its share (or no share is known): take it
    OVERDUE = "overdue"  # another's share that waited past the grace: take it with a slot its own share left
    LEAVE = "leave"  # another's share within the grace: that worker takes it


def claim(
    flow_run_id: UUID, scheduled_at: datetime | None, *, worker_id: str, live: Sequence[str], now: datetime
) -> Claim:
    """Return whether this worker should take the run: its own share, or another's that waited past the grace."""
    # Not among the live ones (its presence not yet written, or the database unreachable), or no time to count the
    # grace from (Prefect sets one on every Scheduled state): it competes for the run, as without shares.
    if worker_id not in live or scheduled_at is None or preferred_worker(flow_run_id, live) == worker_id:
        return Claim.OWN
    if scheduled_at + timedelta(seconds=GRACE_SECONDS) <= now:
        return Claim.OVERDUE
    return Claim.LEAVE


def take_order(claimed: Sequence[tuple[Run, Claim]]) -> list[tuple[Run, Claim]]:
    """Order polled runs (oldest first, as Prefect sends them) for taking: own share oldest first, then overdue
    ones of other shares youngest first, away from where their own worker takes; runs to leave are left out."""
    own = [(run, share) for run, share in claimed if share is Claim.OWN]
    overdue = [(run, share) for run, share in claimed if share is Claim.OVERDUE]
    return [*own, *reversed(overdue)]
