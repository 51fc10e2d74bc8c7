"""Find flow runs a dead worker left Running or Pending, and hand them back to the queue.

A run whose lease expired (or that never got one) is rescheduled: flows replay from the top
and every step is idempotent, so another worker simply carries on. A run that was taken
`max_takes` times without ever reaching a wait or an end is a crash loop: it is marked
Crashed in Prefect and its instance failed, for a person to look at.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import Crashed, Scheduled

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.lifecycle import InstanceState, find_instance_of_run, get_instance, set_instance_state
from ecomflow.engine.orchestrator import run_leases
from ecomflow.engine.people.principals import SYSTEM_ACTOR

logger = logging.getLogger("ecomflow.recovery")

# Prefect refuses larger pages; the next scan takes the rest.
_PAGE = 200


@dataclass(frozen=True)
class Recovered:
    """What one scan did."""

    rescheduled: list[str]
    crashed: list[str]


def recover_abandoned_runs(
    *,
    deployment_ids: Iterable[UUID],
    executing: set[str],
    worker_id: str,
    now: datetime,
    lease_seconds: float,
    max_takes: int,
) -> Recovered:
    """Reschedule (or, in a crash loop, mark Crashed) every run of ours that no live worker holds."""
    rescheduled, crashed = [], []
    for run in _running_or_pending(list(deployment_ids)):
        run_id = str(run.id)
        if run_id in executing or not _abandoned(run, now=now, lease_seconds=lease_seconds, worker_id=worker_id):
            continue
        with session_scope() as session:
            takes = lease.takes if (lease := run_leases.find(session, run_id)) else 0
        if takes >= max_takes:
            _mark_crashed(run, takes=takes, worker_id=worker_id)
            crashed.append(run_id)
        else:
            _reschedule(run, now=now)
            rescheduled.append(run_id)
    return Recovered(rescheduled=rescheduled, crashed=crashed)


def _running_or_pending(deployment_ids: list[UUID]) -> list[FlowRun]:
    if not deployment_ids:
        return []
    states = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids), state=states),
            limit=_PAGE,
        )


def _abandoned(run: FlowRun, *, now: datetime, lease_seconds: float, worker_id: str) -> bool:
    """Return whether no live worker holds the run, taking over its recovery if so (one scanner wins)."""
    run_id = str(run.id)
    with session_scope() as session:
        lease = run_leases.find(session, run_id)
        if lease is not None and lease.leased_until > now:
            return False
        # No lease yet: the taker may be writing it right now; give it a lease period.
        changed_at = run.state.timestamp if run.state else None
        if lease is None and changed_at is not None and changed_at > now - timedelta(seconds=lease_seconds):
            return False
        return run_leases.take_over(
            session, lease=lease, flow_run_id=run_id, worker_id=worker_id, now=now, seconds=lease_seconds
        )


def _reschedule(run: FlowRun, *, now: datetime) -> None:
    message = "rescheduled by ecomflow: the worker executing it stopped renewing its lease"
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Scheduled(scheduled_time=now, message=message), force=True)
    _audit(run, type="instance.run_rescheduled", data={"flow_run_id": str(run.id), "from": run.state_type.value})
    logger.warning("flow run %s was abandoned by its worker; rescheduled", run.id)


def _mark_crashed(run: FlowRun, *, takes: int, worker_id: str) -> None:
    message = f"crashed: taken {takes} times without reaching a wait or an end (see the worker logs)"
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    with session_scope() as session:
        instance = _instance_of(session, run)
        if instance is not None:
            set_instance_state(session, instance=instance, state=InstanceState.FAILED, error=message)
        run_leases.release(session, flow_run_id=str(run.id), worker_id=worker_id)
    logger.error("flow run %s: %s", run.id, message)


def _audit(run: FlowRun, *, type: str, data: dict) -> None:
    with session_scope() as session:
        instance = _instance_of(session, run)
        if instance is not None:
            record_event(session, type=type, actor=SYSTEM_ACTOR, instance_id=instance.id, data=data)


def _instance_of(session, run: FlowRun):
    instance_id = (run.parameters or {}).get("instance_id")
    if instance_id:
        return get_instance(session, instance_id)
    return find_instance_of_run(session, flow_run_id=str(run.id))
