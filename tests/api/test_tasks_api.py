"""The task inbox over HTTP: claim races, completion rules, visibility, assignment and paging."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events.outbox import RESUME_RUN
from tests.api.conftest import Caller, assert_error, field_names
from tests.factories import make_task, uncommitted_change_to

GOOD_INSPECTION = {"condition": "ok", "restock": "yes", "deduction": 0, "notes": "完好"}


def _count_events(task_id: str, type: str) -> int:
    with session_scope() as session:
        query = (
            select(func.count()).select_from(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.type == type)
        )
        return session.scalar(query)


def _resume_messages(task_id: str) -> int:
    with session_scope() as session:
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.task_id == task_id, OutboxMessage.kind == RESUME_RUN)
        )
        return session.scalar(query)


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def _claimed_inspection(login: Callable[..., Caller]) -> tuple[Caller, str]:
    worker = login("warehouse")
    task_id = make_task(step="inspect")
    assert worker.post(f"/tasks/{task_id}/claim").status_code == 200
    return worker, task_id


class TestClaim:
    def test_sixteen_concurrent_claims_have_one_winner(self, login: Callable[..., Caller]) -> None:
        workers = [login("warehouse") for _ in range(16)]
        task_id = make_task(step="inspect")
        start = threading.Barrier(len(workers))

        def attempt(worker: Caller) -> httpx.Response:
            start.wait()
            return worker.post(f"/tasks/{task_id}/claim")

        with ThreadPoolExecutor(len(workers)) as pool:
            responses = list(pool.map(attempt, workers))

        won = [r for r in responses if r.status_code == 200]
        assert len(won) == 1, [r.text for r in responses]
        winner = won[0].json()["assignee"]
        assert winner in {w.name for w in workers}
        lost = [r for r in responses if r.status_code != 200]
        assert len(lost) == 15
        for response in lost:
            body = assert_error(response, 409, "AlreadyClaimed")
            assert winner in body["detail"]
        assert _count_events(task_id, "task.claimed") == 1
        assert (_task(task_id).assignee, _task(task_id).version) == (winner, 2)

    def test_claim_returns_the_claimed_task(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        response = worker.post(f"/tasks/{task_id}/claim")
        assert response.status_code == 200
        body = response.json()
        assert (body["id"], body["state"], body["assignee"], body["version"]) == (task_id, "claimed", worker.name, 2)


class TestComplete:
    def test_completion_by_the_assignee(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        response = worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION})
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["version"]) == ("completed", 3)
        detail = worker.get(f"/tasks/{task_id}").json()
        assert (detail["output"], detail["completed_by"]) == (GOOD_INSPECTION, worker.name)
        assert _resume_messages(task_id) == 1

    def test_bad_data_names_each_field(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        response = worker.post(f"/tasks/{task_id}/complete", json={"data": {"restock": "maybe", "notes": "x"}})
        body = assert_error(response, 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("condition", "required"), ("restock", "enum")]
        assert all(f["message"].startswith(f["field"]) for f in body["fields"])
        assert _task(task_id).state == "claimed"

    def test_unknown_field_is_named(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        response = worker.post(f"/tasks/{task_id}/complete", json={"data": {**GOOD_INSPECTION, "colour": "red"}})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["colour"]

    def test_body_without_data_is_refused(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        response = worker.post(f"/tasks/{task_id}/complete", json={"condition": "ok"})
        assert set(field_names(assert_error(response, 422, "ValidationFailed"))) == {"data", "condition"}

    def test_non_assignee_is_forbidden(self, login: Callable[..., Caller]) -> None:
        _, task_id = _claimed_inspection(login)
        colleague = login("warehouse")
        response = colleague.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION})
        assert_error(response, 403, "Forbidden")
        assert _task(task_id).state == "claimed"

    def test_open_task_is_a_conflict(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        response = worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION})
        body = assert_error(response, 409, "IllegalTransition")
        assert task_id in body["detail"] and "open" in body["detail"]

    def test_replay_with_the_same_idempotency_key_gives_the_first_answer(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        key = {"Idempotency-Key": f"complete-{uuid.uuid4()}"}
        first = worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}, headers=key)
        again = worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}, headers=key)
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert _count_events(task_id, "task.completed") == 1
        assert _resume_messages(task_id) == 1

    def test_a_key_used_for_another_task_is_refused(self, login: Callable[..., Caller]) -> None:
        worker, first_task = _claimed_inspection(login)
        second_task = make_task(step="inspect")
        assert worker.post(f"/tasks/{second_task}/claim").status_code == 200
        key = {"Idempotency-Key": f"complete-{uuid.uuid4()}"}
        assert (
            worker.post(f"/tasks/{first_task}/complete", json={"data": GOOD_INSPECTION}, headers=key).status_code == 200
        )
        reused = worker.post(f"/tasks/{second_task}/complete", json={"data": GOOD_INSPECTION}, headers=key)
        assert field_names(assert_error(reused, 422, "ValidationFailed")) == ["Idempotency-Key"]
        assert _task(second_task).state == "claimed"

    def test_repeat_without_a_key_is_a_conflict(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        assert worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}).status_code == 200
        again = worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION})
        assert_error(again, 409, "IllegalTransition")
        assert _count_events(task_id, "task.completed") == 1

    def test_concurrent_replays_complete_once(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        key = {"Idempotency-Key": f"complete-{uuid.uuid4()}"}
        start = threading.Barrier(8)

        def attempt(_: int) -> httpx.Response:
            start.wait()
            return worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}, headers=key)

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(attempt, range(8)))
        assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
        assert len({r.text for r in responses}) == 1
        assert _count_events(task_id, "task.completed") == 1
        assert _resume_messages(task_id) == 1

    def test_stale_if_match_is_a_version_mismatch(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        stale = worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}, headers={"If-Match": "1"})
        body = assert_error(stale, 409, "VersionMismatch")
        assert task_id in body["detail"]
        assert _task(task_id).state == "claimed"
        current = worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}, headers={"If-Match": '"2"'})
        assert current.status_code == 200, current.text

    def test_if_match_that_is_not_a_number_is_refused(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        response = worker.post(
            f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}, headers={"If-Match": "v-two"}
        )
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["If-Match"]
        assert _task(task_id).state == "claimed"


class TestVisibility:
    def test_task_of_another_role_is_not_found(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        task_id = make_task(step="inspect")
        calls = {
            "read": clerk.get(f"/tasks/{task_id}"),
            "claim": clerk.post(f"/tasks/{task_id}/claim"),
            "complete": clerk.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}),
            "comment": clerk.post(f"/tasks/{task_id}/comments", json={"text": "hello"}),
            "release": clerk.post(f"/tasks/{task_id}/release"),
        }
        for action, response in calls.items():
            body = assert_error(response, 404, "NotFound")
            assert body["detail"] == f"task {task_id} does not exist", action
        missing = clerk.get(f"/tasks/{uuid.uuid4()}")
        assert_error(missing, 404, "NotFound")
        assert _task(task_id).state == "open"
        assert _count_events(task_id, "task.commented") == 0

    def test_inbox_never_holds_other_roles(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        worker = login("warehouse")
        inspect = make_task(step="inspect")
        review = make_task(step="cs_review")
        parcel = make_task(step="await_parcel")
        goodwill = make_task(step="goodwill_approval")
        assert {t["id"] for t in clerk.get("/tasks").json()["items"]} == {review, parcel}
        assert [t["id"] for t in worker.get("/tasks").json()["items"]] == [inspect]
        for caller in (clerk, worker):
            roles = {t["role"] for t in caller.get("/tasks", params={"limit": 200}).json()["items"]}
            assert roles <= set(caller.roles)
        assert worker.get("/tasks", params={"role": "operations"}).json()["items"] == []
        assert goodwill not in {t["id"] for t in clerk.get("/tasks", params={"state": "open"}).json()["items"]}

    def test_reads_answer_while_a_writer_holds_the_database(
        self, login: Callable[..., Caller], database_url: str
    ) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        with uncommitted_change_to(database_url, task_id):
            # Reads that took SQLite's write lock first (as writes do) waited here for the writer, up to 30 s.
            inbox = worker.get("/tasks", timeout=5)
            detail = worker.get(f"/tasks/{task_id}", timeout=5)
        assert [(t["id"], t["assignee"]) for t in inbox.json()["items"]] == [(task_id, None)]
        assert detail.status_code == 200
        assert detail.json()["assignee"] is None

    def test_managers_see_every_task(self, login: Callable[..., Caller]) -> None:
        ops = login("operations")
        owner = login("owner")
        tasks = {make_task(step=step) for step in ("inspect", "cs_review", "goodwill_approval")}
        for manager in (ops, owner):
            assert {t["id"] for t in manager.get("/tasks").json()["items"]} == tasks
            for task_id in tasks:
                assert manager.get(f"/tasks/{task_id}").status_code == 200

    def test_task_detail_has_form_context_and_history(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        assert worker.post(f"/tasks/{task_id}/comments", json={"text": "box dented"}).status_code == 201
        detail = worker.get(f"/tasks/{task_id}").json()
        assert detail["form"]["properties"]["condition"]["enum"] == ["ok", "damaged"]
        assert detail["context"]["params"]["sku"] == "SKU-TEE-001"
        assert [(c["author"], c["text"]) for c in detail["comments"]] == [(worker.name, "box dented")]
        assert [(e["type"], e["actor"]) for e in detail["history"]] == [
            ("task.created", "system"),
            ("task.commented", worker.name),
        ]


class TestAssignAndRelease:
    def test_manager_assigns_to_a_role_holder(self, login: Callable[..., Caller]) -> None:
        ops = login("operations")
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        response = ops.post(f"/tasks/{task_id}/assign", json={"user": worker.name, "reason": "on shift"})
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["assignee"]) == ("claimed", worker.name)
        assert worker.post(f"/tasks/{task_id}/complete", json={"data": GOOD_INSPECTION}).status_code == 200

    def test_assigning_to_a_user_without_the_role_names_user(self, login: Callable[..., Caller]) -> None:
        ops = login("operations")
        clerk = login("customer_service")
        task_id = make_task(step="inspect")
        response = ops.post(f"/tasks/{task_id}/assign", json={"user": clerk.name})
        body = assert_error(response, 422, "ValidationFailed")
        assert field_names(body) == ["user"]
        assert "warehouse" in body["fields"][0]["message"]
        assert _task(task_id).assignee is None

    def test_non_manager_may_not_assign(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        colleague = login("warehouse")
        task_id = make_task(step="inspect")
        assert_error(worker.post(f"/tasks/{task_id}/assign", json={"user": colleague.name}), 403, "Forbidden")
        assert _task(task_id).assignee is None

    def test_assignee_releases(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        response = worker.post(f"/tasks/{task_id}/release")
        assert response.status_code == 200
        assert (response.json()["state"], response.json()["assignee"]) == ("open", None)

    def test_another_non_manager_may_not_release(self, login: Callable[..., Caller]) -> None:
        worker, task_id = _claimed_inspection(login)
        colleague = login("warehouse")
        assert_error(colleague.post(f"/tasks/{task_id}/release"), 403, "Forbidden")
        assert _task(task_id).assignee == worker.name

    def test_manager_releases(self, login: Callable[..., Caller]) -> None:
        _, task_id = _claimed_inspection(login)
        owner = login("owner")
        assert owner.post(f"/tasks/{task_id}/release").json()["state"] == "open"


class TestInboxQuery:
    def test_pages_walk_every_task_once(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_ids = {make_task(step="inspect") for _ in range(25)}
        walked, cursor, pages = [], None, 0
        while True:
            params = {"limit": 10, "sort": "created", **({"cursor": cursor} if cursor else {})}
            body = worker.get("/tasks", params=params).json()
            walked += [t["id"] for t in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert len(walked) == 25 and set(walked) == task_ids
        assert walked == [
            t["id"] for t in worker.get("/tasks", params={"limit": 200, "sort": "created"}).json()["items"]
        ]

    def test_filters_mine_and_overdue(self, login: Callable[..., Caller]) -> None:
        worker, mine = _claimed_inspection(login)
        make_task(step="inspect")
        assert [t["id"] for t in worker.get("/tasks", params={"mine": "true"}).json()["items"]] == [mine]
        assert worker.get("/tasks", params={"overdue": "true"}).json()["items"] == []

    def test_garbage_cursor_names_cursor(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        make_task(step="inspect")
        naive = base64.urlsafe_b64encode(json.dumps(["2025-01-01T00:00:00", "id"]).encode()).decode()
        for cursor in ("not-a-cursor", naive):
            response = worker.get("/tasks", params={"cursor": cursor})
            assert field_names(assert_error(response, 422, "ValidationFailed")) == ["cursor"]

    def test_limit_above_200_is_refused(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        response = worker.get("/tasks", params={"limit": 201})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["limit"]
        assert worker.get("/tasks", params={"limit": 200}).status_code == 200

    def test_unknown_state_and_sort_are_refused(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        assert field_names(assert_error(worker.get("/tasks", params={"state": "done"}), 422, "ValidationFailed")) == [
            "state"
        ]
        assert field_names(assert_error(worker.get("/tasks", params={"sort": "name"}), 422, "ValidationFailed")) == [
            "sort"
        ]
