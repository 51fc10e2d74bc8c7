"""Which worker should take a scheduled run, so that two workers do not race for the same one.

Every live worker polls the same scheduled runs. Each prefers its share: the runs whose id, as a
number, modulo the count of live workers, is its place among them (worker_presence.py orders them
alike for all). A run still waiting a grace after its scheduled time passes to the next worker in
that order, and so on every grace: its preferred worker may be saturated, slow or dead, and no run
should wait on it. At any moment one worker's turn at most (a short handover between turns lets a
take decided at the end of one reach the server first), so the takers of an overdue run do not race.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from uuid import UUID

# How long a run is one worker's turn: what a saturated or dead worker's share waits at most (plus the handover
# and a poll). The preferred worker, woken by Prefect's event, takes a run well within it on an idle machine;
# with 1 s, 3 of the first 24 takes of two fresh workers under test load were taken over and raced.
GRACE_SECONDS = 3.0
# At each change of turn, nobody's turn for this long: a take decided at the end of the last turn reaches the
# server first. Without it, on a 2-core machine at load 6-8 (a set_state answered in up to 1 s), 41 of 186 takes
# of two saturated workers were refused (bench.throughput --workers 2).
HANDOVER_SECONDS = 1.0


def preferred_worker(flow_run_id: UUID, live: Sequence[str]) -> str | None:
    """Return the live worker whose share the run is in, or None when no worker is known to be alive."""
    return worker_in_turn(flow_run_id, 0, live)


def worker_in_turn(flow_run_id: UUID, turn: int, live: Sequence[str]) -> str | None:
    """Return the live worker whose turn it is to take the run, turn graces after its scheduled time."""
    if not live:
        return None
    # Prefect's run ids are random (uuid4): their value spreads runs evenly over the shares.
    return live[(flow_run_id.int + turn) % len(live)]


class Claim(Enum):
    """What a worker does with a scheduled run it polled."""

    OWN = "own"  # its share (or no share is known), and its turn: take it
    OVERDUE = "overdue"  # another's share that waited past the grace, and now this worker's turn: take it over
    LEAVE = "leave"  # another worker's turn: that worker takes it


def claim(
    flow_run_id: UUID, scheduled_at: datetime | None, *, worker_id: str, live: Sequence[str], now: datetime
) -> Claim:
    """Return whether this worker should take the run now: its turn, first or after the preferred one's grace."""
    # Not among the live ones (its presence not yet written, or the database unreachable), or no time to count
    # turns from (Prefect sets one on every Scheduled state): it competes for the run, as without shares. Alone,
    # every turn is its own.
    if worker_id not in live or scheduled_at is None or len(live) == 1:
        return Claim.OWN
    waited = (now - scheduled_at).total_seconds()
    turn = max(0, int(waited // GRACE_SECONDS))
    if turn > 0 and waited - turn * GRACE_SECONDS < HANDOVER_SECONDS:
        return Claim.LEAVE
    if worker_in_turn(flow_run_id, turn, live) != worker_id:
        return Claim.LEAVE
    return Claim.OWN if worker_id == preferred_worker(flow_run_id, live) else Claim.OVERDUE
