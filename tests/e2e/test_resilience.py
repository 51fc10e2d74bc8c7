"""What survives: a Prefect outage during a completion, and replays of a run from the top."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage, Refund
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.ratings import report_rating
from tests.e2e.conftest import Stack, Staff, prefect_api, prefect_run_state, wait_until
from tests.factories import return_params

pytestmark = pytest.mark.e2e


def _count(model, *conditions) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*conditions))


def _attempts(task_id: str) -> int:
    """Return how many deliveries of the task's messages were tried."""
    with session_scope() as session:
        query = select(func.coalesce(func.sum(OutboxMessage.attempts), 0)).where(OutboxMessage.task_id == task_id)
        return session.scalar(query)


def _last_error(task_id: str) -> str | None:
    with session_scope() as session:
        return session.scalar(select(OutboxMessage.last_error).where(OutboxMessage.task_id == task_id))


def _prefect_state(flow_run_id: str) -> dict:
    return prefect_run_state(flow_run_id)


class TestPrefectOutage:
    def test_completion_made_while_prefect_is_down_is_delivered_when_it_is_back(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        started = cs.start_return(return_params(), business_key=f"RET-{uuid.uuid4().hex[:6]}")
        review = cs.wait_for_task(started["id"], "cs_review")
        cs.do(review["id"], {"decision": "approve"})
        parcel = cs.wait_for_task(started["id"], "await_parcel")

        stack.prefect.stop()
        try:
            done = cs.do(parcel["id"], {"return_tracking_no": "JD0001112223", "return_shipping_cost": 10})
            assert done["state"] == "completed"
            # The dispatcher tries against the dead server, fails, and keeps the message for later.
            wait_until(
                lambda: _attempts(parcel["id"]) >= 3, timeout=60, what="three failed deliveries of the completion"
            )
            undelivered = _count(
                OutboxMessage, OutboxMessage.task_id == parcel["id"], OutboxMessage.delivered_at.is_(None)
            )
            assert undelivered == 1
            assert _last_error(parcel["id"])
        finally:
            stack.prefect.start()
            stack.prefect.wait_healthy(timeout=180)

        inspect = warehouse.wait_for_task(started["id"], "inspect", timeout=120)
        warehouse.do(inspect["id"], {"condition": "ok", "restock": "yes"})
        finished = cs.wait_for_state(started["id"], "completed", timeout=90)
        assert finished["result"]["outcome"] == "refunded"
        assert (
            _count(OutboxMessage, OutboxMessage.task_id == parcel["id"], OutboxMessage.delivered_at.is_not(None)) == 1
        )


class TestImmediateDelivery:
    def test_the_api_hands_a_start_to_prefect_without_waiting_for_the_dispatcher(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs = team["cs"]
        stack.worker.stop()  # no dispatcher anywhere: only the API's own delivery can create the run
        try:
            started = cs.start_return(return_params(), business_key=f"RET-{uuid.uuid4().hex[:6]}")
            instance = wait_until(
                lambda: (detail := cs.instance(started["id"]))["flow_run_id"] and detail,
                timeout=30,
                what="the flow run to be created by the API",
            )
            assert _prefect_state(instance["flow_run_id"])["type"] == "SCHEDULED"
        finally:
            stack.worker.start()
        cs.wait_for_task(started["id"], "cs_review")


class TestReplay:
    def test_resume_from_outside_replays_without_second_task_or_refund(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        params = return_params(amount=88.0)
        started = cs.start_return(params, business_key=f"RET-{uuid.uuid4().hex[:6]}")
        # The marketplace reports a bad rating, so the case waits on a follow-up after the refund.
        with session_scope() as session:
            report_rating(session, order_id=params["order_id"], rating=1)
        cs.do(cs.wait_for_task(started["id"], "cs_review")["id"], {"decision": "approve"})
        cs.do(
            cs.wait_for_task(started["id"], "await_parcel")["id"],
            {"return_tracking_no": "ZT5556667778", "return_shipping_cost": 10},
        )
        warehouse.do(warehouse.wait_for_task(started["id"], "inspect")["id"], {"condition": "ok", "restock": "yes"})
        follow_up = cs.wait_for_task(started["id"], "follow_up")
        flow_run_id = cs.instance(started["id"])["flow_run_id"]
        wait_until(
            lambda: _prefect_state(flow_run_id)["type"] == "PAUSED", timeout=30, what="run suspended on follow_up"
        )
        tasks_before = _count(HumanTask, HumanTask.instance_id == started["id"])

        # Resume the run the way the Prefect UI's button does, with the task still open.
        # Prefect on SQLite answers 503 while its database is locked; a person would press the button again.
        assert prefect_api("POST", f"/flow_runs/{flow_run_id}/resume", json={}).status_code in (200, 201)
        wait_until(
            lambda: (
                _count(AuditEvent, AuditEvent.task_id == follow_up["id"], AuditEvent.type == "task.resumed_while_open")
                == 1
            ),
            timeout=60,
            what="the replay to reach the open follow-up",
        )
        wait_until(lambda: _prefect_state(flow_run_id)["type"] == "PAUSED", timeout=60, what="run suspended again")

        assert _count(HumanTask, HumanTask.instance_id == started["id"]) == tasks_before
        assert _count(Refund, Refund.instance_id == started["id"]) == 1
        assert cs.get(f"/tasks/{follow_up['id']}").json()["state"] == "open"

        cs.do(follow_up["id"], {"contact_result": "resolved", "notes": "已电话致歉并补发优惠券"})
        finished = cs.wait_for_state(started["id"], "completed")
        assert finished["result"]["outcome"] == "refunded"
        assert finished["result"]["follow_up"]["contact_result"] == "resolved"
        assert _count(Refund, Refund.instance_id == started["id"]) == 1
