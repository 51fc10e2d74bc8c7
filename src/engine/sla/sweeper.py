"""Turn due times into events: expire tasks, fire timers, send reminders, flag overdue tasks and escalate them;
close waves whose window passed; queue the morning digest; end timed-out web sessions, forget sign-in failures
too old to count, and delete uploads nobody used."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events.digests import queue_daily_digest_if_due
from ecomflow.engine.files.attachments import delete_unused_uploads
from ecomflow.engine.files.storage import get_store, remove_stale_spool_files
from ecomflow.engine.instances.timers import fire_due_timers
from ecomflow.engine.intake.waves import close_due_waves
from ecomflow.engine.people.sign_in_limits import prune_sign_in_failures, sign_in_limits
from ecomflow.engine.people.web_sessions import end_timed_out_web_sessions, session_policy
from ecomflow.engine.sla.forecast import refresh_forecasts
from ecomflow.engine.sla.reminders import send_daily_reminders
from ecomflow.engine.sla.sweeps import SweepBatch, escalate_overdue_tasks, flag_overdue_tasks, remind_due_tasks
from ecomflow.engine.tasks.step_tasks import expire_due_tasks

logger = logging.getLogger("ecomflow.sweeper")


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    expired: int
    timers_fired: int
    reminded: int
    reminded_due: int = 0
    overdue: int = 0
    escalated: int = 0
    forecasts_updated: int = 0
    web_sessions_ended: int = 0
    sign_in_failures_pruned: int = 0
    digest_messages: int = 0
    uploads_deleted: int = 0
    waves_closed: int = 0


def sweep_once(*, now: datetime | None = None, forecast: bool = True, uploads: bool = False) -> SweepResult:
    """Handle everything due by now, refresh the breach forecast, delete unused uploads. Tests pass a later now."""
    now = now or utcnow()
    with session_scope() as session:
        expired = len(expire_due_tasks(session, now=now))
    with session_scope() as session:
        fired = len(fire_due_timers(session, now=now))
    with session_scope() as session:
        reminded = len(send_daily_reminders(session, now=now))
    # Waves whose window passed close and start their fulfilment, a batch per transaction.
    waves_closed = _until_none_left(lambda session: close_due_waves(session, now=now))
    reminded_due = _in_batches(lambda session: remind_due_tasks(session, now=now))
    overdue = _in_batches(lambda session: flag_overdue_tasks(session, now=now))
    escalated = _in_batches(lambda session: escalate_overdue_tasks(session, now=now))
    digest_messages = queue_daily_digest_if_due(now=now)
    policy = session_policy()
    web_sessions_ended = _until_none_left(lambda session: end_timed_out_web_sessions(session, now=now, policy=policy))
    with session_scope() as session:
        pruned = prune_sign_in_failures(session, now=now, limits=sign_in_limits())
    forecasts_updated = 0
    if forecast:
        with session_scope() as session:
            forecasts_updated = refresh_forecasts(session, now=now)
    uploads_deleted = _delete_unused_uploads(now) if uploads else 0
    return SweepResult(
        expired=expired,
        timers_fired=fired,
        reminded=reminded,
        reminded_due=reminded_due,
        overdue=overdue,
        escalated=escalated,
        forecasts_updated=forecasts_updated,
        web_sessions_ended=web_sessions_ended,
        sign_in_failures_pruned=pruned,
        digest_messages=digest_messages,
        uploads_deleted=uploads_deleted,
        waves_closed=waves_closed,
    )


def _delete_unused_uploads(now: datetime) -> int:
    """Delete uploads no completed task or start params used within the retention, and temp files of dead uploads."""
    retention = timedelta(hours=get_settings().upload_retention_hours)
    store = get_store()
    remove_stale_spool_files(store, older_than_seconds=retention.total_seconds())
    return delete_unused_uploads(store=store, now=now, retention=retention)


def _in_batches(sweep: Callable[[Session], SweepBatch]) -> int:
    """Run a sweep one batch per transaction until nothing more is due; return how many tasks it changed."""
    changed = 0
    while True:
        with session_scope() as session:
            batch = sweep(session)
        changed += len(batch.changed)
        if not batch.more_may_be_due:
            return changed


def _until_none_left(sweep: Callable[[Session], int]) -> int:
    """Run a sweep one batch per transaction until a batch changes nothing; return how many it changed in all."""
    changed = 0
    while True:
        with session_scope() as session:
            batch = sweep(session)
        if not batch:
            return changed
        changed += batch


def run_sweeper(stop: threading.Event) -> None:
    """Sweep until stop is set; the forecast and the upload cleanup, which read many rows, at their own slower pace."""
    last_forecast = last_uploads = float("-inf")
    while not stop.is_set():
        try:
            forecast = time.monotonic() - last_forecast >= get_settings().forecast_refresh_seconds
            uploads = time.monotonic() - last_uploads >= get_settings().upload_sweep_seconds
            sweep_once(forecast=forecast, uploads=uploads)
            if forecast:
                last_forecast = time.monotonic()
            if uploads:
                last_uploads = time.monotonic()
        except Exception:
            logger.warning("sweeping failed; retrying", exc_info=True)
        stop.wait(get_settings().sweeper_poll_seconds)
