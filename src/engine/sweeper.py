"""Turn due times into events: expire tasks, fire timers, send daily reminders."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from engine.clock import utcnow
from engine.config import get_settings
from engine.db import session_scope
from engine.process_specs import get_definitions
from engine.reminders import send_daily_reminders
from engine.steps import expire_due_tasks
from engine.timers import fire_due_timers

logger = logging.getLogger("ecomflow.sweeper")


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    expired: int
    timers_fired: int
    reminded: int


def sweep_once(*, now: datetime | None = None) -> SweepResult:
    """Handle everything due by now. Tests pass a later now instead of sleeping."""
    now = now or utcnow()
    with session_scope() as session:
        expired = len(expire_due_tasks(session, now=now))
    with session_scope() as session:
        fired = len(fire_due_timers(session, now=now))
    with session_scope() as session:
        reminded = len(send_daily_reminders(session, definitions=get_definitions(), now=now))
    return SweepResult(expired=expired, timers_fired=fired, reminded=reminded)


def run_sweeper(stop: threading.Event) -> None:
    """Sweep until stop is set."""
    while not stop.is_set():
        try:
            sweep_once()
        except Exception:  # noqa: BLE001 - e.g. the database restarting; keep going
            logger.warning("sweeping failed; retrying", exc_info=True)
        stop.wait(get_settings().sweeper_poll_seconds)
