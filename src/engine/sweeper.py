"""Turn due times into events: expire tasks past their expiry (the flow takes its expiry path)."""
from __future__ import annotations

import logging
import threading
from datetime import datetime

from engine.clock import utcnow
from engine.config import get_settings
from engine.db import session_scope
from engine.steps import expire_due_tasks

logger = logging.getLogger("ecomflow.sweeper")


def sweep_once(*, now: datetime | None = None) -> int:
    """Expire every task due by now; return how many expired. Tests pass a later now instead of sleeping."""
    with session_scope() as session:
        return len(expire_due_tasks(session, now=now or utcnow()))


def run_sweeper(stop: threading.Event) -> None:
    """Sweep until stop is set."""
    while not stop.is_set():
        try:
            sweep_once()
        except Exception:  # noqa: BLE001 - e.g. the database restarting; keep going
            logger.warning("sweeping failed; retrying", exc_info=True)
        stop.wait(get_settings().sweeper_poll_seconds)
