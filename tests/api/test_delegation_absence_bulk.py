"""Delegation, reassignment, absence and bulk actions over real HTTP, with their audit events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, HumanTask
from ecomflow.engine.db.sessions import session_scope
from tests.api.conftest import Caller, assert_error, field_names
from tests.factories import make_instance, make_task

GOOD_INSPECTION = {"condition": "ok", "restock": "yes"}


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def _events(type: str, *, task_id: str | None = None) -> list[AuditEvent]:
    with session_scope() as session:
        query = select(AuditEvent).where(AuditEvent.type == type).order_by(AuditEvent.id)
        if task_id is not None:
            query = query.where(AuditEvent.task_id == task_id)
        return list(session.scalars(query))


def _event_count(task_id: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.task_id == task_id))


def _claimed_by(caller: Caller, *, step: str = "inspect", instance_id: str | None = None) -> str:
    task_id = make_task(step=step, instance_id=instance_id)
    assert caller.post(f"/tasks/{task_id}/claim").status_code == 200
    return task_id


def _fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["field"], f["rule"]) for f in body["fields"]]


class TestDelegate:
    def test_the_holder_hands_the_task_to_a_colleague(self, login: Callable[..., Caller]) -> None:
        wu, li = login("warehouse", name="wu"), login("warehouse", name="li")
        task_id = _claimed_by(wu)
        response = wu.post(f"/tasks/{task_id}/delegate", json={"user": "li", "reason": "我下午请假"})
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["assignee"], response.json()["version"]) == (
            "claimed",
            "li",
            3,
        )
        [event] = _events("task.delegated", task_id=task_id)
        assert event.actor == "wu"
        assert {k: event.data[k] for k in ("previous_assignee", "assignee", "reason")} == {
            "previous_assignee": "wu",
            "assignee": "li",
            "reason": "我下午请假",
        }
        assert li.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}).status_code == 200

    def test_a_manager_may_delegate_a_task_held_by_someone_else(self, login: Callable[..., Caller]) -> None:
        wu, ops = login("warehouse", name="wu"), login("operations", name="ops")
        login("warehouse", name="li")
        task_id = _claimed_by(wu)
        response = ops.post(f"/tasks/{task_id}/delegate", json={"user": "li", "reason": "wu is overloaded"})
        assert response.status_code == 200, response.text
        [event] = _events("task.delegated", task_id=task_id)
        assert (event.actor, event.data["previous_assignee"], event.data["assignee"]) == ("ops", "wu", "li")

    def test_a_colleague_who_does_not_hold_it_is_refused(self, login: Callable[..., Caller]) -> None:
        wu, li = login("warehouse", name="wu"), login("warehouse", name="li")
        clerk = login("customer_service", name="clerk")
        task_id = _claimed_by(wu)
        body = assert_error(
            li.post(f"/tasks/{task_id}/delegate", json={"user": "li", "reason": "mine now"}), 403, "Forbidden"
        )
        assert "wu" in body["detail"]
        assert_error(clerk.post(f"/tasks/{task_id}/delegate", json={"user": "li", "reason": "x"}), 404, "NotFound")
        assert _task(task_id).assignee == "wu" and _events("task.delegated") == []

    def test_bad_receivers_and_reasons_are_named(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse", name="wu")
        login("customer_service", name="clerk")
        task_id = _claimed_by(wu)
        cases = {
            "clerk": [("user", "role")],
            "nobody": [("user", "exists")],
            "wu": [("user", "other")],
        }
        for user, expected in cases.items():
            response = wu.post(f"/tasks/{task_id}/delegate", json={"user": user, "reason": "busy"})
            assert _fields(assert_error(response, 422, "ValidationFailed")) == expected, user
        blank = wu.post(f"/tasks/{task_id}/delegate", json={"user": "clerk", "reason": " "})
        assert _fields(assert_error(blank, 422, "ValidationFailed")) == [("reason", "required"), ("user", "role")]
        missing = wu.post(f"/tasks/{task_id}/delegate", json={"user": "clerk"})
        assert field_names(assert_error(missing, 422, "ValidationFailed")) == ["reason"]
        assert (_task(task_id).assignee, _task(task_id).version) == ("wu", 2)

    def test_an_open_task_cannot_be_delegated(self, login: Callable[..., Caller]) -> None:
        ops = login("operations", name="ops")
        login("warehouse", name="li")
        task_id = make_task(step="inspect")
        body = assert_error(
            ops.post(f"/tasks/{task_id}/delegate", json={"user": "li", "reason": "x"}), 409, "IllegalTransition"
        )
        assert "assign" in body["detail"]


class TestReassign:
    def test_taking_a_task_from_its_holder_needs_a_reason(self, login: Callable[..., Caller]) -> None:
        wu, ops = login("warehouse", name="wu"), login("operations", name="ops")
        login("warehouse", name="li")
        task_id = _claimed_by(wu)
        refused = ops.post(f"/tasks/{task_id}/assign", json={"user": "li"})
        body = assert_error(refused, 422, "ValidationFailed")
        assert _fields(body) == [("reason", "required")] and "wu" in body["detail"]
        assert _task(task_id).assignee == "wu"
        response = ops.post(f"/tasks/{task_id}/assign", json={"user": "li", "reason": "wu is sick"})
        assert response.status_code == 200 and response.json()["assignee"] == "li"
        [event] = _events("task.assigned", task_id=task_id)
        assert {k: event.data[k] for k in ("assignee", "previous_assignee", "reason")} == {
            "assignee": "li",
            "previous_assignee": "wu",
            "reason": "wu is sick",
        }

    def test_assigning_to_the_holder_again_changes_nothing(self, login: Callable[..., Caller]) -> None:
        wu, ops = login("warehouse", name="wu"), login("operations", name="ops")
        task_id = _claimed_by(wu)
        response = ops.post(f"/tasks/{task_id}/assign", json={"user": "wu"})
        assert (response.status_code, response.json()["version"]) == (200, 2)
        assert _events("task.assigned", task_id=task_id) == []


class TestAbsence:
    def test_marking_oneself_away_hands_tasks_to_the_substitute(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse", name="wu")
        li = login("warehouse", name="li")
        task_id = _claimed_by(wu)
        until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
        response = wu.http.put(
            "/users/wu/absence", json={"until": until.isoformat(), "substitute": "li", "reason": "年假"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"]["away"] is True and body["user"]["absence"]["substitute"] == "li"
        assert datetime.fromisoformat(body["user"]["absence"]["until"]) == until
        assert body["tasks"] == [
            {
                "task_id": task_id,
                "process": "returns_exchange",
                "step": "inspect",
                "outcome": "delegated",
                "to": "li",
                "reason": "absence: 年假",
            }
        ]
        assert [t["id"] for t in li.get("/tasks", params={"mine": "true"}).json()["items"]] == [task_id]
        [away] = _events("user.away")
        assert (away.actor, away.data["user"], away.data["substitute"]) == ("wu", "wu", "li")
        [delegated] = _events("task.delegated", task_id=task_id)
        assert (delegated.data["previous_assignee"], delegated.data["assignee"], delegated.data["reason"]) == (
            "wu",
            "li",
            "absence: 年假",
        )
        shown = wu.get("/users/wu").json()
        assert (shown["roles"], shown["away"], shown["absence"]["substitute"]) == (["warehouse"], True, "li")

    def test_a_substitute_without_the_role_leaves_the_task_in_the_queue(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse", name="wu")
        login("customer_service", name="clerk")
        ops = login("operations", name="ops")
        task_id = _claimed_by(wu)
        response = ops.http.put("/users/wu/absence", json={"substitute": "clerk", "reason": "病假"})
        assert response.status_code == 200, response.text
        [handover] = response.json()["tasks"]
        assert (handover["outcome"], handover["to"]) == ("released", None)
        assert "clerk lacks role warehouse" in handover["reason"]
        assert (_task(task_id).state, _task(task_id).assignee) == ("open", None)
        [released] = _events("task.released", task_id=task_id)
        assert (released.actor, released.data["previous_assignee"], released.data["reason"]) == (
            "ops",
            "wu",
            handover["reason"],
        )

    def test_without_a_substitute_tasks_go_back_to_the_queue(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse", name="wu")
        task_id = _claimed_by(wu)
        response = wu.http.put("/users/wu/absence", json={"reason": "出差"})
        assert response.status_code == 200, response.text
        assert [(t["task_id"], t["outcome"]) for t in response.json()["tasks"]] == [(task_id, "released")]
        assert response.json()["user"]["absence"]["until"] is None

    def test_nobody_may_give_work_to_someone_away(self, login: Callable[..., Caller]) -> None:
        wu, li, ops = login("warehouse", name="wu"), login("warehouse", name="li"), login("operations", name="ops")
        assert wu.http.put("/users/wu/absence", json={"reason": "年假"}).status_code == 200
        assigned = ops.post(f"/tasks/{make_task(step='inspect')}/assign", json={"user": "wu"})
        assert _fields(assert_error(assigned, 422, "ValidationFailed")) == [("user", "away")]
        delegated = li.post(f"/tasks/{_claimed_by(li)}/delegate", json={"user": "wu", "reason": "busy"})
        assert _fields(assert_error(delegated, 422, "ValidationFailed")) == [("user", "away")]
        back = wu.http.delete("/users/wu/absence")
        assert (back.status_code, back.json()["away"], back.json()["absence"]) == (200, False, None)
        assert [e.data for e in _events("user.back")] == [{"user": "wu"}]
        assert ops.post(f"/tasks/{make_task(step='inspect')}/assign", json={"user": "wu"}).status_code == 200

    def test_only_the_user_or_a_manager_may_see_or_change_an_absence(self, login: Callable[..., Caller]) -> None:
        login("warehouse", name="wu")
        li, ops = login("warehouse", name="li"), login("owner", name="boss")
        assert_error(li.get("/users/wu"), 403, "Forbidden")
        assert_error(li.http.put("/users/wu/absence", json={"reason": "x"}), 403, "Forbidden")
        assert_error(li.http.delete("/users/wu/absence"), 403, "Forbidden")
        assert_error(ops.get("/users/nobody"), 404, "NotFound")
        assert_error(ops.http.put("/users/nobody/absence", json={"reason": "x"}), 404, "NotFound")
        assert ops.get("/users/wu").json()["away"] is False
        assert _events("user.away") == []

    def test_bad_absences_name_the_field(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse", name="wu")
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        cases = [
            ({"until": "2030-01-01T09:00:00", "reason": "x"}, [("until", "timezone_aware")]),
            ({"until": past, "reason": "x"}, [("until", "future")]),
            ({"substitute": "nobody", "reason": "x"}, [("substitute", "exists")]),
            ({"substitute": "wu", "reason": "x"}, [("substitute", "other")]),
            ({"reason": ""}, [("reason", "length")]),
            ({}, [("reason", "missing")]),
        ]
        for body, expected in cases:
            response = wu.http.put("/users/wu/absence", json=body)
            assert _fields(assert_error(response, 422, "ValidationFailed")) == expected, body
        assert wu.get("/users/wu").json()["away"] is False


class TestBulk:
    def test_mixed_results_each_reported_in_request_order(self, login: Callable[..., Caller]) -> None:
        ops = login("operations", "warehouse", name="ops")
        wu = login("warehouse", name="wu")
        instance_id = make_instance()
        inspection = _claimed_by(ops, instance_id=instance_id)
        assert (
            ops.post(f"/tasks/{inspection}/complete", json={"data": {**GOOD_INSPECTION, "deduction": 20}}).status_code
            == 200
        )
        approval = make_task(step="deduction_approval", instance_id=instance_id)
        free, theirs, mine, unknown = make_task(step="inspect"), _claimed_by(wu), _claimed_by(ops), str(uuid.uuid4())
        before = {task_id: _event_count(task_id) for task_id in (theirs, approval, mine)}

        response = ops.post(
            "/tasks/bulk", json={"action": "claim", "task_ids": [free, theirs, unknown, approval, mine]}
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [(r["task_id"], r["ok"], r["status"]) for r in results] == [
            (free, True, 200),
            (theirs, False, 409),
            (unknown, False, 404),
            (approval, False, 409),
            (mine, True, 200),
        ]
        ok, taken, missing, four_eyes, unchanged = results
        assert (ok["unchanged"], ok["task"]["assignee"], ok["task"]["state"]) == (False, "ops", "claimed")
        assert (taken["error"], "wu" in taken["detail"]) == ("AlreadyClaimed", True)
        assert missing["error"] == "NotFound" and "task" not in missing
        assert four_eyes["error"] == "FourEyesViolation" and four_eyes["detail"].startswith(
            "four-eyes rule: ops did inspect"
        )
        assert (unchanged["unchanged"], unchanged["task"]["version"]) == (True, 2)
        assert [e.actor for e in _events("task.claimed", task_id=free)] == ["ops"]
        assert {task_id: _event_count(task_id) for task_id in before} == before
        assert (_task(theirs).assignee, _task(approval).state) == ("wu", "open")

    def test_assign_reassigns_only_with_a_reason_and_reports_unchanged(self, login: Callable[..., Caller]) -> None:
        ops = login("owner", name="boss")
        wu, li = login("warehouse", name="wu"), login("warehouse", name="li")
        free, held_by_wu, held_by_li = make_task(step="inspect"), _claimed_by(wu), _claimed_by(li)
        task_ids = [free, held_by_wu, held_by_li]

        without = ops.post("/tasks/bulk", json={"action": "assign", "task_ids": task_ids, "user": "li"}).json()[
            "results"
        ]
        assert [(r["ok"], r["status"], r.get("unchanged")) for r in without] == [
            (True, 200, False),
            (False, 422, None),
            (True, 200, True),
        ]
        assert without[1]["fields"] == [
            {"field": "reason", "rule": "required", "message": without[1]["fields"][0]["message"]}
        ]
        assert _task(held_by_wu).assignee == "wu"

        again = ops.post(
            "/tasks/bulk", json={"action": "assign", "task_ids": task_ids, "user": "li", "reason": "wu 休假"}
        )
        assert [(r["ok"], r["unchanged"]) for r in again.json()["results"]] == [
            (True, True),
            (True, False),
            (True, True),
        ]
        [event] = _events("task.assigned", task_id=held_by_wu)
        assert (event.actor, event.data["previous_assignee"], event.data["reason"]) == ("boss", "wu", "wu 休假")
        assert len(_events("task.assigned", task_id=free)) == 1

    def test_release_of_an_open_task_is_unchanged(self, login: Callable[..., Caller]) -> None:
        ops = login("operations", name="ops")
        wu = login("warehouse", name="wu")
        held, free = _claimed_by(wu), make_task(step="inspect")
        response = ops.post("/tasks/bulk", json={"action": "release", "task_ids": [held, free], "reason": "shift over"})
        assert [(r["ok"], r["unchanged"], r["task"]["state"]) for r in response.json()["results"]] == [
            (True, False, "open"),
            (True, True, "open"),
        ]
        [released] = _events("task.released", task_id=held)
        assert (released.actor, released.data["previous_assignee"], released.data["reason"]) == (
            "ops",
            "wu",
            "shift over",
        )
        assert _events("task.released", task_id=free) == []

    def test_only_managers_may_act_in_bulk(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse", name="wu")
        task_id = make_task(step="inspect")
        assert_error(wu.post("/tasks/bulk", json={"action": "claim", "task_ids": [task_id]}), 403, "Forbidden")
        assert _task(task_id).state == "open"

    def test_bad_bodies_name_the_field(self, login: Callable[..., Caller]) -> None:
        ops = login("operations", name="ops")
        login("warehouse", name="wu")
        task_id = make_task(step="inspect")
        cases = [
            ({"action": "claim", "task_ids": [task_id, task_id]}, [("task_ids", "unique")]),
            ({"action": "claim", "task_ids": []}, [("task_ids", "length")]),
            ({"action": "claim", "task_ids": [str(uuid.uuid4()) for _ in range(201)]}, [("task_ids", "length")]),
            ({"action": "assign", "task_ids": [task_id]}, [("user", "required")]),
            ({"action": "assign", "task_ids": [task_id], "user": "nobody"}, [("user", "exists")]),
            ({"action": "claim", "task_ids": [task_id], "user": "wu"}, [("user", "forbidden")]),
            ({"action": "complete", "task_ids": [task_id]}, [("action", "enum")]),
            ({"action": "claim"}, [("task_ids", "missing")]),
        ]
        for body, expected in cases:
            response = ops.post("/tasks/bulk", json=body)
            assert _fields(assert_error(response, 422, "ValidationFailed")) == expected, body
        assert _task(task_id).state == "open"

    def test_the_idempotency_key_replays_the_first_answer(self, login: Callable[..., Caller]) -> None:
        ops = login("operations", name="ops")
        wu = login("warehouse", name="wu")
        free = make_task(step="inspect")
        key = {"Idempotency-Key": f"bulk-{uuid.uuid4()}"}
        first = ops.post("/tasks/bulk", json={"action": "claim", "task_ids": [free]}, headers=key)
        assert wu.post(f"/tasks/{free}/release").status_code == 403
        assert ops.post(f"/tasks/{free}/release").status_code == 200
        again = ops.post("/tasks/bulk", json={"action": "claim", "task_ids": [free]}, headers=key)
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json() and first.json()["results"][0]["unchanged"] is False
        assert len(_events("task.claimed", task_id=free)) == 1 and _task(free).state == "open"
        elsewhere = ops.post(f"/tasks/{free}/claim")
        assert elsewhere.status_code == 200
        reused = ops.post(f"/tasks/{free}/complete", json={"data": GOOD_INSPECTION}, headers=key)
        assert field_names(assert_error(reused, 422, "ValidationFailed")) == ["Idempotency-Key"]
