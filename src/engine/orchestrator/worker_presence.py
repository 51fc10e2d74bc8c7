"""Which worker processes are alive: each renews its row while it runs and removes it when it stops.

A worker killed outright leaves its row, which stops counting once seen_until passes: the same
lifetime as its run leases (run_leases.py), after which its runs are recovered anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import WorkerPresence
from ecomflow.engine.db.sessions import insert_unless_exists


def announce(session: Session, *, worker_id: str, now: datetime, seconds: float) -> None:
    """Say this worker is alive for the next `seconds`."""
    until = now + timedelta(seconds=seconds)
    renewed = session.execute(
        update(WorkerPresence)
        .where(WorkerPresence.worker_id == worker_id)
        .values(seen_until=until)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount == 0:
        insert_unless_exists(session, WorkerPresence(worker_id=worker_id, seen_until=until))


def live_workers(session: Session, *, now: datetime) -> list[str]:
    """Return the ids of the workers alive now, in a fixed order every worker sees alike."""
    return list(
        session.scalars(
            select(WorkerPresence.worker_id).where(WorkerPresence.seen_until > now).order_by(WorkerPresence.worker_id)
        )
    )


def withdraw(session: Session, *, worker_id: str) -> None:
    """Remove this worker's row: it is stopping, and its share should pass to the others at once."""
    session.execute(
        delete(WorkerPresence).where(WorkerPresence.worker_id == worker_id).execution_options(synchronize_session=False)
    )
