"""Deliver the outbox to Prefect, webhook receivers and channels: lease a message, send it outside any transaction.

Safe to run in several processes at once: a message is leased by compare-and-set, and every
delivery is idempotent on Prefect's side (idempotency key on start, pause-key check on resume);
webhook receivers de-duplicate by the delivery id, the same on every retry; a channel message is
marked delivered (with whatever it carried) once its vendor took it, and never sent again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum

from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import OutboxMessage, ProcessInstance
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.definitions.versions import spec_of_instance
from ecomflow.engine.events import outbox, webhooks
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.events.channel_delivery import deliver_channel_message
from ecomflow.engine.instances.lifecycle import (
    ACTIVE_INSTANCE_STATES,
    InstanceState,
    get_instance,
    record_flow_run,
    set_instance_state,
)
from ecomflow.engine.instances.waits import has_other_wait
from ecomflow.engine.orchestrator import run_leases, runs
from ecomflow.engine.people.principals import SYSTEM_ACTOR

logger = logging.getLogger("ecomflow.dispatcher")


class NotDeliverableYet(Exception):
    """The message cannot be delivered now; retry after a backoff."""


def _run_name(instance: ProcessInstance) -> str:
    return f"{instance.process_key}/{instance.business_key}"


def _deliver_start(message: OutboxMessage, *, now: datetime) -> None:
    with session_scope() as session:
        instance = get_instance(session, message.instance_id)
        if instance.state not in ACTIVE_INSTANCE_STATES or instance.flow_run_id:
            return
        spec = spec_of_instance(session, instance)
        process_key, run_name = instance.process_key, _run_name(instance)
    flow_run_id = runs.start_flow_run(
        process_key=process_key,
        instance_id=message.instance_id,
        run_name=run_name,
        tags=["ecomflow", process_key, *spec.roles],
    )
    with session_scope() as session:
        record_flow_run(session, instance_id=message.instance_id, flow_run_id=flow_run_id)
        record_event(
            session,
            type="instance.flow_run_created",
            actor=SYSTEM_ACTOR,
            instance_id=message.instance_id,
            data={"flow_run_id": flow_run_id},
        )
    _link_run_to_instance_page(flow_run_id, message.instance_id, run_name)


def _link_run_to_instance_page(flow_run_id: str, instance_id: str, run_name: str) -> None:
    """Give the run a link artifact to the instance page; a failure leaves the run without it, never unstarted."""
    try:
        runs.link_run_to_instance_page(flow_run_id=flow_run_id, instance_id=instance_id, title=run_name)
    except Exception:  # the link is a convenience: the run is started and recorded either way
        logger.warning("could not attach the instance-page link to flow run %s", flow_run_id, exc_info=True)


def _deliver_resume(message: OutboxMessage, *, now: datetime) -> None:
    with session_scope() as session:
        flow_run_id = get_instance(session, message.instance_id).flow_run_id
        sole_wait = not has_other_wait(session, instance_id=message.instance_id, task_id=message.task_id)
        lease = run_leases.find(session, flow_run_id) if flow_run_id else None
    if flow_run_id is None:
        raise NotDeliverableYet(f"instance {message.instance_id} has no flow run yet")
    if lease is not None and lease.leased_until > now:
        # Prefect would refuse it (the run is not suspended) and a read would follow: its worker delivers it as
        # the run suspends (deliver_resumes_that_waited), after dropping this lease.
        raise NotDeliverableYet(f"flow run {flow_run_id} is executing in worker {lease.worker_id}")
    prefix = message.payload["pause_key_prefix"]
    outcome = runs.resume_run(flow_run_id=flow_run_id, pause_key_prefix=prefix, sole_wait=sole_wait)
    if outcome is runs.ResumeOutcome.NOT_YET:
        raise NotDeliverableYet(f"flow run {flow_run_id} is not suspended on {prefix} yet")
    if outcome is runs.ResumeOutcome.RUN_ENDED:
        _fail_orphaned_instance(message.instance_id, flow_run_id)


def _fail_orphaned_instance(instance_id: str, flow_run_id: str) -> None:
    """An active instance whose run ended without it (its failure hook could not reach us) is failed, visibly."""
    with session_scope() as session:
        instance = get_instance(session, instance_id)
        if instance.state in ACTIVE_INSTANCE_STATES:
            set_instance_state(
                session,
                instance=instance,
                state=InstanceState.FAILED,
                error=f"flow run {flow_run_id} ended while the instance was still active",
            )


def _deliver_cancel(message: OutboxMessage, *, now: datetime) -> None:
    with session_scope() as session:
        flow_run_id = get_instance(session, message.instance_id).flow_run_id
    if flow_run_id is not None:
        runs.cancel_flow_run(flow_run_id)


def _deliver_webhook(message: OutboxMessage, *, now: datetime) -> None:
    # A receiver checks the signature's timestamp against its clock: it is the real time, never a test's `now`.
    webhooks.deliver_webhook(message)


# Each deliverer gets the dispatcher's `now`, which rate windows and leases are counted in.
DELIVERERS: dict[str, Callable[..., None]] = {
    outbox.START_RUN: _deliver_start,
    outbox.RESUME_RUN: _deliver_resume,
    outbox.CANCEL_RUN: _deliver_cancel,
    outbox.WEBHOOK: _deliver_webhook,
    outbox.CHANNEL: deliver_channel_message,
}
MAX_BACKOFF_BY_KIND: dict[str, timedelta] = {outbox.WEBHOOK: webhooks.MAX_BACKOFF, outbox.CHANNEL: webhooks.MAX_BACKOFF}


class Delivery(Enum):
    """What one attempt at a message came to."""

    DELIVERED = "delivered"
    NOT_YET = "not_yet"  # the receiver is not ready for it (a run not suspended yet), or it waits its time
    HELD = "held"  # another deliverer holds it, or it is delivered already
    FAILED = "failed"  # the receiver failed or could not be reached


def deliver_one(message_id: int, *, now: datetime | None = None) -> bool:
    """Try to deliver one message; return True if it is now delivered. Tests pass `now` to move time."""
    return attempt_delivery(message_id, now=now) is Delivery.DELIVERED


def attempt_delivery(message_id: int, *, now: datetime | None = None) -> Delivery:
    """Try to deliver one message; return what came of it."""
    clock = utcnow if now is None else (lambda: now)
    with session_scope() as session:
        message = outbox.lease(session, message_id=message_id, now=clock(), seconds=get_settings().outbox_lease_seconds)
        if message is None:
            return Delivery.HELD
        session.expunge(message)
    try:
        DELIVERERS[message.kind](message, now=clock())
    except outbox.Deferred as waiting:
        logger.debug("outbox message %s (%s) waits until %s: %s", message.id, message.kind, waiting.until, waiting)
        with session_scope() as session:
            outbox.mark_deferred(session, message_id=message.id, until=waiting.until)
        return Delivery.NOT_YET
    except outbox.Undeliverable as exc:
        logger.error("outbox message %s (%s) abandoned: %s", message.id, message.kind, exc)
        with session_scope() as session:
            outbox.mark_failed(session, message_id=message.id, now=clock(), error=str(exc))
        return Delivery.FAILED
    except Exception as exc:
        refused = isinstance(exc, NotDeliverableYet)
        level = logging.DEBUG if refused else logging.WARNING
        logger.log(level, "outbox message %s (%s) not delivered: %s", message.id, message.kind, exc)
        with session_scope() as session:
            outbox.mark_retry(
                session,
                message_id=message.id,
                attempts=message.attempts,
                now=clock(),
                error=repr(exc),
                max_backoff=MAX_BACKOFF_BY_KIND.get(message.kind, outbox.MAX_BACKOFF),
            )
        return Delivery.NOT_YET if refused else Delivery.FAILED
    with session_scope() as session:
        outbox.mark_delivered(session, message_id=message.id, now=clock())
    return Delivery.DELIVERED


# How long a run's suspension waits for a resume another deliverer holds (the API's own attempt lasts ~0.1 s).
HELD_RESUME_WAIT_SECONDS = 0.5
_HELD_RESUME_POLL_SECONDS = 0.05


def deliver_resumes_that_waited(instance_id: str) -> int:
    """Deliver the instance's resumes refused because its run had not suspended yet: it just has.

    A person can complete a task between the flow opening it and the run suspending; the resume is then
    refused (NOT_YET, or without asking Prefect while the run's worker holds its lease) and waits out a
    backoff of 0.5 s or more. Called by the worker as a run suspends, after it dropped the run's lease. A
    resume the API is still trying is waited for briefly: refused, it is taken here at once.
    """
    delivered, tried = 0, set()
    deadline = time.monotonic() + HELD_RESUME_WAIT_SECONDS
    while True:
        with read_scope() as session:
            waiting = outbox.undelivered_resumes(session, instance_id=instance_id, now=utcnow())
        # Each free one once: refused now, it is a resume for another wait, not for this suspension.
        for message_id in [m for m, held in waiting.items() if not held and m not in tried]:
            tried.add(message_id)
            delivered += deliver_one(message_id)
        if not any(held for held in waiting.values()) or time.monotonic() >= deadline:
            return delivered
        time.sleep(_HELD_RESUME_POLL_SECONDS)


def dispatch_pending(*, limit: int = 100, now: datetime | None = None) -> int:
    """Deliver every message that is due now (or at `now`); return how many were delivered."""
    with session_scope() as session:
        ids = outbox.pending_ids(session, now=now or utcnow(), limit=limit)
    return sum(deliver_one(message_id, now=now) for message_id in ids)


def run_dispatcher(stop: threading.Event, *, on_delivered: Callable[[], None] = lambda: None) -> None:
    """Deliver the outbox until stop is set."""
    while not stop.is_set():
        try:
            if dispatch_pending():
                on_delivered()
        except Exception:
            logger.warning("dispatching the outbox failed; retrying", exc_info=True)
        stop.wait(get_settings().dispatcher_poll_seconds)
