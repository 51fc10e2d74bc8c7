"""Which worker should take a scheduled run, so that two workers do not race for the same one.

Every live worker polls the same scheduled runs. Each takes its share: the runs whose id, as a
number, modulo the count of live workers, is its place among them (worker_presence.py orders them
alike for all). A run still waiting a grace after its scheduled time passes to the next worker in
that order, for good: its preferred worker may be saturated, slow or dead, and no run should wait on
it. At any moment one worker may take a run (but for a short handover, nobody's, so that a take
decided just before the grace reaches the server first), so two workers do not race for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

# Past this after its scheduled time, the next worker takes a run: what a dead worker's share waits at most (plus
# the handover and a poll). The preferred worker, woken by Prefect's event, takes a run well within it on an idle
# machine; with 1 s, 3 of the first 24 takes of two fresh workers under test load were taken over and raced.
GRACE_SECONDS = 2.0
# After the grace, nobody's for this long: a take decided just before it (a set_state answered in up to 1 s on a
# 2-core machine at load 6-8) reaches the server before the next worker's. Without it, and with both workers taking
# an overdue run, 78 of 266 takes were refused (bench.throughput --workers 2).
HANDOVER_SECONDS = 1.0


def preferred_worker(flow_run_id: UUID, live: Sequence[str]) -> str | None:
    """Return the live worker whose share the run is in, or None when no worker is known to be alive."""
    if not live:
        return None
    # Prefect's run ids are random (uuid4): their value spreads runs evenly over the shares.
    return live[flow_run_id.int % len(live)]


class Claim(Enum):
    """What a worker does with a scheduled run it polled."""

    OWN = "own"  # its share within the grace (or no share is known): take it
    OVERDUE = "overdue"  # the previous worker's share, past the grace and the handover: take it over
    LEAVE = "leave"  # another worker's to take, or nobody's during the handover


def claim(
    flow_run_id: UUID, scheduled_at: datetime | None, *, worker_id: str, live: Sequence[str], now: datetime
) -> Claim:
    """Return whether this worker should take the run: its own share within the grace, or the previous one's after."""
    # Not among the live ones (its presence not yet written, or the database unreachable), or no time to count the
    # grace from (Prefect sets one on every Scheduled state): it competes for the run, as without shares. Alone,
    # every run is its own.
    if worker_id not in live or scheduled_at is None or len(live) == 1:
        return Claim.OWN
    waited = now - scheduled_at
    if waited < timedelta(seconds=GRACE_SECONDS):
        return Claim.OWN if preferred_worker(flow_run_id, live) == worker_id else Claim.LEAVE
    if waited < timedelta(seconds=GRACE_SECONDS + HANDOVER_SECONDS):
        return Claim.LEAVE
    # The next in order: the same for every worker, so only one of them takes the run over.
    next_worker = live[(flow_run_id.int + 1) % len(live)]
    return Claim.OVERDUE if next_worker == worker_id else Claim.LEAVE
