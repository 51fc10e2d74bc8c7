"""A run in the share of a worker that is gone is still taken: by the live worker, once past the grace.

The stack has one worker. A ghost worker's presence is written as if it were alive (a worker killed
just now looks so until its presence expires), so about half the runs are in the ghost's share:
the real worker must take those over, and log that it did, rather than leave them waiting forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import WorkerPresence
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.orchestrator import worker_presence
from ecomflow.engine.orchestrator.run_shares import preferred_worker
from ecomflow.engine.orchestrator.worker import TAKE_OVER, TAKE_REFUSED
from tests.e2e.conftest import Stack, Staff, wait_until
from tests.factories import return_params

pytestmark = pytest.mark.e2e

GHOST = "ghost-host:4242:0badf00d"


@pytest.fixture
def ghost(stack: Stack) -> Iterator[str]:
    """A worker that is listed as live for the whole test but takes nothing; the real worker has seen it."""
    with session_scope() as session:
        session.add(WorkerPresence(worker_id=GHOST, seen_until=utcnow() + timedelta(hours=1)))
    try:
        wait_until(lambda: GHOST in _worker_log(stack), timeout=30, what="the worker to see the ghost as live")
        yield GHOST
    finally:
        with session_scope() as session:
            worker_presence.withdraw(session, worker_id=GHOST)


def _worker_log(stack: Stack) -> str:
    return stack.worker.log_path.read_text(errors="replace")


def _live() -> list[str]:
    with session_scope() as session:
        return worker_presence.live_workers(session, now=utcnow())


def test_runs_in_a_gone_worker_s_share_are_taken_over(stack: Stack, team: dict[str, Staff], ghost: str) -> None:
    cs, warehouse = team["cs"], team["warehouse"]
    live = _live()
    assert ghost in live and len(live) == 2, live
    # Start returns until one's run is in the ghost's share (each is, by its random id, one time in two).
    for _ in range(20):
        started = cs.start_return(return_params(), business_key=f"GHOST-{uuid.uuid4().hex[:6]}")
        flow_run_id = wait_until(
            lambda started=started: cs.instance(started["id"])["flow_run_id"], timeout=30, what="the flow run"
        )
        if preferred_worker(UUID(flow_run_id), live) == ghost:
            break
    else:
        pytest.fail("no run of 20 in the ghost's share")

    # Its start and its three resumes: each is in the ghost's share, and each is taken all the same.
    cs.do(cs.wait_for_task(started["id"], "cs_review")["id"], {"decision": "approve"})
    cs.do(
        cs.wait_for_task(started["id"], "await_parcel")["id"],
        {"return_tracking_no": "SF0000333444", "return_shipping_cost": 10},
    )
    warehouse.do(warehouse.wait_for_task(started["id"], "inspect")["id"], {"condition": "ok", "restock": "yes"})
    finished = cs.wait_for_state(started["id"], "completed", timeout=120)
    assert finished["result"]["outcome"] == "refunded"

    log = _worker_log(stack)
    taken_over = [line for line in log.splitlines() if TAKE_OVER in line and flow_run_id in line]
    assert len(taken_over) >= 4, taken_over
    assert not [line for line in log.splitlines() if TAKE_REFUSED in line and flow_run_id in line]
