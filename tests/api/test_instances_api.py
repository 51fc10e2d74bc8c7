"""Processes and instances over HTTP: the catalogue, starting, reading and cancelling."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import select

from ecomflow.engine.db.models import HumanTask, OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.events.outbox import CANCEL_RUN, START_RUN
from tests.api.conftest import Caller, assert_error, field_names
from tests.factories import make_task, return_params

START = "/processes/returns_exchange/instances"


def _business_key() -> str:
    return f"RET-{uuid.uuid4().hex[:8]}"


def _outbox_kinds(instance_id: str) -> list[str]:
    with session_scope() as session:
        query = select(OutboxMessage.kind).where(OutboxMessage.instance_id == instance_id).order_by(OutboxMessage.id)
        return list(session.scalars(query))


def _task_states(instance_id: str) -> dict[str, str]:
    with session_scope() as session:
        return {
            t.step_key: t.state for t in session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))
        }


def _start(caller: Caller, **param_overrides: object) -> dict[str, object]:
    response = caller.post(START, json={"business_key": _business_key(), "params": return_params(**param_overrides)})
    assert response.status_code == 201, response.text
    return response.json()


class TestProcesses:
    def test_catalogue_lists_every_process_with_its_forms(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        response = clerk.get("/processes")
        assert response.status_code == 200
        processes = {p["key"]: p for p in response.json()}
        assert set(processes) == set(get_definitions().processes)
        returns = processes["returns_exchange"]
        assert returns["title"] == {"zh": "售后退换货流程", "en": "Returns and exchanges"}
        start_form = returns["start_form"]
        assert start_form["type"] == "object"
        assert {"order_id", "kind", "cause", "category", "amount"} <= set(start_form["required"])
        assert start_form["properties"]["kind"]["enum"] == ["refund_only", "return_refund", "exchange"]
        steps = {s["key"]: s for s in returns["steps"]}
        assert (steps["inspect"]["kind"], steps["inspect"]["role"]) == ("human", "warehouse")
        assert set(steps["inspect"]["form"]["required"]) == {"condition", "restock"}
        assert steps["cs_review"]["form"]["properties"]["decision"]["enum"] == ["approve", "reject"]
        assert steps["policy_check"]["form"] is None

    def test_one_process_by_key(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        body = clerk.get("/processes/returns_exchange").json()
        assert (
            body["key"] == "returns_exchange"
            and body["version"] == get_definitions().process("returns_exchange").version
        )

    def test_unknown_process_is_not_found(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        body = assert_error(clerk.get("/processes/nope"), 404, "UnknownProcess")
        assert body["detail"].startswith("unknown process 'nope' (defined: ") and "returns_exchange" in body["detail"]


class TestStartInstance:
    def test_start_creates_a_running_instance_and_queues_its_run(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        business_key = _business_key()
        response = clerk.post(START, json={"business_key": business_key, "params": return_params()})
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["process"], body["business_key"], body["state"]) == ("returns_exchange", business_key, "running")
        assert body["flow_run_id"] is None
        assert _outbox_kinds(body["id"]) == [START_RUN]

    def test_bad_params_name_each_field(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        params = return_params(kind="refund", amount=0, delivered_on="yesterday")
        del params["order_id"]
        response = clerk.post(START, json={"business_key": _business_key(), "params": params})
        body = assert_error(response, 422, "ValidationFailed")
        assert sorted((f["field"], f["rule"]) for f in body["fields"]) == [
            ("amount", "min"),
            ("delivered_on", "format"),
            ("kind", "enum"),
            ("order_id", "required"),
        ]

    def test_bad_business_key_is_named(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        response = clerk.post(START, json={"business_key": "has spaces", "params": return_params()})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["business_key"]

    def test_same_business_key_while_active_is_a_conflict(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        business_key = _business_key()
        first = clerk.post(START, json={"business_key": business_key, "params": return_params()})
        assert first.status_code == 201
        again = clerk.post(START, json={"business_key": business_key, "params": return_params()})
        body = assert_error(again, 409, "Conflict")
        assert business_key in body["detail"]
        assert len(clerk.get("/instances").json()["items"]) == 1

    def test_concurrent_starts_with_one_business_key_make_one_instance(self, login: Callable[..., Caller]) -> None:
        clerks = [login("customer_service") for _ in range(8)]
        business_key = _business_key()
        start = threading.Barrier(len(clerks))

        def attempt(clerk: Caller) -> httpx.Response:
            start.wait()
            return clerk.post(START, json={"business_key": business_key, "params": return_params()})

        with ThreadPoolExecutor(len(clerks)) as pool:
            responses = list(pool.map(attempt, clerks))
        assert sorted(r.status_code for r in responses) == [201] + [409] * 7, [r.text for r in responses]
        for response in responses:
            if response.status_code == 409:
                assert_error(response, 409, "Conflict")
        assert len(login("owner").get("/instances").json()["items"]) == 1

    def test_business_key_is_free_again_after_cancel(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        ops = login("operations")
        business_key = _business_key()
        first = clerk.post(START, json={"business_key": business_key, "params": return_params()}).json()
        assert ops.post(f"/instances/{first['id']}/cancel").status_code == 200
        again = clerk.post(START, json={"business_key": business_key, "params": return_params()})
        assert again.status_code == 201, again.text

    def test_unknown_process_is_not_found(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        response = clerk.post("/processes/nope/instances", json={"business_key": _business_key(), "params": {}})
        assert assert_error(response, 404, "UnknownProcess")["detail"].startswith("unknown process 'nope'")


class TestCancelInstance:
    def test_non_manager_may_not_cancel(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        started = _start(clerk)
        make_task(step="cs_review", instance_id=started["id"])
        assert_error(clerk.post(f"/instances/{started['id']}/cancel"), 403, "Forbidden")
        assert clerk.get(f"/instances/{started['id']}").json()["state"] == "waiting"
        assert CANCEL_RUN not in _outbox_kinds(started["id"])

    def test_manager_cancels_instance_tasks_and_run(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        ops = login("operations")
        started = _start(clerk)
        review = make_task(step="cs_review", instance_id=started["id"])
        assert clerk.post(f"/tasks/{review}/claim").status_code == 200
        make_task(step="await_parcel", instance_id=started["id"])
        response = ops.post(f"/instances/{started['id']}/cancel", json={"reason": "customer withdrew"})
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "cancelled" and response.json()["ended_at"] is not None
        assert _task_states(started["id"]) == {"cs_review": "cancelled", "await_parcel": "cancelled"}
        assert _outbox_kinds(started["id"]) == [START_RUN, CANCEL_RUN]
        detail = ops.get(f"/instances/{started['id']}").json()
        assert detail["state"] == "cancelled"
        events = [(e["type"], e["actor"]) for e in detail["history"]]
        assert events.count(("task.cancelled", ops.name)) == 2
        assert ("instance.cancelled", ops.name) in events

    def test_cancelling_twice_is_a_conflict(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        owner = login("owner")
        started = _start(clerk)
        assert owner.post(f"/instances/{started['id']}/cancel").status_code == 200
        assert_error(owner.post(f"/instances/{started['id']}/cancel"), 409, "Conflict")
        assert _outbox_kinds(started["id"]).count(CANCEL_RUN) == 1


class TestReadInstances:
    def test_detail_shows_tasks_history_and_links(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        started = _start(clerk)
        review = make_task(step="cs_review", instance_id=started["id"])
        detail = clerk.get(f"/instances/{started['id']}").json()
        assert (detail["state"], detail["params"]["sku"]) == ("waiting", "SKU-TEE-001")
        assert [(t["id"], t["step"], t["role"], t["state"]) for t in detail["tasks"]] == [
            (review, "cs_review", "customer_service", "open"),
        ]
        assert [e["type"] for e in detail["history"]][:2] == ["instance.started", "task.created"]
        assert (detail["parent"], detail["children"], detail["flow_run_url"]) == (None, [], None)

    def test_instance_is_not_found_for_an_unrelated_role(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        visual = login("visual")
        started = _start(clerk)
        make_task(step="cs_review", instance_id=started["id"])
        assert_error(visual.get(f"/instances/{started['id']}"), 404, "NotFound")
        assert visual.get("/instances").json()["items"] == []
        assert_error(visual.get(f"/instances/{uuid.uuid4()}"), 404, "NotFound")

    def test_task_role_sees_the_instance_but_only_its_tasks(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        worker = login("warehouse")
        started = _start(clerk)
        make_task(step="cs_review", instance_id=started["id"])
        inspect = make_task(step="inspect", instance_id=started["id"])
        detail = worker.get(f"/instances/{started['id']}").json()
        assert [t["id"] for t in detail["tasks"]] == [inspect]
        assert [i["id"] for i in worker.get("/instances").json()["items"]] == [started["id"]]
