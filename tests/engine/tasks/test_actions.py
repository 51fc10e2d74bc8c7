"""Human-task actions in the engine: claim, release, assign, complete, comment, and their audit trail."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage, TaskComment
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import (
    AlreadyClaimed,
    Forbidden,
    FourEyesViolation,
    IllegalTransition,
    NotFound,
    ValidationFailed,
    VersionMismatch,
)
from ecomflow.engine.events.outbox import RESUME_RUN
from ecomflow.engine.instances.lifecycle import cancel_instance
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import (
    add_comment,
    assign_task,
    claim_task,
    complete_task,
    get_visible_task,
    release_task,
)
from ecomflow.engine.tasks.step_tasks import expire_due_tasks
from tests.factories import change_then_fail, make_task, make_user

GOOD_INSPECTION = {"condition": "ok", "restock": "yes"}


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def _events(task_id: str, type: str | None = None) -> list[AuditEvent]:
    with session_scope() as session:
        query = select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(AuditEvent.id)
        if type is not None:
            query = query.where(AuditEvent.type == type)
        return list(session.scalars(query))


def _outbox_count(task_id: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.task_id == task_id))


def _do(action: Any, **kwargs: Any) -> Any:
    """Run one engine action in its own committed transaction."""
    with session_scope() as session:
        return action(session, **kwargs)


def _claim(task_id: str, principal: Principal) -> HumanTask:
    return _do(claim_task, task_id=task_id, principal=principal)


def _complete(task_id: str, principal: Principal, data: Any, **kwargs: Any) -> HumanTask:
    return _do(complete_task, task_id=task_id, principal=principal, data=data, **kwargs)


def _visible(task_id: str, principal: Principal) -> HumanTask:
    with session_scope() as session:
        return get_visible_task(session, task_id, principal=principal)


def _snapshot(task_id: str) -> tuple[Any, ...]:
    task = _task(task_id)
    return task.state, task.version, task.assignee, task.output, len(_events(task_id)), _outbox_count(task_id)


class TestGetVisibleTask:
    def test_role_holder_sees_the_task(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task(step="inspect")
        assert _visible(task_id, worker).id == task_id

    def test_other_role_gets_not_found(self, clean_db: str) -> None:
        outsider, _ = make_user(roles=("customer_service",))
        task_id = make_task(step="inspect")
        with pytest.raises(NotFound) as refused:
            _visible(task_id, outsider)
        assert task_id in refused.value.detail

    def test_manager_sees_every_role(self, clean_db: str) -> None:
        owner, _ = make_user(roles=("owner",))
        task_id = make_task(step="inspect")
        assert _visible(task_id, owner).role == "warehouse"


class TestClaimTask:
    def test_claim_takes_an_open_task(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        claimed = _claim(task_id, worker)
        assert (claimed.state, claimed.assignee, claimed.version) == ("claimed", worker.name, 2)
        assert claimed.claimed_at is not None
        [event] = _events(task_id, "task.claimed")
        assert event.actor == worker.name
        assert event.data["assignee"] == worker.name and event.data["from"] == "open"

    def test_manager_claims_a_task_of_any_role(self, clean_db: str) -> None:
        owner, _ = make_user(roles=("owner",))
        task_id = make_task(step="inspect")
        claimed = _claim(task_id, owner)
        assert (claimed.state, claimed.assignee, claimed.role) == ("claimed", owner.name, "warehouse")
        assert [event.actor for event in _events(task_id, "task.claimed")] == [owner.name]

    def test_a_task_the_session_already_read_comes_back_claimed(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        with session_scope() as session:
            held = session.get(HumanTask, task_id)
            assert held.state == "open"
            claimed = claim_task(session, task_id=task_id, principal=worker)
            assert claimed is held
            assert (held.state, held.assignee, held.version) == ("claimed", worker.name, 2)

    def test_second_claim_names_the_holder(self, clean_db: str) -> None:
        first, _ = make_user(roles=("warehouse",))
        second, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, first)
        with pytest.raises(AlreadyClaimed) as refused:
            _claim(task_id, second)
        assert first.name in refused.value.detail
        assert refused.value.about["assignee"] == first.name
        assert _task(task_id).assignee == first.name

    def test_sixteen_concurrent_claims_have_one_winner(self, clean_db: str) -> None:
        workers = [make_user(roles=("warehouse",))[0] for _ in range(16)]
        task_id = make_task()
        start = threading.Barrier(len(workers))

        def attempt(worker: Principal) -> tuple[str, str]:
            start.wait()
            try:
                return "won", _claim(task_id, worker).assignee
            except AlreadyClaimed as lost:
                return "lost", lost.about["assignee"]

        with ThreadPoolExecutor(len(workers)) as pool:
            outcomes = list(pool.map(attempt, workers))

        winners = [name for outcome, name in outcomes if outcome == "won"]
        assert len(winners) == 1
        assert [name for outcome, name in outcomes if outcome == "lost"] == [winners[0]] * 15
        task = _task(task_id)
        assert (task.state, task.assignee, task.version) == ("claimed", winners[0], 2)
        assert len(_events(task_id, "task.claimed")) == 1

    def test_user_without_the_role_cannot_see_it(self, clean_db: str) -> None:
        outsider, _ = make_user(roles=("customer_service",))
        task_id = make_task(step="inspect")
        with pytest.raises(NotFound):
            _claim(task_id, outsider)
        assert _task(task_id).state == "open"


class TestFourEyes:
    def test_excluded_user_may_not_claim(self, clean_db: str) -> None:
        alice, _ = make_user(name="alice", roles=("customer_service",))
        task_id = make_task(step="cs_review", excluded=("alice",))
        before = _snapshot(task_id)
        with pytest.raises(FourEyesViolation) as refused:
            _claim(task_id, alice)
        assert "four-eyes" in refused.value.detail and "alice" in refused.value.detail
        assert refused.value.about == {"task_id": task_id, "user": "alice"}
        assert _snapshot(task_id) == before

    def test_manager_may_not_assign_to_the_excluded_user(self, clean_db: str) -> None:
        make_user(name="alice", roles=("customer_service",))
        manager, _ = make_user(roles=("operations",))
        task_id = make_task(step="cs_review", excluded=("alice",))
        before = _snapshot(task_id)
        with pytest.raises(FourEyesViolation, match="four-eyes"):
            _do(assign_task, task_id=task_id, principal=manager, user="alice")
        assert _snapshot(task_id) == before

    def test_other_users_may_still_claim(self, clean_db: str) -> None:
        bob, _ = make_user(name="bob", roles=("customer_service",))
        task_id = make_task(step="cs_review", excluded=("alice",))
        assert _claim(task_id, bob).assignee == "bob"


class TestReleaseTask:
    def test_assignee_releases_to_the_queue(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, worker)
        released = _do(release_task, task_id=task_id, principal=worker)
        assert (released.state, released.assignee, released.version) == ("open", None, 3)
        [event] = _events(task_id, "task.released")
        assert event.actor == worker.name and event.data["previous_assignee"] == worker.name

    def test_other_worker_may_not_release(self, clean_db: str) -> None:
        holder, _ = make_user(roles=("warehouse",))
        other, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, holder)
        with pytest.raises(Forbidden):
            _do(release_task, task_id=task_id, principal=other)
        assert _task(task_id).assignee == holder.name

    def test_manager_may_release(self, clean_db: str) -> None:
        holder, _ = make_user(roles=("warehouse",))
        manager, _ = make_user(roles=("operations",))
        task_id = make_task()
        _claim(task_id, holder)
        assert _do(release_task, task_id=task_id, principal=manager).state == "open"
        assert _events(task_id, "task.released")[0].actor == manager.name


class TestAssignTask:
    def test_manager_assigns_to_a_role_holder(self, clean_db: str) -> None:
        manager, _ = make_user(roles=("operations",))
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        assigned = _do(assign_task, task_id=task_id, principal=manager, user=worker.name, reason="on shift")
        assert (assigned.state, assigned.assignee) == ("claimed", worker.name)
        [event] = _events(task_id, "task.assigned")
        assert event.actor == manager.name
        assert event.data["assignee"] == worker.name and event.data["reason"] == "on shift"

    def test_user_lacking_the_role_is_refused_naming_user(self, clean_db: str) -> None:
        manager, _ = make_user(roles=("operations",))
        clerk, _ = make_user(roles=("customer_service",))
        task_id = make_task()
        with pytest.raises(ValidationFailed) as refused:
            _do(assign_task, task_id=task_id, principal=manager, user=clerk.name)
        assert [(p.field, p.rule) for p in refused.value.problems] == [("user", "role")]
        assert _task(task_id).state == "open"

    def test_unknown_user_is_refused_naming_user(self, clean_db: str) -> None:
        manager, _ = make_user(roles=("owner",))
        task_id = make_task()
        with pytest.raises(ValidationFailed) as refused:
            _do(assign_task, task_id=task_id, principal=manager, user="nobody")
        assert [p.field for p in refused.value.problems] == ["user"]

    def test_non_manager_may_not_assign(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        other, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        with pytest.raises(Forbidden):
            _do(assign_task, task_id=task_id, principal=worker, user=other.name)
        assert _task(task_id).assignee is None


class TestCompleteTask:
    def test_completion_stores_output_event_and_resume(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, worker)
        done = _complete(task_id, worker, GOOD_INSPECTION)
        assert (done.state, done.output, done.completed_by, done.version) == (
            "completed",
            GOOD_INSPECTION,
            worker.name,
            3,
        )
        [event] = _events(task_id, "task.completed")
        assert event.actor == worker.name
        with session_scope() as session:
            [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.task_id == task_id))
            assert (message.kind, message.instance_id) == (RESUME_RUN, done.instance_id)

    def test_bad_data_names_each_field(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, worker)
        before = _snapshot(task_id)
        with pytest.raises(ValidationFailed) as refused:
            _complete(task_id, worker, {"restock": "maybe", "deduction": -1})
        assert sorted((p.field, p.rule) for p in refused.value.problems) == [
            ("condition", "required"),
            ("deduction", "min"),
            ("restock", "enum"),
        ]
        assert _snapshot(task_id) == before

    def test_reject_without_comment_is_refused(self, clean_db: str) -> None:
        clerk, _ = make_user(roles=("customer_service",))
        task_id = make_task(step="cs_review")
        _claim(task_id, clerk)
        with pytest.raises(ValidationFailed) as refused:
            _complete(task_id, clerk, {"decision": "reject"})
        assert [p.field for p in refused.value.problems] == ["comment"]
        assert _complete(task_id, clerk, {"decision": "reject", "comment": "不符合政策"}).state == "completed"

    def test_non_assignee_may_not_complete(self, clean_db: str) -> None:
        holder, _ = make_user(roles=("warehouse",))
        other, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, holder)
        with pytest.raises(Forbidden):
            _complete(task_id, other, GOOD_INSPECTION)
        assert _task(task_id).state == "claimed"

    def test_open_task_must_be_claimed_first(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        with pytest.raises(IllegalTransition, match="claim it first"):
            _complete(task_id, worker, GOOD_INSPECTION)

    def test_stale_version_is_refused(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, worker)
        with pytest.raises(VersionMismatch) as refused:
            _complete(task_id, worker, GOOD_INSPECTION, expected_version=1)
        assert "version 2" in refused.value.detail
        assert _complete(task_id, worker, GOOD_INSPECTION, expected_version=2).state == "completed"


class TestAddComment:
    def test_comment_is_stored_with_its_event(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _do(add_comment, task_id=task_id, principal=worker, text="  box was wet  ")
        with session_scope() as session:
            [comment] = session.scalars(select(TaskComment).where(TaskComment.task_id == task_id))
            assert (comment.author, comment.text) == (worker.name, "box was wet")
        [event] = _events(task_id, "task.commented")
        assert event.actor == worker.name

    def test_blank_comment_is_refused_naming_text(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        with pytest.raises(ValidationFailed) as refused:
            _do(add_comment, task_id=task_id, principal=worker, text="   ")
        assert [p.field for p in refused.value.problems] == ["text"]
        assert _events(task_id, "task.commented") == []


class TestAuditInSameTransaction:
    def test_failure_after_claim_stores_neither_claim_nor_event(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        with pytest.raises(RuntimeError, match="crash"):
            change_then_fail(
                lambda session: claim_task(session, task_id=task_id, principal=worker), "crash after the claim"
            )
        task = _task(task_id)
        assert (task.state, task.assignee, task.version) == ("open", None, 1)
        assert _events(task_id, "task.claimed") == []

    def test_failure_after_complete_stores_neither_output_event_nor_resume(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        _claim(task_id, worker)
        with pytest.raises(RuntimeError, match="crash"):
            change_then_fail(
                lambda session: complete_task(session, task_id=task_id, principal=worker, data=GOOD_INSPECTION),
                "crash after the completion",
            )
        task = _task(task_id)
        assert (task.state, task.output, task.version) == ("claimed", None, 2)
        assert _events(task_id, "task.completed") == []
        assert _outbox_count(task_id) == 0

    def test_failure_after_comment_stores_neither_comment_nor_event(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        task_id = make_task()
        with pytest.raises(RuntimeError, match="crash"):
            change_then_fail(
                lambda session: add_comment(session, task_id=task_id, principal=worker, text="lost"),
                "crash after the comment",
            )
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(TaskComment)) == 0
        assert _events(task_id, "task.commented") == []

    def test_each_change_has_one_event_by_its_actor(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        manager, _ = make_user(roles=("operations",))
        task_id = make_task()
        _claim(task_id, worker)
        _do(release_task, task_id=task_id, principal=worker)
        _do(assign_task, task_id=task_id, principal=manager, user=worker.name)
        _do(add_comment, task_id=task_id, principal=worker, text="checked")
        _complete(task_id, worker, GOOD_INSPECTION)
        assert [(e.type, e.actor) for e in _events(task_id)] == [
            ("task.created", "system"),
            ("task.claimed", worker.name),
            ("task.released", worker.name),
            ("task.assigned", manager.name),
            ("task.commented", worker.name),
            ("task.completed", worker.name),
        ]


def _task_in_state(state: str, *, worker: Principal, manager: Principal) -> str:
    """Return a task brought to `state` the way the system gets there."""
    if state == "expired":
        task_id = make_task(step="await_parcel", now=utcnow() - timedelta(days=8))
        with session_scope() as session:
            assert [t.id for t in expire_due_tasks(session, now=utcnow())] == [task_id]
        return task_id
    task_id = make_task(step="inspect")
    if state == "completed":
        _claim(task_id, worker)
        _complete(task_id, worker, GOOD_INSPECTION)
    elif state == "cancelled":
        _do(cancel_instance, instance_id=_task(task_id).instance_id, principal=manager)
    assert _task(task_id).state == state
    return task_id


ILLEGAL_MOVES = [
    ("open", "release"),
    ("open", "complete"),
    *[
        (state, action)
        for state in ("completed", "cancelled", "expired")
        for action in ("claim", "release", "assign", "complete")
    ],
]


class TestIllegalMovesSaveNothing:
    @pytest.mark.parametrize(("state", "action"), ILLEGAL_MOVES, ids=[f"{s}-{a}" for s, a in ILLEGAL_MOVES])
    def test_refused_before_anything_is_saved(self, clean_db: str, state: str, action: str) -> None:
        worker, _ = make_user(roles=("warehouse", "customer_service"))
        manager, _ = make_user(roles=("operations",))
        task_id = _task_in_state(state, worker=worker, manager=manager)
        before = _snapshot(task_id)
        moves = {
            "claim": lambda: _claim(task_id, worker),
            "release": lambda: _do(release_task, task_id=task_id, principal=manager),
            "assign": lambda: _do(assign_task, task_id=task_id, principal=manager, user=worker.name),
            "complete": lambda: _complete(task_id, worker, GOOD_INSPECTION),
        }
        with pytest.raises(IllegalTransition) as refused:
            moves[action]()
        assert task_id in refused.value.detail and state in refused.value.detail
        assert _snapshot(task_id) == before
