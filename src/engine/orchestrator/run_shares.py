"""Which worker should take a scheduled run, so that two workers do not race for the same one.

Every live worker polls the same scheduled runs. Each prefers its share: the runs whose id, as a
number, modulo the count of live workers, is its place among them (worker_presence.py orders them
alike for all). A run of another's share is taken too once it has waited past a short grace after
its scheduled time: its preferred worker may be busy, slow or dead, and no run should wait on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

# Past this after its scheduled time, any worker takes a run: what a busy or dead worker's share can wait at most
# (plus a poll). The preferred worker, woken by Prefect's event, takes a run well within it.
GRACE_SECONDS = 1.0


def preferred_worker(flow_run_id: UUID, live: Sequence[str]) -> str | None:
    """Return the live worker whose share the run is in, or None when no worker is known to be alive."""
    if not live:
        return None
    # Prefect's run ids are random (uuid4): their value spreads runs evenly over the shares.
    return live[flow_run_id.int % len(live)]


def may_take(
    flow_run_id: UUID, scheduled_at: datetime | None, *, worker_id: str, live: Sequence[str], now: datetime
) -> bool:
    """Return whether this worker should take the run now: its own share, or one that waited past the grace."""
    preferred = preferred_worker(flow_run_id, live)
    # Not among the live ones (its presence not yet written, or the database unreachable): it competes for all.
    if preferred is None or preferred == worker_id or worker_id not in live:
        return True
    return scheduled_at is None or scheduled_at + timedelta(seconds=GRACE_SECONDS) <= now
