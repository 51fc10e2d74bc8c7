"""Absence in the engine: marking a user away hands over their claimed tasks in one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, HumanTask, User
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import Forbidden, NotFound, ValidationFailed
from ecomflow.engine.people.absence import mark_away, mark_back
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import assign_task, claim_task, complete_task, delegate_task
from tests.factories import change_then_fail, make_instance, make_task, make_user

GOOD_INSPECTION = {"condition": "ok", "restock": "yes"}


def _do(action: Any, **kwargs: Any) -> Any:
    """Run one engine action in its own committed transaction."""
    with session_scope() as session:
        return action(session, **kwargs)


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def _user(name: str) -> User:
    with session_scope() as session:
        return session.scalar(select(User).where(User.name == name))


def _events(type: str) -> list[AuditEvent]:
    with session_scope() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.type == type).order_by(AuditEvent.id)))


def _claimed(step: str, principal: Principal, **kwargs: Any) -> str:
    task_id = make_task(step=step, **kwargs)
    _do(claim_task, task_id=task_id, principal=principal)
    return task_id


def _away(name: str, principal: Principal, **kwargs: Any) -> Any:
    return _do(mark_away, name=name, principal=principal, **{"reason": "年假", **kwargs})


class TestMarkAway:
    def test_tasks_go_to_the_substitute_who_has_their_role(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        make_user(name="li", roles=("warehouse",))
        first, second = _claimed("inspect", wu), _claimed("inspect", wu)
        until = utcnow() + timedelta(days=5)
        user, handovers = _away("wu", wu, until=until, substitute="li")
        assert (user.away_until, user.substitute) == (until, "li") and user.away_since is not None
        assert [(h.task_id, h.outcome, h.to) for h in handovers] == [
            (first, "delegated", "li"),
            (second, "delegated", "li"),
        ]
        assert {_task(first).assignee, _task(second).assignee} == {"li"}
        [away] = _events("user.away")
        assert (away.actor, away.data["user"], away.data["substitute"], away.data["reason"]) == (
            "wu",
            "wu",
            "li",
            "年假",
        )
        delegated = _events("task.delegated")
        assert [(e.task_id, e.data["previous_assignee"], e.data["assignee"], e.data["reason"]) for e in delegated] == [
            (first, "wu", "li", "absence: 年假"),
            (second, "wu", "li", "absence: 年假"),
        ]

    def test_tasks_the_substitute_may_not_take_go_back_to_the_queue(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse", "customer_service"))
        make_user(name="li", roles=("warehouse",))
        inspection = _claimed("inspect", wu)
        parcel = _claimed("await_parcel", wu)
        _, handovers = _away("wu", wu, substitute="li")
        assert [(h.task_id, h.outcome, h.to) for h in handovers] == [
            (inspection, "delegated", "li"),
            (parcel, "released", None),
        ]
        assert "li lacks role customer_service" in handovers[1].reason
        assert (_task(parcel).state, _task(parcel).assignee) == ("open", None)
        [released] = _events("task.released")
        assert (released.task_id, released.actor, released.data["previous_assignee"]) == (parcel, "wu", "wu")
        assert released.data["reason"] == handovers[1].reason and released.data["reason"].startswith("absence: 年假")

    def test_without_a_substitute_every_task_goes_back_to_the_queue(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        manager, _ = make_user(name="boss", roles=("operations",))
        task_id = _claimed("inspect", wu)
        _, [handover] = _away("wu", manager)
        assert (handover.outcome, handover.reason) == ("released", "absence: 年假; no substitute named")
        assert _task(task_id).state == "open"
        assert [e.actor for e in _events("task.released")] == ["boss"]

    def test_four_eyes_keeps_a_task_from_the_substitute(self, clean_db: str) -> None:
        li, _ = make_user(name="li", roles=("warehouse", "operations"))
        wu, _ = make_user(name="wu", roles=("operations",))
        instance_id = make_instance()
        inspection = _claimed("inspect", li, instance_id=instance_id)
        _do(complete_task, task_id=inspection, principal=li, data=GOOD_INSPECTION)
        approval = _claimed("deduction_approval", wu, instance_id=instance_id)
        _, [handover] = _away("wu", wu, substitute="li")
        assert handover.outcome == "released"
        assert "four-eyes rule: li did inspect that deduction_approval approves" in handover.reason
        assert _task(approval).state == "open"

    def test_other_tasks_are_left_alone(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        li, _ = make_user(name="li", roles=("warehouse",))
        open_task = make_task(step="inspect")
        theirs = _claimed("inspect", li)
        assert _away("wu", wu, substitute="li")[1] == []
        assert (_task(open_task).state, _task(theirs).assignee, _task(theirs).version) == ("open", "li", 2)

    def test_a_failure_afterwards_keeps_user_and_tasks_as_they_were(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        make_user(name="li", roles=("warehouse",))
        task_id = _claimed("inspect", wu)
        with pytest.raises(RuntimeError, match="crash"):
            change_then_fail(
                lambda session: mark_away(session, name="wu", principal=wu, reason="病假", substitute="li"),
                "crash after marking away",
            )
        assert _user("wu").away_since is None
        assert (_task(task_id).assignee, _task(task_id).version) == ("wu", 2)
        assert _events("user.away") == [] and _events("task.delegated") == []


class TestAbsenceRules:
    def test_only_the_user_or_a_manager_may_mark_them_away(self, clean_db: str) -> None:
        make_user(name="wu", roles=("warehouse",))
        colleague, _ = make_user(name="li", roles=("warehouse",))
        manager, _ = make_user(name="boss", roles=("owner",))
        with pytest.raises(Forbidden):
            _away("wu", colleague)
        with pytest.raises(NotFound):
            _away("nobody", manager)
        assert _away("wu", manager)[0].away_since is not None

    @pytest.mark.parametrize(
        ("kwargs", "field", "rule"),
        [
            ({"reason": "  "}, "reason", "length"),
            ({"until": utcnow() - timedelta(minutes=1)}, "until", "future"),
            ({"until": utcnow().replace(tzinfo=None) + timedelta(days=1)}, "until", "timezone"),
            ({"substitute": "nobody"}, "substitute", "exists"),
            ({"substitute": "wu"}, "substitute", "other"),
            ({"substitute": "zhao"}, "substitute", "away"),
            ({"substitute": "gone"}, "substitute", "active"),
        ],
        ids=[
            "blank-reason",
            "past-until",
            "naive-until",
            "unknown-substitute",
            "self-substitute",
            "away-substitute",
            "inactive-substitute",
        ],
    )
    def test_bad_absence_is_refused_naming_the_field(
        self, clean_db: str, kwargs: dict[str, Any], field: str, rule: str
    ) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        zhao, _ = make_user(name="zhao", roles=("warehouse",))
        make_user(name="gone", roles=("warehouse",))
        _away("zhao", zhao)
        with session_scope() as session:
            session.execute(update(User).where(User.name == "gone").values(active=False))
        with pytest.raises(ValidationFailed) as refused:
            _away("wu", wu, **kwargs)
        assert [(p.field, p.rule) for p in refused.value.problems] == [(field, rule)]
        assert _user("wu").away_since is None


class TestWhileAway:
    def test_nobody_may_assign_or_delegate_to_them(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        li, _ = make_user(name="li", roles=("warehouse",))
        manager, _ = make_user(name="boss", roles=("operations",))
        _away("wu", wu, until=utcnow() + timedelta(days=2))
        with pytest.raises(ValidationFailed) as assigning:
            _do(assign_task, task_id=make_task(), principal=manager, user="wu")
        assert [(p.field, p.rule) for p in assigning.value.problems] == [("user", "away")]
        with pytest.raises(ValidationFailed) as delegating:
            _do(delegate_task, task_id=_claimed("inspect", li), principal=li, user="wu", reason="busy")
        assert [(p.field, p.rule) for p in delegating.value.problems] == [("user", "away")]
        assert "wu is away until" in delegating.value.detail

    def test_an_absence_whose_end_passed_no_longer_counts(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        manager, _ = make_user(name="boss", roles=("operations",))
        _away("wu", wu, until=utcnow() + timedelta(days=2))
        with session_scope() as session:
            session.execute(update(User).where(User.name == "wu").values(away_until=utcnow() - timedelta(seconds=1)))
        assert _do(assign_task, task_id=make_task(), principal=manager, user="wu").assignee == "wu"

    def test_coming_back_ends_the_absence(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        manager, _ = make_user(name="boss", roles=("operations",))
        _away("wu", wu, substitute=None)
        back = _do(mark_back, name="wu", principal=wu)
        assert (back.away_since, back.away_until, back.substitute) == (None, None, None)
        assert [(e.actor, e.data) for e in _events("user.back")] == [("wu", {"user": "wu"})]
        assert _do(mark_back, name="wu", principal=wu).away_since is None
        assert len(_events("user.back")) == 1
        assert _do(assign_task, task_id=make_task(), principal=manager, user="wu").assignee == "wu"
