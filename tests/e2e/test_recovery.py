"""Runs a dead worker left Running are handed back: rescheduled and carried on, or, in a crash loop, marked."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, FlowRunLease, HumanTask
from ecomflow.engine.db.sessions import session_scope
from tests.e2e.conftest import Stack, Staff, prefect_api, prefect_run_state, wait_until
from tests.factories import return_params

pytestmark = pytest.mark.e2e


def _abandon(flow_run_id: str, *, takes: int) -> None:
    """Leave the run as a worker killed mid-execution does: Running, with a lease nobody renews."""
    wait_until(lambda: prefect_run_state(flow_run_id)["type"] == "PAUSED", timeout=30, what="the run to suspend")
    # The worker drops its lease just after the run suspends.
    wait_until(lambda: _lease_of(flow_run_id) is None, timeout=30, what="the worker to drop its lease")
    forced = prefect_api(
        "POST",
        f"/flow_runs/{flow_run_id}/set_state",
        json={"state": {"type": "RUNNING", "name": "Running"}, "force": True},
    )
    assert forced.status_code in (200, 201), forced.text
    with session_scope() as session:
        session.add(
            FlowRunLease(
                flow_run_id=flow_run_id,
                worker_id="dead-host:4242:deadbeef",
                leased_until=utcnow() - timedelta(seconds=60),
                takes=takes,
            )
        )


def _lease_of(flow_run_id: str) -> FlowRunLease | None:
    with session_scope() as session:
        return session.get(FlowRunLease, flow_run_id)


def _events(instance_id: str, type: str) -> int:
    with session_scope() as session:
        query = (
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.instance_id == instance_id, AuditEvent.type == type)
        )
        return session.scalar(query)


class TestAbandonedRuns:
    def test_a_run_left_running_is_rescheduled_and_carries_on(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        started = cs.start_return(return_params(), business_key=f"RET-{uuid.uuid4().hex[:6]}")
        review = cs.wait_for_task(started["id"], "cs_review")
        flow_run_id = cs.instance(started["id"])["flow_run_id"]
        _abandon(flow_run_id, takes=1)

        wait_until(lambda: _events(started["id"], "instance.run_rescheduled") == 1, timeout=30, what="the rescue")
        wait_until(
            lambda: prefect_run_state(flow_run_id)["type"] == "PAUSED", timeout=60, what="the replay to wait again"
        )
        cs.do(review["id"], {"decision": "approve"})
        cs.wait_for_task(started["id"], "await_parcel")
        with session_scope() as session:
            reviews = session.scalar(
                select(func.count())
                .select_from(HumanTask)
                .where(HumanTask.instance_id == started["id"], HumanTask.step_key == "cs_review")
            )
            assert reviews == 1
        wait_until(
            lambda: _lease_of(flow_run_id) is None, timeout=30, what="the lease to be dropped once the run waits again"
        )

    def test_a_run_in_a_crash_loop_is_marked_crashed_and_its_instance_failed(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs = team["cs"]
        started = cs.start_return(return_params(), business_key=f"RET-{uuid.uuid4().hex[:6]}")
        cs.wait_for_task(started["id"], "cs_review")
        flow_run_id = cs.instance(started["id"])["flow_run_id"]
        _abandon(flow_run_id, takes=3)

        failed = cs.wait_for_state(started["id"], "failed", timeout=30)
        assert failed["state"] == "failed"
        state = prefect_run_state(flow_run_id)
        assert state["type"] == "CRASHED" and "taken 3 times" in state["message"]
        assert _events(started["id"], "instance.run_rescheduled") == 0
