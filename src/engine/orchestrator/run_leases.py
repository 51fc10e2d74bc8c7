"""Leases on the flow runs a worker is executing, so a run left behind by a dead worker is found.

A worker leases a run when it takes it, renews its leases while alive, and drops a lease when
the run suspends or ends. A lease past its time means the worker died mid-run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import FlowRunLease
from ecomflow.engine.db.sessions import insert_unless_exists


def hold(session: Session, *, flow_run_id: str, worker_id: str, now: datetime, seconds: float) -> int:
    """Lease a run for this worker; return how many times it has been taken without finishing."""
    until = now + timedelta(seconds=seconds)
    if insert_unless_exists(
        session, FlowRunLease(flow_run_id=flow_run_id, worker_id=worker_id, leased_until=until, takes=1, taken_at=now)
    ):
        return 1
    session.execute(
        update(FlowRunLease)
        .where(FlowRunLease.flow_run_id == flow_run_id)
        .values(worker_id=worker_id, leased_until=until, takes=FlowRunLease.takes + 1, taken_at=now)
        .execution_options(synchronize_session=False)
    )
    return session.get(FlowRunLease, flow_run_id, populate_existing=True).takes


def renew(session: Session, *, worker_id: str, flow_run_ids: list[str], now: datetime, seconds: float) -> None:
    """Extend this worker's leases on the runs it is still executing."""
    if not flow_run_ids:
        return
    session.execute(
        update(FlowRunLease)
        .where(FlowRunLease.worker_id == worker_id, FlowRunLease.flow_run_id.in_(flow_run_ids))
        .values(leased_until=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )


def release(session: Session, *, flow_run_id: str, worker_id: str) -> None:
    """Drop the lease: the run reached a wait or an end."""
    session.execute(
        delete(FlowRunLease)
        .where(FlowRunLease.flow_run_id == flow_run_id, FlowRunLease.worker_id == worker_id)
        .execution_options(synchronize_session=False)
    )


def find(session: Session, flow_run_id: str) -> FlowRunLease | None:
    """Return the lease on a run, if any."""
    return session.scalar(select(FlowRunLease).where(FlowRunLease.flow_run_id == flow_run_id))


def take_over(
    session: Session, *, lease: FlowRunLease | None, flow_run_id: str, worker_id: str, now: datetime, seconds: float
) -> bool:
    """Claim the recovery of an abandoned run (compare-and-set); False if another worker got there first."""
    until = now + timedelta(seconds=seconds)
    if lease is None:
        return insert_unless_exists(
            session,
            FlowRunLease(flow_run_id=flow_run_id, worker_id=worker_id, leased_until=until, takes=0, taken_at=now),
        )
    moved = session.execute(
        update(FlowRunLease)
        .where(
            FlowRunLease.flow_run_id == flow_run_id,
            FlowRunLease.leased_until == lease.leased_until,
            FlowRunLease.worker_id == lease.worker_id,
        )
        .values(worker_id=worker_id, leased_until=until)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1
